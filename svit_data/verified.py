"""The vision judge's verdicts, kept next to the pool they are about, and joined into its ``flags``.

``svit-recipe verify`` judges samples of a pool and saves one verdict per sample in
``$SVIT_CACHE/verified/<pool fingerprint>.parquet`` (columns ``id``, ``task``, ``supported``, ``reason``,
``model``; written atomically; a later run's verdict of the same sample replaces the earlier one). The
fingerprint covers the source files, the image index and the ingest settings, so a ``build`` with the
same ``--source``, ``--images`` and ``--image-data`` opens the same pool and finds the verdicts; a changed
source is another pool, whose samples nobody has judged yet.

When such a pool is opened (:func:`svit_data.sources.open_sources`), :func:`attach_verdicts` maps the
unsupported samples' ids to pool rows; :meth:`Pool.add_pool_flags` adds ``unsupported_by_image`` to
their ``flags`` (as it adds ``near_duplicate``), so recipes exclude them like any other flag, and
``pool.quality`` gains their counts per task, three example ids, and ``verification``: judged and
unsupported samples per task and the judging models (the card shows the rate per task).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svit_data import paths
from svit_data.atomic import atomic_open
from svit_data.tasks import NO_TASK_LABEL

log = logging.getLogger(__name__)

UNSUPPORTED = "unsupported_by_image"
EXAMPLES = 3
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("supported", pa.bool_()),
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


def attach_verdicts(pool):
    """``pool`` with its stored verdicts joined in (unchanged when it has none); see the module docstring."""
    table = read_verdicts(pool.fingerprint)
    if table is None or not table.num_rows:
        return pool
    verdicts = {
        i: (task or NO_TASK_LABEL, ok)
        for i, task, ok in zip(
            table["id"].to_pylist(), table["task"].to_pylist(), table["supported"].to_pylist(), strict=True
        )
    }
    rows, newly_flagged, first = [], 0, 0
    judged: dict[str, dict[str, int]] = {}
    examples: list[str] = []
    for batch in pool.iter_batches(columns=["id", "flags"]):
        ids, flags = batch.column(0).to_pylist(), batch.column(1).to_pylist()
        for offset, sample in enumerate(ids):
            found = verdicts.get(sample)
            if found is None:
                continue
            task, ok = found
            counts = judged.setdefault(task, {"judged": 0, "unsupported": 0})
            counts["judged"] += 1
            if not ok:
                counts["unsupported"] += 1
                rows.append(first + offset)
                newly_flagged += not flags[offset]
                if len(examples) < EXAMPLES:
                    examples.append(sample)
        first += batch.num_rows
    pool.unsupported = np.array(rows, np.int64)
    quality = {**pool.quality}
    per_task = {task: dict(codes) for task, codes in (quality.get("per_task") or {}).items()}
    for task, counts in judged.items():
        if counts["unsupported"]:
            per_task.setdefault(task, {})[UNSUPPORTED] = counts["unsupported"]
    quality["per_task"] = per_task
    quality["flagged"] = quality.get("flagged", 0) + newly_flagged
    if examples:
        quality["examples"] = {**(quality.get("examples") or {}), UNSUPPORTED: examples}
    quality["verification"] = {
        "models": sorted(set(table["model"].to_pylist())),
        "per_task": judged,
    }
    pool.quality = quality
    log.info(
        "pool %s: %d of %d judged samples are unsupported by their image (svit-recipe verify)",
        pool.fingerprint,
        len(rows),
        sum(c["judged"] for c in judged.values()),
    )
    return pool
