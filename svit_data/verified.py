"""The verdicts of ``svit-recipe verify``, kept next to the pool they are about, and joined into its ``flags``.

``svit-recipe verify`` checks samples of a pool and saves one verdict per sample in
``$SVIT_CACHE/verified/<pool fingerprint>.parquet`` (columns ``id``, ``task``, ``supported``, ``code``: the
flag of an unsupported sample, ``unsupported_by_image`` from the vision judge or ``ungrounded_box`` from the
source annotations, ``reason``, ``model``; written atomically; a later verdict of the same sample replaces
the earlier one). The fingerprint covers the source files, the image index and the ingest settings, so a
``build`` with the same ``--source``, ``--images`` and ``--image-data`` opens the same pool and finds the
verdicts; a changed source is another pool, whose samples nobody has checked yet.

When such a pool is opened (:func:`svit_data.sources.open_sources`), :func:`attach_verdicts` maps the
flagged samples' ids to pool rows; :meth:`Pool.add_pool_flags` adds their codes to ``flags`` (as it adds
``near_duplicate``), so recipes exclude them like any other flag, and ``pool.quality`` gains their counts
per task, three example ids per code, and ``verification``: checked samples and flags per task, and the
judging models (the card shows the rate per task).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svit_data import paths
from svit_data.atomic import atomic_open
from svit_data.tasks import NO_TASK_LABEL

if TYPE_CHECKING:
    from svit_data.pool import Pool

log = logging.getLogger(__name__)

UNSUPPORTED = "unsupported_by_image"
UNGROUNDED = "ungrounded_box"
EXAMPLES = 3
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("supported", pa.bool_()),
        ("code", pa.string()),
        ("reason", pa.string()),
        ("model", pa.string()),
    ]
)


def store_path(fingerprint: str) -> Path:
    return paths.cache_dir() / "verified" / f"{fingerprint}.parquet"


def read_verdicts(fingerprint: str) -> pa.Table | None:
    path = store_path(fingerprint)
    return pq.read_table(path, schema=SCHEMA) if path.is_file() else None


def save_verdicts(fingerprint: str, verdicts: list[dict]) -> Path:
    """Merge ``verdicts`` (dicts with the SCHEMA's keys) into the pool's store; new verdicts win."""
    new = pa.Table.from_pylist(verdicts, schema=SCHEMA)
    old = read_verdicts(fingerprint)
    if old is not None:
        fresh = set(new["id"].to_pylist())
        keep = np.array([i not in fresh for i in old["id"].to_pylist()], bool)
        new = pa.concat_tables([old.filter(pa.array(keep)), new])
    new = new.sort_by("id")
    path = store_path(fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb", durable=True) as handle:
        pq.write_table(new, handle)
    return path


def attach_verdicts(pool: Pool) -> Pool:
    """``pool`` with its stored verdicts joined in (unchanged when it has none); see the module docstring."""
    table = read_verdicts(pool.fingerprint)
    if table is None or not table.num_rows:
        return pool
    columns = [table[name].to_pylist() for name in ("id", "task", "supported", "code")]
    verdicts = {i: (task or NO_TASK_LABEL, ok, code) for i, task, ok, code in zip(*columns, strict=True)}
    rows: dict[str, list[int]] = {}
    examples: dict[str, list[str]] = {}
    checked: dict[str, dict[str, int]] = {}
    newly_flagged, first = 0, 0
    for batch in pool.iter_batches(columns=["id", "flags"]):
        ids, flags = batch.column(0).to_pylist(), batch.column(1).to_pylist()
        for offset, sample in enumerate(ids):
            found = verdicts.get(sample)
            if found is None:
                continue
            task, ok, code = found
            counts = checked.setdefault(task, {"checked": 0, UNSUPPORTED: 0, UNGROUNDED: 0})
            counts["checked"] += 1
            if not ok:
                code = code or UNSUPPORTED
                counts[code] = counts.get(code, 0) + 1
                rows.setdefault(code, []).append(first + offset)
                newly_flagged += not flags[offset]
                if len(examples.setdefault(code, [])) < EXAMPLES:
                    examples[code].append(sample)
        first += batch.num_rows
    pool.verified_flags = {code: np.array(found, np.int64) for code, found in rows.items()}
    quality = {**pool.quality}
    per_task = {task: dict(codes) for task, codes in (quality.get("per_task") or {}).items()}
    for task, counts in checked.items():
        for code in (UNSUPPORTED, UNGROUNDED):
            if counts[code]:
                per_task.setdefault(task, {})[code] = per_task.get(task, {}).get(code, 0) + counts[code]
    quality["per_task"] = per_task
    quality["flagged"] = quality.get("flagged", 0) + newly_flagged
    quality["examples"] = {**(quality.get("examples") or {}), **examples}
    models = sorted({m for m in table["model"].to_pylist() if m})
    quality["verification"] = {"models": models, "per_task": checked}
    pool.quality = quality
    log.info(
        "pool %s: %d of %d checked samples are flagged by svit-recipe verify",
        pool.fingerprint,
        sum(len(r) for r in rows.values()),
        sum(c["checked"] for c in checked.values()),
    )
    return pool
