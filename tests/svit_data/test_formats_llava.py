"""LLaVA-v1.5 format: the BAAI conversion (DESIGN.md §5) and the real LLaVA records in ../shared."""

from __future__ import annotations

import json
import re

import pytest
from datasets import Dataset

from svit_data.boxes import parse_box, parse_refs, to_square
from svit_data.errors import InputError
from svit_data.formats.llava import (
    REFERRING_INSTRUCTIONS,
    iter_llava_json,
    llava_features,
    llava_row,
    row_to_llava,
    to_llava_record,
)
from svit_data.formats.svit import expand_record


def referring_row(n: int = 0, **overrides) -> dict:
    row = {
        "id": f"referring_qa/42/{n}",
        "image_id": 42,
        "task": "referring_qa",
        "conversation_index": 0,
        "conversations": [
            {"from": "user", "value": "Where are the <st>men<ed>?"},
            {
                "from": "gpt",
                "value": "The <st>men<ed> [0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0] stand by the <st>bus<ed> [0.3, 0.3, 0.4, 0.4].",
            },
        ],
        "image": None,
        "image_file": "42.jpg",
        "width": 640,
        "height": 480,
        "provenance": None,
    }
    row.update(overrides)
    return row


def test_referring_qa_conversion_follows_baai():
    record = to_llava_record(referring_row(), seed=0)
    question, answer = record["conversations"]
    assert record["id"] == "referring_qa/42/0" and record["image"] == "42.jpg"
    assert question["from"] == "human" and answer["from"] == "gpt"
    first_line, rest = question["value"].split("\n", 1)
    assert first_line == "<image>"
    asked, instruction = rest.split("\n")
    assert asked == "Where are the men?"
    assert instruction in REFERRING_INSTRUCTIONS
    # markers removed, boxes in the padded-square frame (640x480: y shifts by 80, all / 640)
    assert answer["value"] == (
        "The men [0.1, 0.275, 0.5, 0.575], [0.0, 0.125, 1.0, 0.875] stand by the bus [0.3, 0.35, 0.4, 0.425]."
    )
    assert "<st>" not in json.dumps(record) and "<ed>" not in json.dumps(record)


def test_square_boxes_match_to_square_on_the_bundled_referring_samples(sample_pool_rows):
    rows = [r for r in sample_pool_rows if r["task"] == "referring_qa"][:200]
    assert rows
    for row in rows:
        record = to_llava_record(row)
        original = [
            b for turn in row["conversations"] for ref in parse_refs(turn["value"]) for b in ref.boxes
        ]
        converted = [
            parse_box(m.group(0))
            for turn in record["conversations"]
            for m in re.finditer(r"\[[^\]]*\]", turn["value"])
        ]
        assert converted == [to_square(b, row["width"], row["height"]) for b in original]


def test_instruction_choice_is_seeded_per_sample_and_order_free():
    rows = [referring_row(n) for n in range(60)]
    first = [to_llava_record(r, seed=1)["conversations"][0]["value"] for r in rows]
    again = [to_llava_record(r, seed=1)["conversations"][0]["value"] for r in reversed(rows)]
    assert first == list(reversed(again))
    chosen = {v.rsplit("\n", 1)[1] for v in first}
    assert chosen == set(REFERRING_INSTRUCTIONS)  # all three are used
    other = [to_llava_record(r, seed=2)["conversations"][0]["value"] for r in rows]
    assert other != first


def test_image_token_only_on_the_first_user_turn_and_no_instruction_outside_referring_qa():
    (sample,) = expand_record(
        {
            "image_id": 5,
            "conversations": [
                {
                    "content": [
                        {"from": "user", "value": "What is this?"},
                        {"from": "gpt", "value": "A cat."},
                        {"from": "user", "value": "Its color?"},
                        {"from": "gpt", "value": "Gray."},
                    ]
                }
            ],
        },
        "conversation",
    )
    record = to_llava_record(sample.to_row())
    assert [t["value"] for t in record["conversations"]] == [
        "<image>\nWhat is this?",
        "A cat.",
        "Its color?",
        "Gray.",
    ]
    assert [t["from"] for t in record["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert record["image"] == "5.jpg"
    assert to_llava_record(sample.to_row(), image_prefix="vg/VG_100K/")["image"] == "vg/VG_100K/5.jpg"


def test_original_frame_keeps_boxes_and_drops_markers():
    record = to_llava_record(referring_row(width=None, height=None), box_frame="original")
    assert "The men [0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0] stand" in record["conversations"][1]["value"]


def test_square_frame_needs_the_image_size():
    with pytest.raises(InputError, match="image size is unknown") as caught:
        to_llava_record(referring_row(width=None))
    assert caught.value.record == "referring_qa/42/0" and caught.value.field == "width"
    with pytest.raises(ValueError, match="unknown box frame"):
        to_llava_record(referring_row(), box_frame="diagonal")


def test_bad_box_in_a_row_is_located():
    row = referring_row()
    row["conversations"][1]["value"] = "The <st>men<ed> [0.6, 0.2, 0.5, 0.6]."
    with pytest.raises(InputError, match="reversed") as caught:
        to_llava_record(row)
    assert caught.value.field == "conversations[1].value"


# --- reading LLaVA files ----------------------------------------------------------------------------


@pytest.fixture
def scienceqa(shared_fixtures):
    return shared_fixtures / "llava" / "scienceqa_llava_format.sample.json"


def test_real_llava_file_reads_with_text_only_records(scienceqa):
    records = list(iter_llava_json(scienceqa))
    assert len(records) == 50
    with_image = [r for r in records if "image" in r]
    # the fixtures README says 40 + 10; the file itself has 20 image records and 30 text-only ones
    assert len(with_image) == 20 and len(records) - len(with_image) == 30
    assert records == json.loads(scienceqa.read_text())
    assert all(r["conversations"][0]["from"] == "human" for r in records)


def test_real_llava_records_become_rows_and_back_losslessly(scienceqa):
    records = list(iter_llava_json(scienceqa))
    rows = [llava_row(r, source="scienceqa") for r in records]
    dataset = Dataset.from_list(rows, features=llava_features())
    assert dataset.num_rows == 50
    assert sum(r is None for r in dataset["image_file"]) == 30
    assert [row_to_llava(r) for r in dataset] == records
    text_only = next(r for r in dataset if r["image_file"] is None)
    assert "image" not in row_to_llava(text_only)


def test_llava_json_lines_read_the_same(tmp_path, scienceqa):
    records = json.loads(scienceqa.read_text())
    lines = tmp_path / "s.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert list(iter_llava_json(lines)) == records


@pytest.mark.parametrize(
    "record, field, message",
    [
        ({"conversations": [{"from": "human", "value": "hi"}]}, "id", "missing"),
        (
            {"id": "1", "image": 3, "conversations": [{"from": "human", "value": "hi"}]},
            "image",
            "path string",
        ),
        ({"id": "1", "conversations": []}, "conversations", "non-empty list"),
        (
            {"id": "1", "conversations": [{"from": "user", "value": "hi"}]},
            "conversations[0].from",
            "unknown speaker",
        ),
        (
            {"id": "1", "conversations": [{"from": "gpt", "value": None}]},
            "conversations[0].value",
            "must be a string",
        ),
    ],
)
def test_bad_llava_records_are_located(tmp_path, record, field, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": "0", "conversations": [{"from": "human", "value": "ok"}]}, record]))
    with pytest.raises(InputError, match=message) as caught:
        list(iter_llava_json(path))
    assert (caught.value.file, caught.value.record, caught.value.field) == (str(path), 1, field)


TURNS = [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A cup."}]
ODD_RECORDS = [
    {"id": 1, "image": "a.jpg", "conversations": TURNS},
    {"id": "t", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]},
    {"id": "n", "image": "a.jpg", "conversations": [{"from": "human", "value": "No token"}]},
    {"id": "l", "image": ["a.jpg", "b.jpg"], "conversations": [{"from": "human", "value": "<image><image>"}]},
    {"id": "e", "image": "", "conversations": TURNS, "extra": [1]},
    {"id": "s", "image": "a.jpg", "conversations": [{"from": "human", "value": "<ima\x00ge>"}]},
    # not LLaVA: each is refused with its located error by both paths
    {"id": "2", "image": "a.jpg", "conversations": [{"from": "human", "value": "<image><image>"}]},
    {"id": "3", "conversations": [{"from": "human", "value": "<image>"}]},
    {"id": "4", "image": None, "conversations": TURNS},
    {"id": "5", "image": ["a.jpg", 7], "conversations": TURNS},
    {"id": "6", "conversations": "human: hi"},
    {"id": "7", "conversations": {"from": "human", "value": "hi"}},
    {"id": "8", "conversations": ["hi"]},
    {"id": "9", "conversations": [{"from": ["human"], "value": "hi"}]},
    {"id": "10", "conversations": [{"from": "human", "value": 3}]},
    {"id": "11", "conversations": [{"value": "hi"}]},
    {"conversations": TURNS},
    ["not", "a", "record"],
]


@pytest.mark.parametrize("record", ODD_RECORDS, ids=range(len(ODD_RECORDS)))
def test_fast_reader_agrees_with_the_checked_reader(record):
    """The one-pass reader (``_fast_record``) takes only records the checked rule accepts, and gives
    them the same SourceRecord; the others get the checked rule's located error."""
    from svit_data.formats.llava import _fast_record, check_llava_record, read_llava_records
    from svit_data.formats.record import SourceRecord, check_image_tokens

    try:
        check_llava_record(record, file="f.json", index=5, image_lists=True)
        image = record.get("image")
        expected = SourceRecord(
            str(record["id"]),
            ["user" if t["from"] == "human" else "gpt" for t in record["conversations"]],
            [t["value"] for t in record["conversations"]],
            [] if image is None else list(image) if isinstance(image, list) else [image],
            image_list=isinstance(image, list),
        )
        check_image_tokens(expected, file="f.json", index=5, field_name="image")
    except InputError as error:
        assert _fast_record(record) is None
        with pytest.raises(InputError) as caught:
            list(read_llava_records([record], file="f.json", start=5))
        assert (caught.value.message, caught.value.record, caught.value.field) == (
            error.message,
            5,
            error.field,
        )
        return
    assert _fast_record(record) == expected
    assert list(read_llava_records([record], file="f.json", start=5)) == [expected]
