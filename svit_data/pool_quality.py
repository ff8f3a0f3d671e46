"""The quality summary ``pool.json`` keeps: flag counts per task and reason, example ids per reason, and
how many samples carry a flag (near-duplicates found over the whole pool included); the card shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from svit_data.ingest import EXAMPLES


def quality_summary(results: list, near: np.ndarray, files: list[Path]) -> dict:
    """Flag counts per task and reason, example ids per reason, and how many samples are flagged."""
    per_task: dict[str, dict[str, int]] = {}
    examples: dict[str, list[str]] = {}
    for result in results:
        for (task, code), n in sorted(result.flag_counts.items()):
            per_task.setdefault(task, {})[code] = per_task.setdefault(task, {}).get(code, 0) + n
        for code, ids in result.examples.items():
            examples.setdefault(code, [])
            examples[code] += ids[: EXAMPLES - len(examples[code])]
    flagged = 0
    near_ids: list[str] = []
    first = 0
    for file in files:
        table = pq.read_table(file, columns=["id", "task", "flags"])
        lengths = table["flags"].combine_chunks().value_lengths().to_numpy(zero_copy_only=False)
        hit = near[(near >= first) & (near < first + table.num_rows)] - first
        flagged += int(((lengths > 0) | np.isin(np.arange(table.num_rows), hit)).sum())
        for task in table["task"].take(pa.array(hit)).to_pylist():
            counts = per_task.setdefault(task, {})  # a task may have no other flag
            counts["near_duplicate"] = counts.get("near_duplicate", 0) + 1
        near_ids += table["id"].take(pa.array(hit[: max(EXAMPLES - len(near_ids), 0)])).to_pylist()
        first += table.num_rows
    if near_ids:
        examples["near_duplicate"] = near_ids
    return {"flagged": flagged, "per_task": per_task, "examples": examples}
