"""Pool-wide flags are added to a batch's ``flags`` by array operations: the same lists as appending the
code to each marked row's list, on random batches, slices and tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from svit_data.pool import _add_flag


def by_rows(batch: pa.RecordBatch, rows: np.ndarray, first: int, code: str) -> list[list[str]]:
    flags = batch.column(batch.schema.get_field_index("flags")).to_pylist()
    for row in rows:
        if first <= row < first + len(flags):
            flags[row - first] = [*flags[row - first], code]
    return flags


def test_added_flags_match_appending_row_by_row():
    rng = np.random.default_rng(0)
    codes = ["empty_answer", "bad_box", "near_duplicate", "long"]
    for trial in range(50):
        n = int(rng.integers(1, 60))
        flags = [list(rng.choice(codes, rng.integers(0, 3))) for _ in range(n)]
        batch = pa.RecordBatch.from_pydict(
            {"id": [str(i) for i in range(n)], "flags": pa.array(flags, pa.list_(pa.string()))}
        )
        if trial % 3 == 1:
            batch = batch.slice(int(rng.integers(0, n)))  # a slice: offsets into the parent arrays
        first = int(rng.integers(0, 100))
        rows = np.sort(rng.choice(first + 200, int(rng.integers(0, 40)), replace=False))
        got = _add_flag(batch, rows, first, "near_duplicate")
        assert got.column(1).to_pylist() == by_rows(batch, rows, first, "near_duplicate")
        assert got.schema == batch.schema
        table = pa.Table.from_batches([batch, batch])
        assert _add_flag(table, rows, first, "x").column("flags").to_pylist() == by_rows(
            batch, rows, first, "x"
        ) + by_rows(batch, rows, first + len(batch), "x")


def test_near_duplicates_of_a_task_without_other_flags_are_counted(tmp_path):
    import pyarrow.parquet as pq

    from svit_data.pool_quality import quality_summary

    pq.write_table(
        pa.table(
            {"id": ["a/1/0", "b/2/0"], "task": ["a", "b"], "flags": pa.array([[], []], pa.list_(pa.string()))}
        ),
        tmp_path / "part.parquet",
    )
    summary = quality_summary([], np.array([1]), [tmp_path / "part.parquet"])  # once a KeyError: 'b'
    assert summary["per_task"] == {"b": {"near_duplicate": 1}} and summary["flagged"] == 1
    assert summary["examples"] == {"near_duplicate": ["b/2/0"]}
