"""One large third-party file ingested by several processes, a range each: the pool and the errors of one."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_jsonsplit import tricky_records
from test_source_batches import hostile_records

import svit_data.source_ingest as source_ingest
from svit_data.errors import InputError
from svit_data.formats.jsonsplit import file_range
from svit_data.source_ingest import split_parts
from svit_data.sources import open_source, parse_source


def mixed_records(count: int) -> list[dict]:
    """Records with every kind of flag and near-duplicate templates (hostile) between records whose strings
    hold braces, brackets, commas, escaped quotes, backslashes and non-ASCII text."""
    records = hostile_records(count, seed=5)
    for i, record in enumerate(tricky_records(count // 4)):
        records.insert(4 * i + 1, record)
    return records


def write(path: Path, records: list) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=i % 2 == 0) + "\n" for i, r in enumerate(records)))
    else:
        path.write_text(json.dumps(records, indent=1, ensure_ascii=False))
    return path


def ingest(path: Path, cache: Path, monkeypatch, parts: int, *, strict: bool = False):
    """Ingest into an empty cache with ``parts`` processes (1: the one-process path)."""
    monkeypatch.setenv("SVIT_CACHE", str(cache))
    monkeypatch.setattr(source_ingest, "split_parts", lambda size, cpus: parts)
    return open_source(parse_source(f"mine={path}"), progress=False, strict=strict)


def pool_contents(pool) -> tuple[pa.Table, dict]:
    meta = json.loads((pool.root / "pool.json").read_text())
    files = meta.pop("files")
    return pa.concat_tables(pq.read_table(pool.root / name) for name in files), meta


@pytest.mark.parametrize(("suffix", "parts"), [(".json", 3), (".jsonl", 2)])
def test_a_split_ingest_writes_the_pool_of_one_process(tmp_path, monkeypatch, suffix, parts):
    # batches of 64 records in one process; the spawned workers keep their 20,000 (one batch per range)
    monkeypatch.setattr(source_ingest, "BATCH_ROWS", 64)
    path = write(tmp_path / f"mixed{suffix}", mixed_records(600))
    one = ingest(path, tmp_path / "one", monkeypatch, 1)
    split = ingest(path, tmp_path / "split", monkeypatch, parts)
    assert len(split.files) == parts and len(one.files) == 1
    one_table, one_meta = pool_contents(one)
    split_table, split_meta = pool_contents(split)
    assert split_table.equals(one_table)
    assert split_meta == one_meta
    assert list(split_meta["quality"]["examples"]) == list(one_meta["quality"]["examples"])  # in file order
    assert split_table["id"].to_pylist() == [f"mine/{n}" for n in range(750)]
    quality = one_meta["quality"]
    assert quality["flagged"] > 50 and quality["per_task"]["none"]["near_duplicate"] > 0  # the fixture bites
    assert split.near_duplicates.tolist() == one.near_duplicates.tolist()


def raised(path: Path, cache: Path, monkeypatch, parts: int, **options) -> InputError:
    with pytest.raises(InputError) as error:
        ingest(path, cache, monkeypatch, parts, **options)
    assert not (cache / "pools").exists() or not any((cache / "pools").iterdir())  # nothing half-written
    return error.value


def range_of(path: Path, record: int, parts: int) -> int:
    starts = [part.record if part else None for part in (file_range(path, k, parts) for k in range(parts))]
    return max(k for k, start in enumerate(starts) if start is not None and start <= record)


def test_a_broken_record_in_a_later_range_is_the_error_of_one_process(tmp_path, monkeypatch):
    records = mixed_records(400)
    records[250]["conversations"][0] = {"from": "human"}  # no value
    records[420]["conversations"] = "not a list"  # a later error, in a later range: not reported
    path = write(tmp_path / "broken.json", records)
    assert (range_of(path, 250, 3), range_of(path, 420, 3)) == (1, 2)
    one = raised(path, tmp_path / "one", monkeypatch, 1)
    split = raised(path, tmp_path / "split", monkeypatch, 3)
    assert (split.file, split.record, split.field) == (str(path), 250, "conversations[0].value")
    assert str(split) == str(one)


def test_under_strict_an_earlier_ranges_flag_comes_before_a_later_ranges_error(tmp_path, monkeypatch):
    records = mixed_records(400)
    records[420]["conversations"] = "not a list"
    path = write(tmp_path / "strict.json", records)
    one = raised(path, tmp_path / "one", monkeypatch, 1, strict=True)
    split = raised(path, tmp_path / "split", monkeypatch, 3, strict=True)
    assert str(split) == str(one)
    assert one.record < 420 and "--strict" in str(one)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("truncated.json", None),
        ("object.json", '{"records": [{"id": 1}]}'),
    ],
)
def test_a_truncated_file_or_one_that_is_no_array_fails_as_in_one_process(tmp_path, monkeypatch, name, text):
    path = tmp_path / name
    if text is None:
        whole = json.dumps(mixed_records(200), indent=1)
        path.write_text(whole[: len(whole) * 9 // 10])  # cut inside the last range's records
    else:
        path.write_text(text)
    one = raised(path, tmp_path / "one", monkeypatch, 1)
    split = raised(path, tmp_path / "split", monkeypatch, 3)
    assert str(split) == str(one)


def test_small_files_and_single_cores_stay_in_one_process():
    assert split_parts(source_ingest.PARALLEL_BYTES - 1, 16) == 1
    assert split_parts(10 << 30, 1) == 1
    assert split_parts(source_ingest.PARALLEL_BYTES, 2) == 2
    assert (
        split_parts(source_ingest.PARALLEL_BYTES, 64)
        == source_ingest.PARALLEL_BYTES // source_ingest.RANGE_MIN_BYTES
    )


def test_an_error_in_the_first_range_stops_the_other_processes(tmp_path, monkeypatch):
    import multiprocessing
    import time

    records = mixed_records(400)
    records[3]["conversations"] = []  # in the first range, which the calling process reads
    path = write(tmp_path / "early.json", records)
    one = raised(path, tmp_path / "one", monkeypatch, 1)
    split = raised(path, tmp_path / "split", monkeypatch, 3)
    assert str(split) == str(one) and split.record == 3
    # the spawned processes are still importing (3 s of CPU or more): stopped, they are gone well before
    deadline = time.monotonic() + 2
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert multiprocessing.active_children() == []
