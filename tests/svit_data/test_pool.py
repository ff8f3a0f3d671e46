"""The pool: ingest (serial and parallel) equals record expansion, is cached by content, and is checked."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from svit_data import splits
from svit_data.errors import InputError, SvitError
from svit_data.formats.jsonstream import iter_json_array
from svit_data.formats.svit import expand_record
from svit_data.ingest import IngestJob, run_jobs
from svit_data.materialize import check_ids, select_rows
from svit_data.pool import find_task_files, open_pool, read_image_sizes
from svit_data.sample import sample_dir
from svit_data.schema import FEATURES, POOL_SCHEMA
from svit_data.tasks import TASK_FILES, TASKS


def expected_rows(folder: Path) -> list[dict]:
    """What ingest must produce: every record expanded, sizes and image files filled in."""
    sizes = {
        i["image_id"]: (i["width"], i["height"]) for i in json.loads((folder / "image_data.json").read_text())
    }
    rows = []
    for task in TASKS:
        for index, record in enumerate(iter_json_array(folder / TASK_FILES[task])):
            for sample in expand_record(record, task, index=index):
                sample.width, sample.height = sizes[sample.image_id]
                sample.image_file = f"{sample.image_id}.png"
                rows.append(sample.to_row())
    return rows


def test_sample_pool_equals_record_expansion(sample_pool):
    columns = [
        c for c in FEATURES if c != "flags"
    ]  # flags and signals: tests/svit_data/test_quality_ingest.py
    rows = sample_pool.table(columns).to_pylist()
    assert rows == [{c: row[c] for c in columns} for row in expected_rows(sample_dir())]
    assert len({r["id"] for r in rows}) == len(rows) == sample_pool.num_rows
    assert sample_pool.counts == {t: sum(r["task"] == t for r in rows) for t in TASKS}
    assert sample_pool.counts["detail_description"] == 240 and sample_pool.counts["conversation"] == 720
    assert sample_pool.images_root == sample_dir() / "images"
    assert pq.read_schema(sample_pool.files[0]).names == POOL_SCHEMA.names


def test_pool_is_cached_by_content(sample_pool, monkeypatch, tmp_path):
    def no_ingest(*args, **kwargs):
        raise AssertionError("ingested again")

    monkeypatch.setattr("svit_data.pool._ingest", no_ingest)
    again = open_pool("sample", progress=False)
    assert (again.fingerprint, again.files, again.counts) == (
        sample_pool.fingerprint,
        sample_pool.files,
        sample_pool.counts,
    )
    monkeypatch.undo()

    source = tmp_path / "src"
    shutil.copytree(sample_dir(), source, ignore=shutil.ignore_patterns("images"))
    first = open_pool(str(source), progress=False)
    assert first.fingerprint != sample_pool.fingerprint  # no images: image files differ
    records = json.loads((source / "detail_description.json").read_text())
    records[0]["conversations"][0]["content"][1]["value"] += " More."
    (source / "detail_description.json").write_text(json.dumps(records))
    second = open_pool(str(source), progress=False)
    assert second.fingerprint != first.fingerprint
    assert (
        second.table(["conversations"])["conversations"].to_pylist()
        != first.table(["conversations"])["conversations"].to_pylist()
    )


def test_parallel_ingest_equals_serial_and_keeps_order(tmp_path):
    folder = sample_dir()
    sizes = read_image_sizes(folder / "image_data.json")
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        out.mkdir()
        jobs = [
            IngestJob(t, folder / TASK_FILES[t], f"{k}-{t}", out, POOL_SCHEMA) for k, t in enumerate(TASKS)
        ]
        done = []
        names = run_jobs(jobs, sizes, {}, workers=workers, progress=done.append)
        assert sum(done) == sum(j.path.stat().st_size for j in jobs)
        results[workers] = (names, pq.read_table([out / n for r in names for n in r.names]).to_pylist())
    assert results[1] == results[2]
    assert [r.count for r in results[1][0]] == [720, 3409, 2201, 240]


def test_errors_cross_the_process_boundary_with_their_location(tmp_path):
    bad = tmp_path / "referring_qa.json"
    bad.write_text(
        json.dumps([{"image_id": 1, "conversations": [{"content": [{"from": None, "value": "hi"}]}]}])
    )
    good = sample_dir() / "conversation.json"
    jobs = [
        IngestJob("conversation", good, "0", tmp_path, POOL_SCHEMA),
        IngestJob("referring_qa", bad, "1", tmp_path, POOL_SCHEMA),
    ]
    with pytest.raises(InputError) as caught:
        run_jobs(jobs, {}, {}, workers=2)
    assert (caught.value.file, caught.value.record, caught.value.field) == (
        str(bad),
        0,
        "conversations[0].content[0].from",
    )
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value) and copy.field == caught.value.field


def test_a_failing_file_stops_the_other_workers_at_once(tmp_path):
    """The other worker is blocked for ever (reading a FIFO nobody writes): run_jobs must terminate
    it, not wait for it. This fails if svit_data.ingest._stop_workers stops working."""
    import multiprocessing
    import os
    import time

    bad = tmp_path / "referring_qa.json"
    bad.write_text(json.dumps([{"image_id": 1, "conversations": [{"content": [{"from": "bot"}]}]}]))
    fifo = tmp_path / "conversation.json"
    os.mkfifo(fifo)
    jobs = [
        IngestJob("referring_qa", bad, "0", tmp_path, FEATURES.arrow_schema),
        IngestJob("conversation", fifo, "1", tmp_path, FEATURES.arrow_schema),
    ]
    try:
        with pytest.raises(InputError):
            run_jobs(jobs, {}, {}, workers=2)
        deadline = time.monotonic() + 10
        while multiprocessing.active_children() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert multiprocessing.active_children() == []
    finally:
        try:  # release a worker still blocked on the FIFO, so a failure does not hang the session
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            pass
        else:
            os.write(writer, b"[]")
            os.close(writer)


def test_builder_shards_keep_sizes_files_and_provenance(tmp_path):
    (tmp_path / "referring_qa").mkdir()
    provenance = {
        "model": "m",
        "prompt_hash": "h",
        "request_id": "r",
        "source_ids": [4, 5],
        "input_tokens": 10,
        "output_tokens": 3,
        "cost_usd": 0.01,
    }
    record = {
        "image_id": 9,
        "conversations": [
            {
                "content": [
                    {"from": "user", "value": "Where?"},
                    {"from": "gpt", "value": "<st>cat<ed> [0.1, 0.1, 0.2, 0.2]"},
                    {"from": "user", "value": "And?"},
                    {"from": "gpt", "value": "Nothing."},
                ]
            }
        ],
        "width": 64,
        "height": 48,
        "image_file": "VG_100K/9.jpg",
        "provenance": provenance,
    }
    (tmp_path / "referring_qa" / "shard-00000.jsonl").write_text(json.dumps(record) + "\n")
    (tmp_path / "conversation.json").write_text(json.dumps([{"image_id": 9, "conversations": []}]))
    pool = open_pool(str(tmp_path), progress=False)
    rows = pool.table().to_pylist()
    assert pool.counts == {"referring_qa": 2}
    assert [r["id"] for r in rows] == ["referring_qa/9/0", "referring_qa/9/1"]
    assert all(
        r["provenance"] == provenance and r["width"] == 64 and r["image_file"] == "VG_100K/9.jpg"
        for r in rows
    )


def test_task_file_layouts(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "conversation.json").write_text("[]")
    (tmp_path / "referring_qa").mkdir()
    (tmp_path / "referring_qa" / "b.jsonl").write_text("")
    (tmp_path / "referring_qa" / "a.jsonl").write_text("")
    found = find_task_files(tmp_path)
    assert found == {
        "conversation": [tmp_path / "data" / "conversation.json"],
        "referring_qa": [tmp_path / "referring_qa" / "a.jsonl", tmp_path / "referring_qa" / "b.jsonl"],
    }


def test_source_and_size_file_errors(tmp_path):
    with pytest.raises(SvitError, match="is not a folder"):
        open_pool(str(tmp_path / "missing"))
    (tmp_path / "conversation.json").write_text("[]")
    with pytest.raises(SvitError, match="does not exist"):
        open_pool(str(tmp_path), image_data=tmp_path / "nope.json")
    sizes = tmp_path / "image_data.json"
    sizes.write_text(json.dumps([{"image_id": 1, "width": 5, "height": 5}, {"image_id": 2, "width": 5}]))
    with pytest.raises(InputError, match="record 1") as caught:
        read_image_sizes(sizes)
    assert caught.value.file == str(sizes)


def test_an_empty_source_is_an_error_and_leaves_no_cached_pool(tmp_path, svit_cache):
    source = tmp_path / "empty"
    source.mkdir()
    (source / "conversation.json").write_text("[]")
    (source / "referring_qa.json").write_text("[]\n")
    pools = svit_cache / "pools"
    before = sorted(pools.iterdir()) if pools.exists() else []
    for _ in range(2):  # the second try is refused again, not served an empty pool from the cache
        with pytest.raises(SvitError, match="holds no samples") as caught:
            open_pool(str(source), progress=False)
        assert str(source / "conversation.json") in str(caught.value)
        assert sorted(pools.iterdir()) == before


def test_real_vg_image_data_gives_sizes(shared_fixtures):
    sizes = read_image_sizes(shared_fixtures / "visual_genome" / "image_data.json")
    assert len(sizes) == 30 and sizes[1] == (800, 600)


def test_select_rows_filters_task_ids_and_split_and_embeds_images(sample_pool):
    test_ids = splits.test_image_ids()
    tables = list(select_rows(sample_pool, tasks=["referring_qa"], split="test", batch_size=1000))
    rows = [r for t in tables for r in t.to_pylist()]
    assert rows and all(r["task"] == "referring_qa" and r["image_id"] in test_ids for r in rows)
    assert rows[0]["image"]["bytes"] == (sample_pool.images_root / rows[0]["image_file"]).read_bytes()
    wanted = sorted(r["id"] for r in rows[:5])
    picked = [r["id"] for t in select_rows(sample_pool, ids=wanted) for r in t.to_pylist()]
    assert sorted(picked) == wanted
    check_ids(sample_pool, wanted)
    with pytest.raises(SvitError, match="1 selected ids are not in the pool"):
        check_ids(sample_pool, sorted([*wanted, "referring_qa/0/0"]))
    with pytest.raises(ValueError, match="sorted"):
        check_ids(sample_pool, list(reversed(wanted)))


def test_select_rows_reads_row_groups_ahead_in_pool_order(sample_pool, monkeypatch):
    import svit_data.materialize as materialize

    wanted = sample_pool.table(["id"])["id"].to_pylist()[::7]
    monkeypatch.setattr(materialize, "READ_AHEAD", 1)
    one = pa.concat_tables(select_rows(sample_pool, ids=sorted(wanted), batch_size=50))
    monkeypatch.setattr(materialize, "READ_AHEAD", 3)
    tables = list(select_rows(sample_pool, ids=sorted(wanted), batch_size=50))
    assert len(tables) > 3 and one.num_rows == len(wanted)
    assert pa.concat_tables(tables).equals(one)
    assert pa.concat_tables(tables)["id"].to_pylist() == wanted  # pool order, every group in turn


def split_sample(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the sample whose largest task file (complex_reasoning) is ingested as 3 ranges."""
    import svit_data.pool as pool_module

    folder = tmp_path / "sample"
    shutil.copytree(sample_dir(), folder, ignore=shutil.ignore_patterns("images"))
    monkeypatch.setattr(pool_module, "PARALLEL_BYTES", 0)
    return folder


def pool_contents(pool) -> tuple[list[dict], dict]:
    meta = json.loads((pool.root / "pool.json").read_text())
    files = meta.pop("files")
    return pq.read_table([pool.root / name for name in files]).to_pylist(), meta


def test_a_task_file_split_into_ranges_gives_the_pool_of_one_job(tmp_path, monkeypatch):
    import svit_data.pool as pool_module

    folder = split_sample(tmp_path, monkeypatch)
    pools = {}
    for parts in (1, 3):
        monkeypatch.setenv("SVIT_CACHE", str(tmp_path / f"cache{parts}"))
        monkeypatch.setattr(
            pool_module, "file_parts", lambda size, total, workers, n=parts: n if size > 1e6 else 1
        )
        pools[parts] = open_pool(str(folder), progress=False)
    assert len(pools[3].files) == len(pools[1].files) + 2
    assert pool_contents(pools[3]) == pool_contents(pools[1])
    assert pools[3].near_duplicates.tolist() == pools[1].near_duplicates.tolist()


def test_a_broken_record_in_a_later_range_is_located_as_in_one_job(tmp_path, monkeypatch):
    import svit_data.pool as pool_module
    from svit_data.formats.jsonsplit import file_range

    folder = split_sample(tmp_path, monkeypatch)
    path = folder / TASK_FILES["complex_reasoning"]
    records = json.loads(path.read_text())
    path.write_text(json.dumps(records))
    broken = file_range(path, 1, 3).record + 3  # in the 2nd of 3 ranges
    later = file_range(path, 2, 3).record + 3  # a later error: not the one reported
    records[broken]["image_id"] = "x"
    records[later]["conversations"] = None
    path.write_text(json.dumps(records))
    starts = [file_range(path, k, 3).record for k in (1, 2)]
    assert starts[0] <= broken < starts[1] <= later
    errors = {}
    for parts in (1, 3):
        monkeypatch.setenv("SVIT_CACHE", str(tmp_path / f"cache{parts}"))
        monkeypatch.setattr(
            pool_module, "file_parts", lambda size, total, workers, n=parts: n if size > 1e6 else 1
        )
        with pytest.raises(InputError) as caught:
            open_pool(str(folder), progress=False)
        errors[parts] = caught.value
        assert not any((tmp_path / f"cache{parts}" / "pools").glob("*/pool.json"))
    assert (errors[3].file, errors[3].record, errors[3].field) == (str(path), broken, "image_id")
    assert str(errors[3]) == str(errors[1])
