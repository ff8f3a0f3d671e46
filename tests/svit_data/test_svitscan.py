"""The compiled SVIT reader against the standard library's: the same pool, flags, signatures and errors.

Every test ingests the same bytes twice, with ``svit_data.ingest.COMPILED`` on and off, and requires
identical results; small chunks, batches and first arrays push every record across a chunk edge, a
batch edge and an array growth.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import svit_data.ingest as ingest
import svit_data.ingest_fast as ingest_fast
from svit_data.errors import InputError
from svit_data.formats import jsonbytes
from svit_data.ingest import IngestJob, ingest_file
from svit_data.sample import sample_dir
from svit_data.schema import POOL_SCHEMA
from svit_data.tasks import TASK_FILES

TEXTS = [
    "plain text, with a comma",
    'quote " backslash \\ slash / controls \n\t\r\b\f',
    "non-ASCII: übergroß 中文 🙂 and <st>box<ed> [0.1, 0.2, 0.3, 0.4]",
    "",
    "\x00 and \x1f escaped",
    "}]{[ brackets inside a string",
    "Is there a dog? Yes.",
]


def turns(rng: random.Random, count: int, speakers=("user", "gpt")) -> list[dict]:
    return [{"from": speakers[t % 2], "value": rng.choice(TEXTS) + f" {t}"} for t in range(count)]


def hostile_records(count: int, seed: int = 0) -> list[dict]:
    """Records in and out of the compiled shape: key orders, sizes, extra keys, odd speakers and turns."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        kind = i % 12
        conversations = [
            {"content": turns(rng, rng.choice([0, 1, 2, 3, 4, 6]))} for _ in range(rng.randint(0, 3))
        ]
        record = {"image_id": i - 3 if kind == 1 else 1000 + i, "conversations": conversations}
        if kind == 2:
            record = {"conversations": conversations, "image_id": 1000 + i}  # another key order
        elif kind == 3:
            record.update(width=640 + i, height=480)
        elif kind == 4:
            record.update(width=None, height=None)
        elif kind == 5:
            record.update(width=300)  # a width without a height
        elif kind == 6:
            record.update(image_file=f"vg/{i}.jpg")  # outside the compiled shape
        elif kind == 7:
            record.update(provenance={"model": "m", "prompt": i})
        elif kind == 8:
            record["conversations"] = [{"content": turns(rng, 4, ("gpt", "user"))}]  # not alternating
        elif kind == 9:
            record["conversations"] = [{"content": turns(rng, 2, ("human", "gpt"))}]  # another speaker
        elif kind == 10:
            record["note"] = [1, {"a": "b"}, None]  # an unknown key
        elif kind == 11:
            record["conversations"] = [
                {"content": [{"value": "v first", "from": "user"}, {"from": "gpt", "value": "x"}]}
            ]
        records.append(record)
    return records


def write(
    path: Path, records: list, *, indent: int | None = None, ascii_every: int = 2, bom: bool = False
) -> Path:
    """A JSON array in varied spellings: escaped or raw non-ASCII, indented or not, CRLF or LF."""
    parts = [json.dumps(r, ensure_ascii=i % ascii_every == 0, indent=indent) for i, r in enumerate(records)]
    text = "[\r\n" + ",\r\n ".join(parts) + "\n]\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def run(
    tmp_path: Path, path: Path, task: str, compiled: bool, monkeypatch, *, parts: int = 1, **job
) -> tuple:
    """Ingest ``path`` in ``parts`` jobs with or without the compiled reader: (table, flags, signatures)
    or the error's text."""
    monkeypatch.setattr(ingest, "COMPILED", compiled)
    out = tmp_path / f"{'fast' if compiled else 'slow'}-{path.stem}-{parts}"
    out.mkdir()
    sizes = {1000 + i: (100 + i, 50 + i) for i in range(0, 400, 3)}
    tables, flags, signatures = [], [], []
    try:
        for k in range(parts):
            name = f"p{k}"
            job_ = IngestJob(task, path, name, out, POOL_SCHEMA, part=k, parts=parts, **job)
            result = ingest_file(job_, sizes, {1003: "vg/1003.jpg"})
            if result.count:
                tables.append(pq.read_table(out / f"part-{name}.parquet"))
                signatures += [np.load(f) for f in sorted(out.glob(f"part-{name}.near-*.npy"))]
            flags.append((dict(result.flag_counts), result.examples))
    except (
        InputError
    ) as error:  # the offset of a non-UTF-8 byte is counted from a chunk the readers cut apart
        return (re.sub(r"at byte \d+ of a chunk", "in a chunk", str(error)),)
    return [t.to_pylist() for t in tables], flags, [s.tolist() for s in signatures]


@pytest.fixture
def small(monkeypatch):
    """Chunks, batches and first arrays small enough that every path of the reader runs."""
    monkeypatch.setattr(ingest_fast, "CHUNK_BYTES", 97)
    monkeypatch.setattr(ingest, "BATCH_ROWS", 7)
    monkeypatch.setattr(ingest, "FIRST_BATCH", (2, 2, 16))


def same(tmp_path, path, task, monkeypatch, **job):
    fast = run(tmp_path, path, task, True, monkeypatch, **job)
    slow = run(tmp_path, path, task, False, monkeypatch, **job)
    assert fast == slow
    return fast


@pytest.mark.parametrize("task", ["conversation", "complex_reasoning", "detail_description", "referring_qa"])
def test_the_bundled_sample_gives_the_same_pool(tmp_path, monkeypatch, task):
    path = sample_dir() / TASK_FILES[task]
    tables, _, _ = same(tmp_path, path, task, monkeypatch)
    assert sum(len(t) for t in tables) > 0


@pytest.mark.parametrize("spelling", [{}, {"indent": 2, "bom": True}, {"ascii_every": 1}])
def test_hostile_records_give_the_same_pool(tmp_path, monkeypatch, small, spelling):
    path = write(tmp_path / "records.json", hostile_records(60), **spelling)
    tables, flags, _ = same(tmp_path, path, "conversation", monkeypatch)
    rows = [row for table in tables for row in table]
    assert len(rows) > 30 and len(tables) == 1
    texts = {turn["value"] for row in rows for turn in row["conversations"]}
    assert any("中文 🙂" in t for t in texts) and any('" backslash \\' in t for t in texts)
    assert {r["image_file"] for r in rows} >= {"vg/6.jpg", "vg/1003.jpg", "1000.jpg"}


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_per_qa_splitting_sizes_and_ranges(tmp_path, monkeypatch, small, parts):
    path = write(tmp_path / "qa.json", hostile_records(45, seed=parts))
    tables, _, _ = same(tmp_path, path, "referring_qa", monkeypatch, parts=parts)
    rows = [row for table in tables for row in table]
    assert any(r["width"] == r["image_id"] - 900 for r in rows)  # from the size table


def test_only_records_outside_the_shape_take_the_standard_path(tmp_path, monkeypatch):
    records = hostile_records(24)
    path = write(tmp_path / "mixed.json", records)
    decoded = []
    original = ingest.add_record
    monkeypatch.setattr(
        ingest,
        "add_record",
        lambda cols, record, index, *a: decoded.append(index) or original(cols, record, index, *a),
    )
    run(tmp_path, path, "conversation", True, monkeypatch)
    outside = [i for i in range(24) if i % 12 in (6, 7, 9, 10)]
    assert decoded == outside


BROKEN = {
    "truncated": lambda text: text[: len(text) * 2 // 3],
    "missing comma": lambda text: text.replace("},\r\n {", "}\r\n {", 1),
    "trailing comma": lambda text: text.rstrip()[:-1].rstrip() + ",\n]",
    "not UTF-8": lambda text: text.replace("übergroß", "\udcff", 1),
    "control character": lambda text: text.replace("plain text", "plain\x01text", 1),
    "not an object": lambda text: text.replace('{"image_id": 1005', '"oops", {"image_id": 1005', 1),
    "string image_id": lambda text: text.replace('"image_id": 1006', '"image_id": "1006"', 1),
    "no conversations": lambda text: text.replace('"conversations"', '"conversation"', 1),
    "bad escape": lambda text: text.replace("plain text", "plain \\q text", 1),
    "not an array": lambda text: "{" + text[1:],
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_malformed_files_give_the_same_located_error(tmp_path, monkeypatch, small, name):
    text = json.dumps(hostile_records(30, seed=7), ensure_ascii=False).replace("}, {", "},\r\n {")
    broken = BROKEN[name](text)
    assert broken != text
    path = tmp_path / "broken.json"
    path.write_bytes(broken.encode("utf-8", "surrogateescape"))
    result = same(tmp_path, path, "conversation", monkeypatch)
    assert len(result) == 1 and str(path) in result[0]  # an error, naming the file


def test_strict_errors_are_the_same(tmp_path, monkeypatch, small):
    records = hostile_records(30)
    records[17]["conversations"] = [
        {
            "content": [
                {"from": "user", "value": "Q?"},
                {"from": "gpt", "value": "Sorry, as an AI language model I cannot"},
            ]
        }
    ]
    path = write(tmp_path / "strict.json", records)
    result = same(tmp_path, path, "conversation", monkeypatch, strict=True)
    assert len(result) == 1 and "record" in result[0]


def test_escapes_decode_as_the_standard_library_does():
    rng = random.Random(3)
    alphabet = [
        '"',
        "\\",
        "/",
        "\b",
        "\f",
        "\n",
        "\r",
        "\t",
        "\x00",
        "a",
        "é",
        "中",
        "🙂",
        "\u2028",
        "\U0010ffff",
    ]
    for _ in range(300):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for ensure_ascii in (True, False):
            data = np.frombuffer(json.dumps(value, ensure_ascii=ensure_ascii).encode(), np.uint8)
            out = np.zeros(256, np.uint8)
            status, end, n = jsonbytes.copy_string(data, 1, len(data), out, 0)
            assert status == jsonbytes.OK and end == len(data)
            assert out[:n].tobytes().decode() == value
    # a lone surrogate and an unknown escape are left to the standard library
    for text in ['"\\ud800 then more text"', '"\\udc00"', '"\\q"', '"\x01"']:
        data = np.frombuffer(text.encode(), np.uint8)
        assert jsonbytes.copy_string(data, 1, len(data), np.zeros(64, np.uint8), 0)[0] == jsonbytes.OTHER
