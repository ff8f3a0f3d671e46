"""Third-party ingest a batch at a time gives what the per-sample rule gives: each sample's flags
(:func:`check_record`), its signals (:func:`sample_signals`), the near-duplicate rows of a pass over the
written pool, the counts, and under ``--strict`` the same first located error."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import svit_data.source_ingest as source_ingest
from svit_data.errors import InputError
from svit_data.formats.sources import read_source
from svit_data.mixed_pool import near_duplicates_of
from svit_data.quality.signals import sample_signals
from svit_data.source_batches import NOT_FOR_SOURCES, SourceBatch, check_record
from svit_data.sources import open_source, parse_source

QUESTIONS = [
    "What is in the image?",
    "Please provide the bounding box coordinate of the region this sentence describes: a dog.",
    "Where is the <st>cat<ed> [0.1, 0.2, 0.3, 0.4]?",
    "Is the CAFÉ open?",
    "Where is the \u212aite?",
    "Describe the scene from the given",
    "",
]
ANSWERS = [
    "[0.58, 0.29, 0.95, 0.62]",
    "The <st>cat<ed> [0.3, 0.2, 0.1, 0.4] sleeps.",
    "The <st>cat [0.1, 0.2]<ed> holds a short box.",
    "information is what the caption says.",
    "It seems like your message is empty.",
    "   ",
    "The café is open\u00a0today.",
    "Yes.",
    "two <st>dogs<ed> [0.1, 0.2, 0.3, 0.4] play on the green grass near the old house while the sun sets "
    "behind the hills and a small bird sings its {} song from the top of the tall tree",
]


def hostile_records(count: int, seed: int) -> list[dict]:
    """LLaVA records with every kind of flag, boxes in every shape, repeated pairs and templated answers."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        turns = []
        for _ in range(rng.randint(1, 4)):
            answer = rng.choice(ANSWERS).replace("{}", rng.choice(["happy", "sad", str(i)]))
            turns += [{"from": "human", "value": rng.choice(QUESTIONS)}, {"from": "gpt", "value": answer}]
        if rng.random() < 0.1:
            turns[rng.randrange(len(turns))]["from"] = rng.choice(["gpt", "human"])
        if rng.random() < 0.1:
            turns += [dict(turn) for turn in turns[:2]]  # a pair repeated within the sample
        if rng.random() < 0.1:
            turns = turns[:-1]
        record = {"id": f"r{i % 7}", "conversations": turns}
        if rng.random() < 0.6:
            record["image"] = f"images/{i}.jpg"
            if rng.random() < 0.5:
                turns[0]["value"] = "<image>\n" + turns[0]["value"]
        records.append(record)
    return records


def write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records))
    return path


def test_the_batch_check_gives_each_samples_rule_flags_and_signals(tmp_path):
    file = write(tmp_path / "hostile.json", hostile_records(600, seed=1))
    batch = SourceBatch()
    for where, index, record in read_source(file, "llava"):
        batch.append(where, index, record)
    froms, values, offsets = batch.turns()
    checked = batch.check(froms, values, offsets, strict=False)
    expected = {}
    for i, record in enumerate(batch.records):
        if flags := check_record(record, strict=False, file=file, index=i):
            expected[i] = flags
        speakers, texts = [t["from"] for t in record.turns], [t["value"] for t in record.turns]
        signals = (checked.answer_words[i], checked.qa_pairs[i], checked.boxes[i])
        assert tuple(int(s) for s in signals) == sample_signals(speakers, texts), i
    assert checked.flagged == expected
    codes = {code for flags in expected.values() for code in flags}
    assert {"turn_order", "source_mention", "error_reply", "empty_answer"} <= codes  # the fixture bites
    assert not codes & NOT_FOR_SOURCES
    assert checked.values.to_pylist() == values.to_pylist()  # nothing is repaired


def test_batches_give_the_counts_and_near_duplicates_of_a_pass_over_the_pool(tmp_path, monkeypatch):
    file = write(tmp_path / "hostile.json", hostile_records(700, seed=2))
    monkeypatch.setattr(source_ingest, "BATCH_ROWS", 128)  # several batches; templates repeat across them
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    pool = open_source(parse_source(f"mine={file}"), progress=False)
    table = pq.read_table(pool.files[0])
    assert table["id"].to_pylist() == [f"mine/{n}" for n in range(700)]
    flags = table["flags"].to_pylist()
    records = [r for _, _, r in read_source(file, "llava")]
    assert flags == [check_record(r, strict=False, file=file, index=i) for i, r in enumerate(records)]
    near = near_duplicates_of(pool.files)
    assert pool.near_duplicates.tolist() == near.tolist()
    assert any(row >= 128 for row in near)  # found across batches
    counts: dict[str, int] = {}
    for row_flags in flags:
        for code in row_flags:
            counts[code] = counts.get(code, 0) + 1
    counts["near_duplicate"] = len(near)
    assert pool.quality["per_task"] == {"none": counts}
    assert pool.quality["flagged"] == len({i for i, f in enumerate(flags) if f} | set(near.tolist()))
    for code, ids in pool.quality["examples"].items():
        rows = [i for i, f in enumerate(flags) if code in f] if code != "near_duplicate" else near.tolist()
        assert ids == [f"mine/{row}" for row in rows[:3]]


def test_strict_names_an_earlier_flag_before_a_later_broken_record(tmp_path, monkeypatch):
    records = [
        {"id": "a", "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Yes."}]},
        {"id": "b", "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "  "}]},
        {"id": "c", "conversations": [{"from": "robot", "value": "Hi?"}]},
    ]
    file = write(tmp_path / "broken.json", records)
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError, match=r"record 1: field 'turn 1': empty_answer"):
        open_source(parse_source(f"mine={file}"), progress=False, strict=True)
    with pytest.raises(InputError, match=r"record 2: field 'conversations\[0\].from': unknown speaker"):
        open_source(parse_source(f"mine={file}"), progress=False)
    assert not list((tmp_path / "cache").rglob("*.parquet"))  # nothing half-written
