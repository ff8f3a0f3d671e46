"""A mixed pool's concept matrix is its sources' cached matrices stacked: identical to matching the mixed
pool's rows directly (CSR arrays and every per-sample column), and each source's matrix is cached on its
own, so a mix with an already matched SVIT pool matches only the other sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from svit_data.recipes import matching
from svit_data.recipes.matching import compute_matrix, match_pool
from svit_data.recipes.vocabulary import load_vocabulary
from svit_data.sources import SourceSpec, open_sources

COLUMNS = ("task", "test", "yes", "no", "answer_words")


def records() -> list[dict]:
    answers = ["Yes.", "No, the dog sleeps on a red sofa near the window.", "A cat and two bicycles."]
    return [
        {
            "id": f"r{n}",
            "image": f"coco/train2017/{n:012d}.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nIs there a dog in the kitchen?"},
                {"from": "gpt", "value": answers[n % len(answers)]},
            ],
        }
        for n in range(40)
    ]


def test_a_mixed_matrix_is_its_sources_matrices_stacked(tmp_path: Path, monkeypatch):
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(records()))
    vocabulary = load_vocabulary()
    svit = open_sources([SourceSpec("svit", "sample")], progress=False)
    match_pool(svit, vocabulary, progress=False)  # the SVIT pool's matrix is cached already
    mixed = open_sources([SourceSpec("svit", "sample"), SourceSpec("inst", str(path))], progress=False)
    assert [part.fingerprint for part in mixed.parts][0] == svit.fingerprint
    direct = compute_matrix(mixed, vocabulary, progress=False)
    computed = []
    real = matching.compute_matrix
    monkeypatch.setattr(
        matching, "compute_matrix", lambda pool, *a, **k: computed.append(pool) or real(pool, *a, **k)
    )
    stacked = match_pool(mixed, vocabulary, progress=False)
    assert [pool.fingerprint for pool in computed] == [mixed.parts[1].fingerprint]  # only the new source
    for part in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(stacked.matrix, part), getattr(direct.matrix, part)), part
    assert stacked.matrix.shape == direct.matrix.shape and stacked.matrix.dtype == direct.matrix.dtype
    assert stacked.ids.equals(direct.ids) and stacked.key == direct.key
    for name in COLUMNS:
        assert np.array_equal(getattr(stacked, name), getattr(direct, name)), name
    assert stacked.concepts == direct.concepts and np.array_equal(stacked.weights, direct.weights)
    assert stacked.matrix.nnz > 0 and stacked.yes[svit.num_rows :].sum() > 0
    again = match_pool(mixed, vocabulary, progress=False)  # the mix's own cache entry
    assert [pool.fingerprint for pool in computed] == [mixed.parts[1].fingerprint]
    assert (again.matrix != direct.matrix).nnz == 0 and again.ids.equals(direct.ids)
