"""Remembered file digests: the same sha1 as hashing, reused only while the file is unchanged."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from svit_data import file_digest
from svit_data.file_digest import cached_hash
from svit_data.pool import fingerprint
from svit_data.sources import open_source, parse_source


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(file_digest, "RACY_SECONDS", 0)  # files written by the test count as settled
    return tmp_path / "cache" / file_digest.FOLDER


def no_hashing(path):
    raise AssertionError(f"hashed {path} again")


def test_an_unchanged_file_is_hashed_once(tmp_path, cache, monkeypatch):
    path = tmp_path / "a.json"
    path.write_bytes(b"[1, 2, 3]")
    assert cached_hash(path) == sha1(b"[1, 2, 3]")
    monkeypatch.setattr(file_digest, "hash_file", no_hashing)
    assert cached_hash(path) == sha1(b"[1, 2, 3]")
    assert len(list(cache.rglob("*"))) == 2  # one folder, one digest


def test_same_size_and_restored_mtime_is_still_noticed(tmp_path, cache):
    path = tmp_path / "a.json"
    path.write_bytes(b"[1, 2, 3]")
    assert cached_hash(path) == sha1(b"[1, 2, 3]")
    before = path.stat()
    path.write_bytes(b"[1, 2, 4]")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime set back; ctime moves on regardless
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert cached_hash(path) == sha1(b"[1, 2, 4]")


def test_a_file_renamed_over_the_source_is_hashed(tmp_path, cache):
    path, other = tmp_path / "a.json", tmp_path / "b.json"
    path.write_bytes(b"[1, 2, 3]")
    assert cached_hash(path) == sha1(b"[1, 2, 3]")
    other.write_bytes(b"[9, 9, 9]")
    stat = path.stat()
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, path)
    assert cached_hash(path) == sha1(b"[9, 9, 9]")


def test_a_file_changed_just_now_is_not_remembered(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(file_digest, "RACY_SECONDS", 3600)
    path = tmp_path / "a.json"
    path.write_bytes(b"[1]")
    assert cached_hash(path) == sha1(b"[1]")
    assert not cache.exists()


def test_a_damaged_entry_is_hashed_again(tmp_path, cache):
    path = tmp_path / "a.json"
    path.write_bytes(b"[1]")
    cached_hash(path)
    (entry,) = (p for p in cache.rglob("*") if p.is_file())
    for damage in ("", "zz", "00" * 5):
        entry.write_text(damage)
        assert cached_hash(path) == sha1(b"[1]")


def test_the_pool_fingerprint_follows_a_same_size_edit(tmp_path, cache):
    path = tmp_path / "conversation.json"
    path.write_bytes(b'[{"image_id": 1}]')
    first = fingerprint({"conversation": [path]}, None, {})
    assert fingerprint({"conversation": [path]}, None, {}) == first
    stat = path.stat()
    path.write_bytes(b'[{"image_id": 2}]')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint({"conversation": [path]}, None, {}) != first


def test_a_cache_that_cannot_be_written_still_gives_the_digest(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("SVIT_CACHE", str(blocked))
    monkeypatch.setattr(file_digest, "RACY_SECONDS", 0)
    path = tmp_path / "a.json"
    path.write_bytes(b"[1]")
    assert cached_hash(path) == cached_hash(path) == sha1(b"[1]")


def llava(answer: str) -> bytes:
    turns = [{"from": "human", "value": "What is shown?"}, {"from": "gpt", "value": answer}]
    return json.dumps([{"id": "a", "conversations": turns}]).encode()


def test_a_third_party_source_is_found_without_hashing_and_follows_a_same_size_edit(
    tmp_path, cache, monkeypatch
):
    path = tmp_path / "inst.json"
    path.write_bytes(llava("A red bus."))
    first = open_source(parse_source(f"inst={path}"), progress=False)
    assert len([entry for entry in cache.rglob("*") if entry.is_file()]) == 1  # its digest, remembered
    with monkeypatch.context() as patch:
        patch.setattr(file_digest, "hash_file", no_hashing)
        assert open_source(parse_source(f"inst={path}"), progress=False).root == first.root
    stat = path.stat()
    path.write_bytes(llava("A tan bus."))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = open_source(parse_source(f"inst={path}"), progress=False)
    assert edited.root != first.root
    assert "A tan bus." in json.dumps(edited.table().column("conversations").to_pylist())
