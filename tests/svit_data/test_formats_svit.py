"""SVIT original format: records expand into samples and group back losslessly; bad records are located."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svit_data.errors import InputError
from svit_data.formats.jsonstream import iter_json_array
from svit_data.formats.svit import check_record, expand_record, group_samples, iter_samples, write_json_array
from svit_data.tasks import PER_QA_TASKS, TASK_FILES, TASKS


def qa(n: int, prefix: str = "q") -> list[dict[str, str]]:
    turns = []
    for k in range(n):
        turns += [{"from": "user", "value": f"{prefix}{k}?"}, {"from": "gpt", "value": f"a{k}."}]
    return turns


def record(task: str, image_id: int = 7) -> dict:
    if task == "conversation":
        conversations = [{"content": qa(5, f"c{c}-")} for c in range(3)]
    elif task == "detail_description":
        conversations = [{"content": qa(1)}]
    else:
        conversations = [{"content": qa(15 if task == "complex_reasoning" else 10)}]
    return {"image_id": image_id, "conversations": conversations}


def test_conversation_expands_to_one_sample_per_conversation():
    samples = expand_record(record("conversation"), "conversation")
    assert [s.id for s in samples] == ["conversation/7/0", "conversation/7/1", "conversation/7/2"]
    assert [s.conversation_index for s in samples] == [0, 1, 2]
    assert all(len(s.conversations) == 10 for s in samples)
    assert samples[1].conversations[0] == {"from": "user", "value": "c1-0?"}


@pytest.mark.parametrize("task, count", [("complex_reasoning", 15), ("referring_qa", 10)])
def test_per_qa_tasks_expand_to_one_sample_per_qa(task, count):
    samples = expand_record(record(task), task)
    assert len(samples) == count
    assert [s.id for s in samples][:2] == [f"{task}/7/0", f"{task}/7/1"]
    assert all(s.conversation_index == 0 and len(s.conversations) == 2 for s in samples)
    assert samples[4].conversations == [{"from": "user", "value": "q4?"}, {"from": "gpt", "value": "a4."}]


def test_detail_description_is_one_sample():
    (sample,) = expand_record(record("detail_description"), "detail_description")
    assert sample.id == "detail_description/7/0" and len(sample.conversations) == 2


def test_per_qa_numbering_runs_across_conversations():
    rec = {"image_id": 3, "conversations": [{"content": qa(2)}, {"content": qa(3)}]}
    samples = expand_record(rec, "referring_qa")
    assert [s.id.split("/")[-1] for s in samples] == ["0", "1", "2", "3", "4"]
    assert [s.conversation_index for s in samples] == [0, 0, 1, 1, 1]


@pytest.mark.parametrize("task", TASKS)
def test_expand_then_group_is_lossless(task):
    original = record(task)
    rows = [s.to_row() for s in expand_record(original, task)]
    assert list(group_samples(rows)) == [original]


def test_extras_written_by_builders_are_kept():
    original = {
        **record("referring_qa"),
        "width": 640,
        "height": 480,
        "image_file": "VG_100K/7.jpg",
        "provenance": {"model": "gpt-4", "source_ids": [1]},
    }
    samples = expand_record(original, "referring_qa")
    assert samples[0].width == 640 and samples[0].image_file == "VG_100K/7.jpg"
    assert list(group_samples(s.to_row() for s in samples)) == [original]


def test_group_samples_restores_order_when_rows_come_sorted_by_id_string():
    original = record("complex_reasoning")
    rows = sorted((s.to_row() for s in expand_record(original, "complex_reasoning")), key=lambda r: r["id"])
    assert rows[2]["id"] == "complex_reasoning/7/10"  # string order puts 10 before 2
    assert list(group_samples(rows)) == [original]


turn_text = st.text(max_size=40)


@st.composite
def records(draw, task):
    per_qa = task in PER_QA_TASKS
    conversations = []
    for _ in range(draw(st.integers(1, 3))):
        pairs = draw(st.integers(1, 4))
        turns = []
        for _ in range(pairs):
            turns += [{"from": "user", "value": draw(turn_text)}, {"from": "gpt", "value": draw(turn_text)}]
        if not per_qa and draw(st.booleans()):
            turns.append({"from": "user", "value": draw(turn_text)})  # conversations may end on any turn
        conversations.append({"content": turns})
    return {"image_id": draw(st.integers(0, 2**40)), "conversations": conversations}


@settings(max_examples=60)
@given(st.data())
def test_svit_internal_svit_round_trip_property(data):
    task = data.draw(st.sampled_from(TASKS))
    originals = [data.draw(records(task)) for _ in range(data.draw(st.integers(1, 3)))]
    originals = list({r["image_id"]: r for r in originals}.values())
    rows = [s.to_row() for s in iter_samples(originals, task, file="x.json")]
    assert len({r["id"] for r in rows}) == len(rows)
    assert list(group_samples(rows)) == originals


def test_the_bundled_sample_round_trips_file_by_file(tmp_path):
    from svit_data.sample import sample_dir

    folder = sample_dir()
    for task in TASKS:
        originals = list(iter_json_array(folder / TASK_FILES[task]))
        rows = [s.to_row() for s in iter_samples(originals, task, file=task)]
        write_json_array(group_samples(rows), tmp_path / TASK_FILES[task])
        assert list(iter_json_array(tmp_path / TASK_FILES[task])) == originals


BAD = [
    ("not a dict", None, "must be a JSON object"),
    ({"conversations": []}, "image_id", "missing"),
    ({"image_id": "7", "conversations": []}, "image_id", "must be an integer"),
    ({"image_id": True, "conversations": []}, "image_id", "must be an integer"),
    ({"image_id": 7}, "conversations", "missing"),
    ({"image_id": 7, "conversations": {}}, "conversations", "must be a list"),
    ({"image_id": 7, "conversations": [{"turns": []}]}, "conversations[0].content", "list of turns"),
    (
        {"image_id": 7, "conversations": [{"content": ["hi"]}]},
        "conversations[0].content[0]",
        "must be an object",
    ),
    (
        {"image_id": 7, "conversations": [{"content": [{"from": "human", "value": "hi"}]}]},
        "conversations[0].content[0].from",
        "unknown speaker 'human'",
    ),
    (
        {"image_id": 7, "conversations": [{"content": [{"from": "user", "value": 3}]}]},
        "conversations[0].content[0].value",
        "must be a string",
    ),
    (
        {
            "image_id": 7,
            "conversations": [
                {"content": qa(1) + [{"from": "gpt", "value": "<st>cat<ed> [0.5, 0.1, 1.3, 0.2]"}]}
            ],
        },
        "conversations[0].content[2].value",
        "0-1",
    ),
    (
        {
            "image_id": 7,
            "conversations": [{"content": [{"from": "user", "value": "<st>cat<ed> [0.5, 0.1, 0.2, 0.2]"}]}],
        },
        "conversations[0].content[0].value",
        "reversed",
    ),
]


@pytest.mark.parametrize("bad, field, message", BAD)
def test_bad_records_name_file_record_and_field(bad, field, message):
    with pytest.raises(InputError, match=message) as caught:
        check_record(bad, file="conversation.json", index=12)
    error = caught.value
    assert (error.file, error.record, error.field) == ("conversation.json", 12, field)
    text = str(error)
    assert text.startswith("conversation.json: record 12") and "\n" not in text
    if field:
        assert repr(field) in text


def test_per_qa_records_need_alternating_pairs():
    odd = {"image_id": 1, "conversations": [{"content": qa(2)[:3]}]}
    with pytest.raises(InputError, match="even number") as caught:
        expand_record(odd, "referring_qa", file="r.json", index=4)
    assert caught.value.field == "conversations[0].content"
    swapped = {"image_id": 1, "conversations": [{"content": list(reversed(qa(1)))}]}
    with pytest.raises(InputError, match="expected speaker 'user'") as caught:
        expand_record(swapped, "complex_reasoning", file="c.json", index=0)
    assert caught.value.field == "conversations[0].content[0].from"
    # the same turns are fine as one conversation sample
    assert len(expand_record(odd, "conversation")) == 1


def test_write_json_array_streams_and_is_atomic(tmp_path):
    path = tmp_path / "out.json"
    assert write_json_array(({"n": k, "t": "é"} for k in range(1000)), path) == 1000
    assert json.loads(path.read_text(encoding="utf-8")) == [{"n": k, "t": "é"} for k in range(1000)]
    before = path.read_bytes()

    def failing():
        yield {"n": 1}
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_json_array(failing(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert write_json_array([], tmp_path / "empty.json") == 0
    assert json.loads((tmp_path / "empty.json").read_text()) == []


def test_random_record_order_does_not_change_sample_ids():
    records_ = [record(task, image_id=k) for k, task in enumerate(["referring_qa"] * 5)]
    ids = sorted(s.id for s in iter_samples(records_, "referring_qa", file="r"))
    random.Random(0).shuffle(records_)
    assert sorted(s.id for s in iter_samples(records_, "referring_qa", file="r")) == ids
