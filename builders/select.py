"""Choose images before generating (``generate --select N``): the recipe engine's diversity objective
applied to the images' annotation text, so a budget buys the images that cover the most concepts.

Rule. Each image's annotation text (captions, object names with their attributes, region phrases) is
matched against a concept vocabulary (the recipes' bundled default, or ``--select-vocabulary``) with the
recipes' normalization and inflections, giving a 0/1 image x concept matrix. The selection is the first
``N`` of :func:`~svit_data.recipes.diversity.greedy_order` over that matrix (one stratum of quota ``N``,
concept weights from the vocabulary, ``decay`` 1, ties by the ``--seed`` permutation): a greedy
maximization of ``F(S) = sum_c w_c * H(|S ∩ P_c|)``. The result is the sorted array of image ids.

Diagnostics compare it with ``N`` images drawn at random with the same seed: concept coverage (share of
concepts of positive weight mentioned at least once) and the entropy in bits of the selection's concept
mention distribution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from svit_data.builders.annotations import ImageMeta
from svit_data.builders.sources import AnnotationSource
from svit_data.errors import InputError
from svit_data.recipes.candidates import random_order
from svit_data.recipes.diversity import coverage_objective, greedy_order
from svit_data.recipes.vocabulary import MAX_WORDS, Vocabulary, load_vocabulary, normalize


def annotation_text(source: AnnotationSource, image: ImageMeta) -> str:
    """The words the selection reads: captions, object names and attributes, region phrases (no boxes)."""
    parts: list[str] = []
    if image.coco_id is not None:
        parts += source.captions.get(image.coco_id, [])
        parts += [a.text for a in source.instances.get(image.coco_id, [])]
    for annotation in source.vg.objects(image):
        parts += [*annotation.attributes, annotation.text]
    parts += [a.text for a in source.vg.regions(image)]
    return " . ".join(parts)


def concept_matrix(texts: Iterable[str], vocabulary: Vocabulary) -> sp.csr_matrix:
    """0/1 texts x concepts: a concept is mentioned when one of its forms occurs as whole words."""
    forms = vocabulary.forms()
    indptr, indices = [0], []
    for text in texts:
        words = normalize(text).split()
        found: set[int] = set()
        for start in range(len(words)):
            for n in range(1, MAX_WORDS + 1):
                if start + n > len(words):
                    break
                found.update(forms.get(" ".join(words[start : start + n]), ()))
        indices += sorted(found)
        indptr.append(len(indices))
    data = np.ones(len(indices), np.int8)
    return sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, len(vocabulary.concepts)))


def select_rows(matrix: sp.csr_matrix, weights: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """Rows of the ``n`` images chosen by the greedy coverage objective (sorted)."""
    if not 0 < n <= matrix.shape[0]:
        raise ValueError(f"--select {n}: there are {matrix.shape[0]} images to choose from")
    order = greedy_order(matrix, weights, np.zeros(matrix.shape[0], np.int64), np.array([n]), seed=seed)
    return np.sort(order[:n])


def diagnostics(matrix: sp.csr_matrix, weights: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    """Coverage, entropy (bits) and the objective F of the images ``rows``."""
    counts = np.bincount(matrix[rows].indices, minlength=matrix.shape[1]).astype(np.float64)
    weighted = np.asarray(weights) > 0
    coverage = float((counts[weighted] > 0).sum() / max(1, weighted.sum()))
    p = counts[counts > 0] / counts.sum() if counts.sum() else np.zeros(0)
    entropy = float(-(p * np.log2(p)).sum()) if len(p) else 0.0
    objective = coverage_objective(matrix, weights, rows, 1.0)
    return {
        "coverage": round(coverage, 4),
        "entropy_bits": round(entropy, 4),
        "objective": round(objective, 4),
    }


def select_images(
    image_ids: Sequence[int], texts: Sequence[str], vocabulary: Vocabulary, n: int, *, seed: int
) -> tuple[list[int], dict]:
    """The sorted ids of the ``n`` chosen images and a record of the choice (parameters, hash, diagnostics)."""
    matrix = concept_matrix(texts, vocabulary)
    weights = np.asarray(vocabulary.weights, np.float64)
    rows = select_rows(matrix, weights, n, seed=seed)
    chosen = sorted(int(image_ids[r]) for r in rows)
    random_rows = np.sort(random_order(len(image_ids), seed)[:n])
    record = {
        "n": n,
        "of": len(image_ids),
        "seed": seed,
        "vocabulary": vocabulary.name,
        "vocabulary_hash": vocabulary.hash,
        "ids_sha256": hashlib.sha256("\n".join(map(str, chosen)).encode()).hexdigest()[:16],
        "selected": diagnostics(matrix, weights, rows),
        "random": diagnostics(matrix, weights, random_rows),
        "concepts": len(vocabulary.concepts),
    }
    return chosen, record


def select_from_source(
    source: AnnotationSource, images: Sequence[ImageMeta], n: int, vocabulary: str | None, *, seed: int
) -> tuple[list[int], dict]:
    """:func:`select_images` over ``images`` of ``source`` with the vocabulary file (None: the bundled one)."""
    if n > len(images):
        raise InputError(f"--select {n} is more than the {len(images)} images to choose from")
    texts = [annotation_text(source, image) for image in images]
    return select_images(
        [image.image_id for image in images], texts, load_vocabulary(vocabulary), n, seed=seed
    )
