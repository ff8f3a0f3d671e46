"""Probe configs (``pope-random``, ``pope-popular``, ``pope-adversarial``): probes -> rows for the folder.

One split, ``test``. Columns (the contract ``svit-eval`` reads): ``id`` (``<config>/<image_id>/<k>``),
``image_id`` (Visual Genome), ``coco_id`` (null for the sample), ``question``, ``answer`` (``yes`` or
``no``), ``object``, ``sampler``, ``fallback`` (a negative drawn at random because the sampler had no
candidate), ``image`` (bytes when the images are available) and ``image_file``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from datasets import Features, Image, Value

from svit_data.builders.probe_sources import ProbeSource
from svit_data.builders.probes import ProbeParams, build_probes
from svit_data.configs import PROBE, PROBE_CONFIGS, PROBE_SCHEMA
from svit_data.materialize import ConfigRows, embed_images
from svit_data.splits import TEST
from svit_data.state import ProbeState

PROBE_FEATURES = Features(
    {
        "id": Value("string"),
        "image_id": Value("int64"),
        "coco_id": Value("int64"),
        "question": Value("string"),
        "answer": Value("string"),
        "object": Value("string"),
        "sampler": Value("string"),
        "fallback": Value("bool"),
        "image": Image(),
        "image_file": Value("string"),
    }
)

RULES = (
    "POPE-style probes (Li et al., EMNLP 2023), built by svit from exhaustive annotations of SVIT's test "
    "images ({source}): an image is eligible with at least {min_objects} distinct objects of the "
    "vocabulary ({vocabulary} names); {num_images} eligible images are drawn with seed {seed} (all when "
    "fewer); per image {positives} present objects are drawn (answer yes, the same in every pope config), "
    "each followed by one absent object not yet asked (answer no) from the {sampler} sampler: {how} When "
    "the sampler has no candidate left the negative is drawn at random and counted as a fallback. Half "
    "of the answers are yes. Question: 'Is there a/an {{object}} in the image?'."
)
HOW = {
    "random": "uniform over the vocabulary.",
    "popular": "the first in the order of how many probe images hold each object (then by name).",
    "adversarial": "the first in the order of how many probe images hold it together with the positive "
    "(then by name; objects never seen with it are not candidates).",
}
SOURCES = {
    "coco-instances": "COCO instances of the Visual Genome images that have a coco_id; COCO's categories "
    "are annotated exhaustively, Visual Genome object names are never used",
    "sample": "the bundled SYNTHETIC sample, whose drawn shapes are known exactly",
}


def sampler_of(config: str) -> str:
    return config.removeprefix("pope-")


def probe_table(config: str, source: ProbeSource, params: ProbeParams) -> tuple[pa.Table, dict]:
    """The rows of one probe config and the counts the card shows."""
    probes = build_probes(source.objects, source.vocabulary, sampler_of(config), params)
    rows = [
        {
            "id": f"{config}/{p.image_id}/{p.index}",
            "image_id": p.image_id,
            "coco_id": source.coco_ids.get(p.image_id),
            "question": p.question,
            "answer": p.answer,
            "object": p.object,
            "sampler": probes.sampler,
            "fallback": p.fallback,
            "image": None,
            "image_file": source.image_files.get(p.image_id, f"{p.image_id}.jpg"),
        }
        for p in probes.probes
    ]
    table = pa.Table.from_pylist(rows, schema=PROBE_FEATURES.arrow_schema)
    counts = {
        "annotated_test_images": probes.annotated_images,
        "eligible_images": probes.eligible_images,
        "images": len(probes.images),
        "questions": len(probes.probes),
        "yes": sum(p.answer == "yes" for p in probes.probes),
        "no": sum(p.answer == "no" for p in probes.probes),
        "fallbacks": probes.fallbacks,
        "vocabulary": probes.vocabulary_size,
    }
    return table, {"counts": counts, "images": probes.images}


def probe_rows(config: str, source: ProbeSource, params: ProbeParams, images_root: Path | None) -> ConfigRows:
    """A probe config for the dataset folder (called by ``svit-recipe build``)."""
    table, built = probe_table(config, source, params)
    sampler = sampler_of(config)
    rules = RULES.format(
        source=SOURCES[source.name],
        min_objects=params.min_objects,
        vocabulary=built["counts"]["vocabulary"],
        num_images=params.num_images,
        seed=params.seed,
        positives=params.positives,
        sampler=sampler,
        how=HOW[sampler],
    )
    probe = ProbeState(
        sampler=sampler,
        source=source.name,
        annotation_files=source.files,
        parameters={
            "num_images": params.num_images,
            "positives": params.positives,
            "min_objects": params.min_objects,
            "seed": params.seed,
        },
        counts=built["counts"],
        images=built["images"],
        rules=rules,
    )
    return ConfigRows(
        name=config,
        description=PROBE_CONFIGS[config].description,
        features=PROBE_FEATURES,
        splits={TEST: [embed_images(table, images_root)]},
        kind=PROBE,
        schema=PROBE_SCHEMA,
        probe=probe,
    )
