import logging

import pyarrow as pa
import pyarrow.parquet as pq

from svit_data.train.data import open_dataset


def test_flagged_samples_are_skipped_and_counted_unless_included(tmp_path, caplog):
    turns = [{"from": "human", "value": "Is it red?"}, {"from": "gpt", "value": "Yes."}]
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "conversations": [turns] * 4,
            "flags": [[], ["error_reply"], ["box_repaired"], ["duplicate_qa", "near_duplicate"]],
        }
    )
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    caplog.set_level(logging.INFO)
    kept = open_dataset(str(path))
    assert kept["id"] == ["a", "c"]  # a repair does not exclude
    assert "skipping 2 flagged samples (duplicate_qa 1, error_reply 1, near_duplicate 1)" in caplog.text
    assert open_dataset(str(path), include_flagged=True)["id"] == ["a", "b", "c", "d"]
