"""The sample schema: declared once as Features, stable ids, the task set, the typed row helper."""

from __future__ import annotations

import pytest
from datasets import Dataset, Image, List, Value

from svit_data.schema import COLUMNS, FEATURES, Sample, default_image_file, parse_sample_id, sample_id
from svit_data.tasks import PER_QA_TASKS, TASK_FILES, TASKS, check_task


def test_tasks_are_the_four_svit_tasks():
    assert TASKS == ("conversation", "complex_reasoning", "referring_qa", "detail_description")
    assert PER_QA_TASKS == {"complex_reasoning", "referring_qa"}
    assert TASK_FILES["referring_qa"] == "referring_qa.json"
    assert check_task("conversation") == "conversation"
    with pytest.raises(ValueError, match="unknown task 'chat'"):
        check_task("chat")


def test_features_declare_every_column():
    assert COLUMNS == (
        "id",
        "image_id",
        "task",
        "conversation_index",
        "conversations",
        "image",
        "image_file",
        "width",
        "height",
        "provenance",
        "flags",
        "source",
        "source_id",
        "images",
        "box_frame",
    )
    assert FEATURES["image_id"] == Value("int64")
    assert isinstance(FEATURES["image"], Image)
    assert isinstance(FEATURES["conversations"], List)  # List, not Sequence, for lists of dicts
    assert FEATURES["conversations"].feature == {"from": Value("string"), "value": Value("string")}
    assert set(FEATURES["provenance"]) == {
        "model",
        "prompt_hash",
        "request_id",
        "source_ids",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    }


def test_sample_ids_are_stable_and_parse_back():
    assert sample_id("conversation", 2345, 1) == "conversation/2345/1"
    assert sample_id("referring_qa", "7", 0) == "referring_qa/7/0"
    assert parse_sample_id("complex_reasoning/10/14") == ("complex_reasoning", 10, 14)
    with pytest.raises(ValueError):
        sample_id("chat", 1, 0)
    with pytest.raises(ValueError):
        parse_sample_id("conversation/1")


def make_sample(**overrides) -> Sample:
    values = dict(
        image_id=42,
        task="referring_qa",
        n=3,
        conversation_index=0,
        conversations=[
            {"from": "user", "value": "Where is the dog?"},
            {"from": "gpt", "value": "The <st>dog<ed> [0.1, 0.2, 0.3, 0.4] is on the left."},
        ],
    )
    values.update(overrides)
    return Sample(**values)


def test_to_row_fills_defaults_and_matches_features():
    sample = make_sample()
    row = sample.to_row()
    assert sample.id == "referring_qa/42/3" and sample.is_per_qa
    assert row["id"] == "referring_qa/42/3"
    assert row["image_file"] == default_image_file(42) == "42.jpg"
    assert row["image"] is None and row["provenance"] is None and row["width"] is None
    dataset = Dataset.from_list([row], features=FEATURES)
    assert dataset.features == FEATURES
    assert dataset[0]["conversations"] == row["conversations"]


def test_rows_with_images_and_provenance_round_trip_through_arrow():
    provenance = {
        "model": "gpt-4",
        "prompt_hash": "abc",
        "request_id": "r1",
        "source_ids": [1, 2],
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_usd": 0.5,
    }
    sample = make_sample(
        image_bytes=b"\x89PNG fake", image_file="vg/42.png", width=640, height=480, provenance=provenance
    )
    row = sample.to_row()
    assert row["image"] == {"bytes": b"\x89PNG fake", "path": "vg/42.png"}
    table = Dataset.from_list([row], features=FEATURES).with_format("arrow")[:]
    back = Sample.from_row(table.to_pylist()[0])
    assert back == sample


def test_from_row_to_row_is_identity():
    row = make_sample(width=10, height=20, image_file="42.png").to_row()
    assert Sample.from_row(row).to_row() == row
