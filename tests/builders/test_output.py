"""builders/output.py: a restart removes only the temporary files whose writer is gone."""

from __future__ import annotations

import os
import subprocess
import sys

from svit_data.builders.output import OutputLayout


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has this id now (ids are not reused this fast)


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("partial")
    return path


def test_temp_files_of_dead_writers_go_and_live_ones_stay(tmp_path):
    dead, alive = dead_pid(), os.getpid()
    gone = touch(tmp_path / "detail_description" / f".shard-000of001-00000.jsonl.tmp-{dead}-0a1b2c3d")
    gone_too = touch(tmp_path / f".summary.json.tmp-{dead}-99aa00ff")
    live = touch(tmp_path / "conversation" / f".shard-000of001-00001.jsonl.tmp-{alive}-0a1b2c3d")
    unrelated = [touch(tmp_path / ".notes.tmp"), touch(tmp_path / f".x.tmp-{dead}")]  # not our pattern
    assert OutputLayout(tmp_path).remove_stale_tmp() == 2
    assert not gone.exists() and not gone_too.exists()
    assert live.exists() and all(p.exists() for p in unrelated)


def test_a_shard_removes_only_its_own_temp_files(tmp_path):
    dead = dead_pid()
    mine = touch(tmp_path / "conversation" / f".shard-000of002-00003.jsonl.tmp-{dead}-0a1b2c3d")
    other = touch(tmp_path / "conversation" / f".shard-001of002-00003.jsonl.tmp-{dead}-0a1b2c3d")
    assert OutputLayout(tmp_path, 0, 2).remove_stale_tmp() == 1
    assert not mine.exists() and other.exists()
