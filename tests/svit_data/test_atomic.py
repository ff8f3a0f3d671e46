"""svit_data.atomic: a failed or killed write leaves the old file or folder intact and no temporary."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from svit_data import atomic
from svit_data.atomic import (
    atomic_open,
    clean_leftovers,
    process_alive,
    staged_folder,
    swap_in,
    temp_path,
    write_bytes,
    write_text,
)


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped), so it is certainly not alive."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_write_text_and_bytes_replace_the_file_and_leave_nothing_else(tmp_path):
    target = tmp_path / "a.json"
    write_text(target, "old")
    write_text(target, "new", durable=True)
    assert target.read_text() == "new"
    write_bytes(tmp_path / "b.bin", b"\x00\x01", durable=True)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_a_failure_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "data.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]


def test_an_interrupt_mid_write_also_cleans_up(tmp_path):
    target = tmp_path / "data.txt"
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as handle:
        handle.write("partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_removes_the_temporary(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("x")  # a non-empty folder cannot be replaced by a file
    with pytest.raises(OSError):
        write_text(target, "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_atomic_open_refuses_append_and_read_modes(tmp_path):
    for mode in ("a", "r+", "x"):
        with pytest.raises(ValueError, match="whole files"), atomic_open(tmp_path / "f", mode):
            pass


def test_temp_names_follow_one_pattern_matched_by_gitignore(tmp_path):
    name = temp_path(tmp_path / "svit").name
    assert name.startswith(f".svit.tmp-{os.getpid()}-")
    assert temp_path(tmp_path / "svit") != temp_path(tmp_path / "svit")  # unique within a process
    from pathlib import Path

    ignore = (Path(__file__).parents[2] / ".gitignore").read_text().split()
    assert "*.tmp-*" in ignore and ".*.old-*" in ignore


def test_staged_folder_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.json").write_text("from an older write")
    with staged_folder(out, durable=True) as stage:
        (stage / "new.json").write_text("{}")
    assert [p.name for p in out.iterdir()] == ["new.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failure_in_a_staged_folder_keeps_the_old_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.json").write_text("old")
    with pytest.raises(RuntimeError), staged_folder(out) as stage:
        (stage / "keep.json").write_text("new")
        raise RuntimeError("failed half way")
    assert (out / "keep.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_keep_existing_drops_the_staged_copy_when_another_writer_won(tmp_path):
    out = tmp_path / "cache"
    with staged_folder(out, keep_existing=True) as stage:
        (stage / "mine").write_text("late")
        out.mkdir()
        (out / "theirs").write_text("first")
    assert [p.name for p in out.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    out, stage = tmp_path / "out", tmp_path / "stage"
    out.mkdir()
    (out / "old").write_text("old")
    stage.mkdir()
    real = os.replace

    def refuse_stage(src, dst):
        if src == stage:
            raise PermissionError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", refuse_stage)
    with pytest.raises(PermissionError):
        swap_in(stage, out)
    assert (out / "old").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "stage"]


def test_process_alive():
    assert process_alive(os.getpid())
    assert process_alive(1)  # init exists (signal 0 may be refused: that still means alive)
    assert not process_alive(dead_pid())


def test_leftovers_of_dead_processes_are_removed_and_named(tmp_path, caplog):
    out = tmp_path / "svit"
    out.mkdir()
    pid = dead_pid()
    stale = [
        tmp_path / f".svit.building-{pid}",  # the name builds used before this module
        tmp_path / f".svit.tmp-{pid}-0a1b2c3d",
        tmp_path / f".svit.old-{pid}-0a1b2c3d",
        tmp_path / f"svit.tmp-{pid}",  # caches' staging name before this module
    ]
    for folder in stale:
        folder.mkdir()
        (folder / "shard.parquet").write_bytes(b"x" * 10)
    live = tmp_path / f".svit.tmp-{os.getpid()}-ffffffff"  # being written now: left alone
    live.mkdir()
    other = tmp_path / f".svit2.tmp-{pid}"  # another output's leftover: not ours to judge here
    other.mkdir()
    with caplog.at_level(logging.WARNING, logger="svit_data.atomic"):
        removed = clean_leftovers(out)
    assert sorted(removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["svit", live.name, other.name])
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith(f"removed 4 leftovers of killed runs beside {out}")
    assert all(p.name in message for p in stale)


def test_a_set_aside_folder_of_a_dead_process_is_put_back(tmp_path):
    out = tmp_path / "svit"
    aside = tmp_path / f".svit.old-{dead_pid()}-12345678"
    aside.mkdir()
    (aside / "README.md").write_text("card")
    assert clean_leftovers(out) == []
    assert (out / "README.md").read_text() == "card" and not aside.exists()


def test_sigkill_mid_write_leaves_the_old_file_and_a_temporary_that_a_later_clean_removes(tmp_path):
    target = tmp_path / "big.json"
    target.write_text("old")
    script = textwrap.dedent(
        f"""
        import sys
        from svit_data.atomic import atomic_open
        with atomic_open({str(target)!r}) as handle:
            handle.write("new " * 1000)
            handle.flush()
            print("writing", flush=True)
            sys.stdin.read()  # wait here until killed
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"writing\n"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert target.read_text() == "old"
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert [p.name.startswith(f".big.json.tmp-{child.pid}-") for p in leftovers] == [True]
    assert clean_leftovers(target) == leftovers
    assert list(tmp_path.iterdir()) == [target]
