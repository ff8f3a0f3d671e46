"""Concepts matched during ingest (:class:`MatchAtIngest`) give exactly the matrix ``compute_matrix`` gives
(CSR arrays and every per-sample column), for SVIT task files and a LLaVA file, in one process or split
among several, in one batch or many; ``match_pool`` then reads it from the cache. A pool cached before,
another vocabulary, a failed ingest and a failed save behave as without it."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

import svit_data.ingest as ingest
import svit_data.pool as pool_module
import svit_data.source_ingest as source_ingest
from svit_data.errors import InputError
from svit_data.pool import open_pool
from svit_data.recipes import match_at_ingest, matching
from svit_data.recipes.match_at_ingest import MatchAtIngest
from svit_data.recipes.matching import compute_matrix, match_pool
from svit_data.recipes.vocabulary import Concept, Vocabulary, load_vocabulary
from svit_data.sample import sample_dir
from svit_data.sources import open_source, parse_source
from svit_data.tasks import TASK_FILES

COLUMNS = ("task", "test", "yes", "no", "answer_words")
ANSWERS = [
    "Yes, a dog sits on the red sofa.",
    "No.",
    "The <st>cat<ed> [0.1, 0.2, 0.3, 0.4] sleeps near two bicycles.",
    "Le café est ouvert: a CAFÉ with a traffic light and people.",
    "no, the \u212aite flies over the beach [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6]",
    "",
]


def assert_same(got: matching.MatchedPool, want: matching.MatchedPool) -> None:
    for part in matching.CSR_PARTS:
        a, b = getattr(got.matrix, part), getattr(want.matrix, part)
        assert a.dtype == b.dtype and np.array_equal(a, b), part
    assert got.matrix.shape == want.matrix.shape
    assert got.ids.equals(want.ids)
    for name in COLUMNS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert (got.concepts, got.weights.tolist(), got.key) == (want.concepts, want.weights.tolist(), want.key)


def cached(pool, vocabulary) -> matching.MatchedPool:
    folder = matching.cache_path(pool, vocabulary)
    assert (folder / "meta.json").is_file(), "ingest cached no matrix"
    return matching.load(folder)


def sample_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "sample"
    shutil.copytree(sample_dir(), folder, ignore=shutil.ignore_patterns("images"))
    return folder


@pytest.mark.parametrize("processes", [1, 3])
def test_svit_ingest_caches_the_matrix_compute_matrix_gives(tmp_path, monkeypatch, processes):
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    if processes > 1:  # spawned workers, the largest task file as 3 ranges (one batch per job)
        monkeypatch.setattr(pool_module, "PARALLEL_BYTES", 0)
        monkeypatch.setattr(pool_module, "file_parts", lambda size, total, workers: 3 if size > 1e6 else 1)
    else:  # this process, many batches per file
        monkeypatch.setattr(ingest, "BATCH_ROWS", 97)
    vocabulary = load_vocabulary()
    folder = sample_copy(tmp_path)
    pool = open_pool(str(folder), progress=False, sidecar=MatchAtIngest(vocabulary))
    assert len(pool.files) == len(pool_module.find_task_files(folder)) + (2 if processes > 1 else 0)
    got = cached(pool, vocabulary)
    want = compute_matrix(pool, vocabulary, progress=False)
    assert got.num_rows == pool.num_rows > 1000 and got.matrix.nnz > 0 and got.yes.sum() > 0
    assert_same(got, want)
    monkeypatch.setattr(matching, "compute_matrix", lambda *a, **k: pytest.fail("matched again"))
    assert_same(match_pool(pool, vocabulary, progress=False), want)


def llava_records(count: int) -> list[dict]:
    rng = random.Random(3)
    records = []
    for n in range(count):
        turns = []
        for turn in range(rng.randint(1, 3)):
            turns += [
                {
                    "from": "human",
                    "value": "<image>\n" * (turn == 0) + "Is there a Dog? What colour is the sofa?",
                },
                {"from": "gpt", "value": rng.choice(ANSWERS)},
            ]
        records.append({"id": f"r{n}", "image": f"coco/{n:012d}.jpg", "conversations": turns})
    return records


@pytest.mark.parametrize("parts", [1, 3])
def test_source_ingest_caches_the_matrix_compute_matrix_gives(tmp_path, monkeypatch, parts):
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(llava_records(500), ensure_ascii=False))
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(source_ingest, "split_parts", lambda size, cpus: parts)
    monkeypatch.setattr(source_ingest, "BATCH_ROWS", 64)  # this process's range: many batches
    vocabulary = load_vocabulary()
    pool = open_source(parse_source(f"inst={path}"), progress=False, sidecar=MatchAtIngest(vocabulary))
    assert len(pool.files) == parts
    got = cached(pool, vocabulary)
    assert got.num_rows == 500 and got.matrix.nnz > 0 and got.yes.sum() > 0 and got.no.sum() > 0
    assert_same(got, compute_matrix(pool, vocabulary, progress=False))


def test_a_pool_cached_before_or_another_vocabulary_is_matched_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    folder = sample_copy(tmp_path)
    vocabulary = load_vocabulary()
    other = Vocabulary("other", (Concept("dog"), Concept("red sofa")))
    plain = open_pool(str(folder), progress=False)  # ingested without matching
    again = open_pool(str(folder), progress=False, sidecar=MatchAtIngest(vocabulary))
    assert again.fingerprint == plain.fingerprint
    assert not (tmp_path / "cache" / "matrices").exists()  # nothing ingested now: nothing matched
    assert_same(
        match_pool(again, vocabulary, progress=False), compute_matrix(plain, vocabulary, progress=False)
    )

    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache2"))
    pool = open_pool(str(folder), progress=False, sidecar=MatchAtIngest(vocabulary))
    assert not matching.cache_path(pool, other).exists()
    assert_same(match_pool(pool, other, progress=False), compute_matrix(pool, other, progress=False))


def test_a_failed_ingest_leaves_no_matrix(tmp_path, monkeypatch):
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    folder = sample_copy(tmp_path)
    path = folder / TASK_FILES["conversation"]
    records = json.loads(path.read_text())
    records[-1]["image_id"] = "x"  # after the first batch was matched
    path.write_text(json.dumps(records))
    monkeypatch.setattr(ingest, "BATCH_ROWS", 50)
    with pytest.raises(InputError):
        open_pool(str(folder), progress=False, sidecar=MatchAtIngest(load_vocabulary()))
    assert not list((tmp_path / "cache").rglob("meta.json")) and not list((tmp_path / "cache").rglob("*.npy"))


def test_a_failed_save_leaves_the_pool_and_matching_as_before(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))

    def full_disk(matched, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(match_at_ingest, "save", full_disk)
    vocabulary = load_vocabulary()
    with caplog.at_level(logging.WARNING):
        pool = open_pool(str(sample_copy(tmp_path)), progress=False, sidecar=MatchAtIngest(vocabulary))
    assert "No space left" in caplog.text and (pool.root / "pool.json").is_file()
    assert not matching.cache_path(pool, vocabulary).exists()
    assert match_pool(pool, vocabulary, progress=False).num_rows == pool.num_rows


def test_a_recipe_build_matches_during_ingest(svit_cache, tmp_path, monkeypatch, cli):
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    source = sample_copy(tmp_path)
    calls = []
    monkeypatch.setattr(matching, "compute_matrix", lambda *a, **k: calls.append(a) or pytest.fail("matched"))
    assert cli("build", "svit-80k", "--source", source, "--out", tmp_path / "out", "--quiet") == 0
    assert not calls and len(list((tmp_path / "cache" / "matrices").glob("*/meta.json"))) == 1
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache3"))  # a subset alone: no matching at all
    assert cli("build", "conversation", "--source", source, "--out", tmp_path / "out3", "--quiet") == 0
    assert not (tmp_path / "cache3" / "matrices").exists()
