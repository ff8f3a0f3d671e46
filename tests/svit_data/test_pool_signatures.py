"""Signatures stored at ingest: a mixed pool's near-duplicates from them equal a pass that signs every long
answer again (hand-made sources and a real LLaVA slice), and are the bytes ``np.save`` writes of them; a
missing, cut or mismatched file is computed again (and stored), never read as a wrong result."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from llava_records import record

from svit_data.mixed_pool import mixed_near_duplicates, near_duplicates_of
from svit_data.pool import open_pool
from svit_data.pool_signatures import (
    OLD_FILES,
    compute_signatures,
    concatenate,
    load_part_signatures,
    pool_signature_parts,
    signature_files,
)
from svit_data.quality.minhash import BINS
from svit_data.quality.near_duplicates import MIN_WORDS, confirmed_rows
from svit_data.sources import SourceSpec, open_source, open_sources


def long_answers(pool, count: int) -> list[str]:
    """The first ``count`` answers of at least MIN_WORDS + 5 words in the pool."""
    found = []
    for turns in pool.table(["conversations"])["conversations"].to_pylist():
        found += [
            t["value"] for t in turns if t["from"] == "gpt" and len(t["value"].split()) >= MIN_WORDS + 5
        ]
        if len(found) >= count:
            return found[:count]
    raise AssertionError("the pool has too few long answers")


def templated_records(svit, start: int = 0) -> list[dict]:
    """Records copying SVIT long answers with one word changed, some twice, and one of their own."""
    answers = long_answers(svit, 6)
    own = ("A wide green field stretches under a pale sky with a red barn " * 3).strip()
    texts = [" ".join([*a.split()[:-1], "indeed."]) for a in answers] + answers[:2] + [own, own.upper()]
    return [record(start + n, text) for n, text in enumerate(texts)]


def pools_of(specs: list[SourceSpec]) -> list:
    return [open_sources([spec], progress=False) for spec in specs]


def stored_whole(pool) -> tuple[np.ndarray, np.ndarray] | None:
    """The pool's stored signatures with pool rows, or None when a part's files are not whole."""
    parts, first = [], 0
    for file in pool.files:
        rows = pq.ParquetFile(file).metadata.num_rows
        found = load_part_signatures(file, rows)
        if found is None:
            return None
        parts.append((np.asarray(found[0]), found[1] + first))
        first += rows
    return np.concatenate([s for s, _ in parts]), np.concatenate([r for _, r in parts])


def test_ingest_stores_the_signatures_a_pass_over_the_written_pool_gives(tmp_path: Path):
    svit = open_sources([SourceSpec("svit", "sample")], progress=False)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(templated_records(svit)))
    inst = open_source(SourceSpec("inst", str(path)), progress=False)
    for pool in (svit, inst):
        stored = stored_whole(pool)
        assert stored is not None, pool.root
        again = compute_signatures(pool.files)
        assert np.array_equal(stored[0], again[0]) and np.array_equal(stored[1], again[1])
        assert len(stored[1]) > 0


def test_each_part_file_holds_the_bytes_np_save_writes_of_its_signatures(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("svit_data.ingest.BATCH_ROWS", 400)  # several batches per part, written one by one
    svit = open_pool("sample", name="batches", progress=False)  # its own cache key: ingested here
    assert len(svit.files) > 1 and max(pq.ParquetFile(f).num_row_groups for f in svit.files) > 1
    for file in svit.files:
        computed = compute_signatures([file])
        signatures, rows = signature_files(file)
        for path, array in ((signatures, computed[0]), (rows, computed[1])):
            np.save(tmp_path / "expected.npy", array)
            assert path.read_bytes() == (tmp_path / "expected.npy").read_bytes(), path


def test_mixed_near_duplicates_from_stored_signatures_equal_a_recomputed_pass(tmp_path: Path):
    svit = open_sources([SourceSpec("svit", "sample")], progress=False)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(templated_records(svit)))
    specs = [SourceSpec("svit", "sample"), SourceSpec("inst", str(path))]
    merged = open_sources(specs, progress=False)
    pools = pools_of(specs)
    recomputed = near_duplicates_of(merged.files)
    assert mixed_near_duplicates(pools).tolist() == recomputed.tolist()
    assert len(svit.near_duplicates) > 0  # the first pool's own rows come from its ingest
    first_inst = svit.num_rows
    assert {first_inst + n for n in range(8)} <= set(recomputed.tolist())  # the copies are found
    assert np.array_equal(merged.near_duplicates, np.union1d(recomputed, merged.near_duplicates))


def test_a_real_llava_slice_mixed_with_svit_gives_the_recomputed_rows(tmp_path: Path, shared_fixtures: Path):
    real = json.loads((shared_fixtures / "llava" / "scienceqa_llava_format.sample.json").read_text())
    svit = open_sources([SourceSpec("svit", "sample")], progress=False)
    records = real + templated_records(svit, start=len(real))
    for n, item in enumerate(records):
        item["id"] = f"q{n}"
    path = tmp_path / "scienceqa.json"
    path.write_text(json.dumps(records))
    specs = [SourceSpec("svit", "sample"), SourceSpec("sqa", str(path))]
    merged = open_sources(specs, progress=False)
    recomputed = near_duplicates_of(merged.files)
    assert mixed_near_duplicates(pools_of(specs)).tolist() == recomputed.tolist()
    assert np.isin(svit.num_rows + len(real) + np.arange(8), recomputed).all()


def damage(root: Path, how: str) -> None:
    """Damage the last part's files (the first part's stay whole)."""
    signatures, rows_file = signature_files(sorted(root.glob("*.parquet"))[-1])
    if how == "missing":
        signatures.unlink()
    elif how == "cut":
        data = signatures.read_bytes()
        signatures.write_bytes(data[: len(data) - 200])
    elif how == "rows-shorter":
        rows = np.load(rows_file)
        np.save(rows_file, rows[:-1])
    elif how == "rows-out-of-range":
        rows = np.load(rows_file)
        rows[-1] = 10**9
        np.save(rows_file, rows)
    elif how == "wrong-width":
        np.save(signatures, np.zeros((len(np.load(rows_file)), 64), np.uint8))


@pytest.mark.parametrize("how", ["missing", "cut", "rows-shorter", "rows-out-of-range", "wrong-width"])
def test_a_damaged_signature_file_is_computed_again_and_stored(tmp_path: Path, how: str, caplog):
    svit = open_sources([SourceSpec("svit", "sample")], progress=False)
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(templated_records(svit)))
    inst = open_source(SourceSpec("inst", str(path)), progress=False)
    expected = compute_signatures(inst.files)
    damage(inst.root, how)
    assert stored_whole(inst) is None
    with caplog.at_level(logging.WARNING, logger="svit_data.pool_signatures"):
        signatures, rows = concatenate(pool_signature_parts(inst.root, inst.files))
    assert np.array_equal(signatures, expected[0]) and np.array_equal(rows, expected[1])
    assert (how == "missing") == (not caplog.records)  # a damaged file is named in a warning
    stored = stored_whole(inst)  # stored again, whole
    assert stored is not None and np.array_equal(stored[0], expected[0])
    specs = [SourceSpec("svit", "sample"), SourceSpec("inst", str(path))]
    merged_files = [*svit.files, *inst.files]
    damage(inst.root, how)
    assert mixed_near_duplicates(pools_of(specs)).tolist() == near_duplicates_of(merged_files).tolist()


def test_a_pool_of_the_old_layout_gets_part_files_and_loses_its_old_ones(tmp_path: Path):
    svit = open_sources([SourceSpec("svit", "sample")], progress=False)
    expected = compute_signatures(svit.files)
    for file in svit.files:
        for path in signature_files(file):
            path.unlink()
    for name in OLD_FILES:
        (svit.root / name).write_bytes(b"old layout")
    signatures, rows = concatenate(pool_signature_parts(svit.root, svit.files))
    assert np.array_equal(signatures, expected[0]) and np.array_equal(rows, expected[1])
    assert not any((svit.root / name).exists() for name in OLD_FILES)
    assert stored_whole(svit) is not None


def test_a_walk_from_a_later_document_finds_the_same_later_rows():
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (60, BINS), dtype=np.uint8)
    sig = np.concatenate([base, base[:30], base[10:40]])  # exact copies, some within the first part
    sig[70:75, :10] = 7  # copies with a tenth of their values changed (Jaccard estimate above 0.9)
    row = np.concatenate([np.arange(60), 60 + np.arange(30) // 2, 80 + np.arange(30)])
    whole = confirmed_rows([(sig, row)])
    for first_doc in (0, 45, 60, 90, 120):
        later = confirmed_rows([(sig, row)], first_doc)
        assert later.tolist() == whole[np.isin(whole, row[first_doc:])].tolist(), first_doc
    assert len(whole) > 30


def test_parts_copied_on_threads_give_the_arrays_of_one_copy(monkeypatch):
    import svit_data.pool_signatures as pool_signatures

    rng = np.random.default_rng(0)
    parts, first = [], 0
    for size in (5, 0, 300, 41, 1):
        rows = np.sort(rng.integers(0, 50, size))
        parts.append(((rng.integers(0, 256, (size, BINS), dtype=np.uint8), rows), first))
        first += 50
    monkeypatch.setattr(pool_signatures, "THREADED_BYTES", 1 << 62)
    serial = concatenate(parts)
    monkeypatch.setattr(pool_signatures, "THREADED_BYTES", 0)
    threaded = concatenate(parts)
    assert np.array_equal(serial[0], threaded[0]) and np.array_equal(serial[1], threaded[1])
    assert np.array_equal(serial[1], np.concatenate([rows + first for (_, rows), first in parts]))
    assert np.array_equal(serial[0], np.concatenate([sig for (sig, _), _ in parts]))
