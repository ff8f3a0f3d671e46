"""Mixed pools: several sources' parquet files side by side, with near-duplicates found across them.

Each source's own near-duplicate rows come with its pool; one more pass over the mixed pool in pool order
(cached by the mix's fingerprint) flags a long answer that templates another source's, so a LLaVA answer
copying an SVIT one is flagged ``near_duplicate`` and the first copy in pool order stays clean. That pass
reads the signatures each source's ingest stored (:mod:`svit_data.pool_signatures`) instead of signing
every long answer again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svit_data import paths
from svit_data.pool import Pool
from svit_data.pool_signatures import concatenate, pool_signature_parts
from svit_data.quality.near_duplicates import confirmed_rows, near_duplicate_rows
from svit_data.tasks import NO_TASK_LABEL

EXAMPLES = 3


def near_duplicates_of(files: list[Path]) -> np.ndarray:
    """Sorted rows (over ``files`` in order) whose long answer templates an earlier sample's."""
    return near_duplicate_rows(
        batch.column(0)
        for file in files
        for batch in pq.ParquetFile(file).iter_batches(columns=["conversations"], batch_size=65_536)
    )


def mixed_near_duplicates(pools: list[Pool]) -> np.ndarray:
    """:func:`near_duplicates_of` the pools' files, from the signatures each pool stored at ingest: every
    part's signatures are copied into one array (rows numbered on from the earlier parts and pools). The
    first pool's own near-duplicates are those its ingest found (the walk compares only the later pools'
    documents)."""
    stored = [pool_signature_parts(pool.root, pool.files) for pool in pools]
    first_doc = sum(len(rows) for (_, rows), _ in stored[0])
    offsets = np.cumsum([0, *(pool.num_rows for pool in pools[:-1])]).tolist()
    signatures, rows = concatenate(
        (part, first + offset) for parts, offset in zip(stored, offsets, strict=True) for part, first in parts
    )
    del stored
    # the first pool's documents are compared with earlier ones of the same pool only: its own rows
    return np.union1d(pools[0].near_duplicates, confirmed_rows([(signatures, rows)], first_doc))


def _found_across(pools: list[Pool], merged: Pool, within: np.ndarray) -> dict[str, Any]:
    """The pass over the whole mixed pool: its near-duplicate rows and the quality counts of the rows it
    adds to the sources' own (``within``)."""
    across = mixed_near_duplicates(pools)
    new = np.setdiff1d(across, within)
    added: dict[str, Any] = {"rows": across.tolist(), "flagged": 0, "per_task": {}, "examples": []}
    if len(new):
        table = merged.table(["id", "task", "flags"]).take(pa.array(new, pa.int64()))
        added["flagged"] = int((table["flags"].combine_chunks().value_lengths().to_numpy() == 0).sum())
        for task in table["task"].to_pylist():
            label = task or NO_TASK_LABEL
            added["per_task"][label] = added["per_task"].get(label, 0) + 1
        added["examples"] = table["id"].to_pylist()[:EXAMPLES]
    return added


def cross_source_near_duplicates(
    pools: list[Pool], merged: Pool, within: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]]:
    """The near-duplicate rows of the mixed pool (its sources' own, ``within``, plus those found over the
    whole pool in pool order), and the quality counts the rows found across sources add; cached by the
    mix's fingerprint (a mix of the same sources finds the same rows)."""
    cached = paths.cache_dir() / "pools" / f"{merged.fingerprint}-near.json"
    if cached.is_file():
        added = json.loads(cached.read_text())
    else:
        added = _found_across(pools, merged, within)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(added))
        tmp.replace(cached)
    return np.union1d(within, np.array(added["rows"], np.int64)).astype(np.int64), added


def merge_pools(pools: list[Pool]) -> Pool:
    digest = hashlib.sha1("+".join(p.fingerprint for p in pools).encode(), usedforsecurity=False)
    counts: dict[str, int] = {}
    quality: dict[str, Any] = {"flagged": 0, "per_task": {}, "examples": {}}
    near, offset = [], 0
    for pool in pools:
        for task, count in pool.counts.items():
            counts[task] = counts.get(task, 0) + count
        quality["flagged"] += pool.quality.get("flagged", 0)
        for task, codes in pool.quality.get("per_task", {}).items():
            into = quality["per_task"].setdefault(task, {})
            for code, count in codes.items():
                into[code] = into.get(code, 0) + count
        for code, ids in pool.quality.get("examples", {}).items():
            kept = quality["examples"].setdefault(code, [])
            kept += ids[: EXAMPLES - len(kept)]
        near.append(pool.near_duplicates + offset)  # pool rows of the mixed pool
        offset += pool.num_rows
    merged = Pool(
        root=pools[0].root,
        files=[file for pool in pools for file in pool.files],
        fingerprint="mix-" + digest.hexdigest()[:12],
        counts=counts,
        images_root=next((p.images_root for p in pools if p.images_root), None),
        source=" + ".join(p.source for p in pools),
        task_files={t: fs for p in pools for t, fs in p.task_files.items()},
        source_counts={name: n for p in pools for name, n in p.source_counts.items()},
        formats={name: f for p in pools for name, f in p.formats.items()},
        near_duplicates=np.concatenate(near).astype(np.int64),
        quality=quality,
        parts=list(pools),
    )
    merged.near_duplicates, added = cross_source_near_duplicates(pools, merged, merged.near_duplicates)
    quality["flagged"] += added["flagged"]
    for task, count in added["per_task"].items():
        into = quality["per_task"].setdefault(task, {})
        into["near_duplicate"] = into.get("near_duplicate", 0) + count
    kept = quality["examples"].setdefault("near_duplicate", [])
    kept += added["examples"][: EXAMPLES - len(kept)]
    if not kept:
        del quality["examples"]["near_duplicate"]
    return merged
