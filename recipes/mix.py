"""mix-665k: a user's LLaVA-v1.5-mix-665K with its LLaVA-Instruct-150K part replaced by core-150k.

Which records are LLaVA-Instruct-150K (the rule, checked against the released file's composition):
a record is LLaVA-Instruct when its ``image`` starts with ``coco/train2017/`` and none of its human
turns carries one of the instructions LLaVA-v1.5 appended to its academic-task data (VQAv2/OKVQA
"Answer the question using a single word or phrase.", A-OKVQA "Answer with the option's letter from
the given choices directly.", RefCOCO "Provide a short description for this region." / "Provide the
bounding box coordinate of the region this sentence describes."). Text-only records (ShareGPT) and
records on other image folders (GQA, OCR-VQA, TextVQA, VG) are kept. The released file has 157,712
such records: the count found is reported next to that number; none found is an error.

Recipe files say ``llava_mix`` to build this way; the shipped ``mix-665k.yaml`` is one (core-150k).
The output keeps the mix's order; the selected records (in LLaVA format, via
:func:`~svit_data.formats.llava.to_llava_record`) take the place of the first LLaVA-Instruct record.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm.auto import tqdm

from svit_data.configs import LLAVA_SCHEMA, RECIPE
from svit_data.errors import InputError
from svit_data.formats.llava import iter_llava_json, llava_features, llava_row, to_llava_record
from svit_data.materialize import ConfigRows, select_rows
from svit_data.pool import Pool
from svit_data.recipes.registry import LLAVA_INSTRUCT_SIZE
from svit_data.splits import TRAIN
from svit_data.state import MixState, RecipeState

log = logging.getLogger(__name__)

INSTRUCT = "llava-instruct"
TEXT_ONLY, ACADEMIC, OTHER_IMAGES = "text-only", "academic-task", "other-images"
INSTRUCT_IMAGE_PREFIX = "coco/train2017/"
ACADEMIC_MARKERS: tuple[str, ...] = (
    "answer the question using a single word or phrase",
    "answer with the option's letter from the given choices directly",
    "provide a short description for this region",
    "provide the bounding box coordinate of the region this sentence describes",
)
CORE_SOURCE = "svit-core-150k"
MIX_SOURCE = "llava-v1.5-mix665k"
ROWS_PER_TABLE = 10_000


def part_of(record: dict[str, Any]) -> str:
    """Which part of LLaVA-v1.5-mix-665K a record belongs to (see the module docstring)."""
    image = record.get("image")
    if not image:
        return TEXT_ONLY
    human = " ".join(t["value"].lower() for t in record["conversations"] if t["from"] == "human")
    if any(marker in human for marker in ACADEMIC_MARKERS):
        return ACADEMIC
    return INSTRUCT if image.startswith(INSTRUCT_IMAGE_PREFIX) else OTHER_IMAGES


def scan_mix(path: str | Path, *, progress: bool = True) -> Counter:
    """Records per part; checks every record is LLaVA format (errors name the record and field)."""
    if not Path(path).is_file():
        raise InputError("does not exist", file=str(path))
    parts: Counter = Counter()
    for record in tqdm(iter_llava_json(path), desc="scan mix", unit=" records", disable=not progress):
        parts[part_of(record)] += 1
    if not sum(parts.values()):
        raise InputError("holds no records", file=str(path))
    if not parts[INSTRUCT]:
        raise InputError(
            f"no LLaVA-Instruct-150K records found (records whose image starts with "
            f"{INSTRUCT_IMAGE_PREFIX!r}, without academic-task instructions) among "
            f"{sum(parts.values()):,} records ({', '.join(f'{k} {v:,}' for k, v in sorted(parts.items()))}); "
            "is this LLaVA-v1.5-mix-665K?",
            file=str(path),
        )
    if parts[INSTRUCT] != LLAVA_INSTRUCT_SIZE:
        log.warning(
            "found %s LLaVA-Instruct-150K records, expected %s in the released LLaVA-v1.5-mix-665K",
            f"{parts[INSTRUCT]:,}",
            f"{LLAVA_INSTRUCT_SIZE:,}",
        )
    return parts


def _tables(rows: Iterator[dict[str, Any]]) -> Iterator[pa.Table]:
    schema = llava_features().arrow_schema
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= ROWS_PER_TABLE:
            yield pa.Table.from_pylist(chunk, schema=schema)
            chunk = []
    if chunk:
        yield pa.Table.from_pylist(chunk, schema=schema)


def core_llava_rows(pool: Pool, ids: list[str], *, seed: int, image_prefix: str) -> Iterator[dict[str, Any]]:
    for table in select_rows(pool, ids=ids, split=TRAIN):
        for row in table.drop_columns(["image"]).to_pylist():
            record = to_llava_record(row, seed=seed, image_prefix=image_prefix)
            yield llava_row(record, source=CORE_SOURCE)


def mixed_rows(
    path: str | Path, pool: Pool, ids: list[str], *, seed: int, image_prefix: str
) -> Iterator[dict[str, Any]]:
    """The mix in order, its LLaVA-Instruct records dropped and core-150k put in place of the first."""
    inserted = False
    for record in iter_llava_json(path):
        part = part_of(record)
        if part == INSTRUCT:
            if not inserted:
                yield from core_llava_rows(pool, ids, seed=seed, image_prefix=image_prefix)
                inserted = True
            continue
        yield llava_row(record, source=f"{MIX_SOURCE}/{part}")


def mix_rows(
    config: str,
    description: str,
    pool: Pool,
    ids: list[str],
    recipe: RecipeState,
    llava_mix: str | Path,
    parts: Counter,
    *,
    seed: int,
    image_prefix: str,
) -> ConfigRows:
    """ConfigRows of a recipe whose selection (``ids``, its state ``recipe``) replaces the LLaVA-Instruct
    part of ``llava_mix``; ``parts`` is :func:`scan_mix` of that file (checked before selecting)."""
    path = Path(llava_mix)
    total = sum(parts.values())
    replaced = {
        "file": path.name,
        "records_in": total,
        "parts_in": dict(sorted(parts.items())),
        "llava_instruct_found": parts[INSTRUCT],
        "llava_instruct_expected": LLAVA_INSTRUCT_SIZE,
        "replaced_by_core": len(ids),
        "records_out": total - parts[INSTRUCT] + len(ids),
        "rule": "image starts with coco/train2017/ and no academic-task instruction in a human turn",
    }
    log.info(
        "%s: replacing %s LLaVA-Instruct records (expected %s) of %s with %s selected records",
        config,
        f"{parts[INSTRUCT]:,}",
        f"{LLAVA_INSTRUCT_SIZE:,}",
        f"{total:,}",
        f"{len(ids):,}",
    )
    manifest = replace(recipe.manifest, counts={**recipe.manifest.counts, "mix": replaced})
    recipe = replace(recipe, manifest=manifest, mix=MixState(**replaced))
    rows = mixed_rows(path, pool, ids, seed=seed, image_prefix=image_prefix)
    return ConfigRows(
        name=config,
        description=description,
        features=llava_features(),
        splits={TRAIN: _tables(rows)},
        kind=RECIPE,
        schema=LLAVA_SCHEMA,
        pool_fingerprint=pool.fingerprint,
        task_mix=recipe.diagnostics.task_mix,
        recipe=recipe,
        ids=ids,
    )
