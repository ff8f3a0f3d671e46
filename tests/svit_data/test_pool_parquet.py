"""Pool parts: which columns get a dictionary, and that the values read back unchanged."""

from __future__ import annotations

import pyarrow.parquet as pq

from svit_data.pool_parquet import PLAIN_COLUMNS, leaf_paths, part_writer
from svit_data.schema import POOL_SCHEMA


def test_leaf_paths_are_the_parquet_columns_and_the_text_stays_plain(sample_pool, tmp_path):
    table = pq.read_table(sample_pool.files[0])
    assert table.schema.equals(POOL_SCHEMA, check_metadata=False)
    path = tmp_path / "part.parquet"
    with part_writer(path, POOL_SCHEMA) as writer:
        writer.write_table(table)
    written = pq.ParquetFile(path)
    columns = [written.schema.column(i).path for i in range(len(written.schema))]
    assert leaf_paths(POOL_SCHEMA) == columns
    group = written.metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)}
    assert PLAIN_COLUMNS < set(columns)
    for column, used in encodings.items():
        assert ("RLE_DICTIONARY" in used) == (column not in PLAIN_COLUMNS), column
    assert written.read().equals(table)
