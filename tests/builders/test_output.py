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


def test_generation_selections_are_read_from_summaries_and_checked(tmp_path):
    import json

    import pytest

    from svit_data.builders.output import generation_selections
    from svit_data.errors import InputError

    record = {
        "n": 2, "of": 5, "seed": 0, "vocabulary": "v", "vocabulary_hash": "h", "ids_sha256": "abc",
        "selected": {"coverage": 0.5, "entropy_bits": 1.0, "objective": 2.0},
        "random": {"coverage": 0.25, "entropy_bits": 0.5, "objective": 1.0},
        "concepts": 9, "ids_file": "selected_ids-000of002.txt",
    }  # fmt: skip
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "summary-000of002.json").write_text(json.dumps({"records": {}, "selection": record}))
    (gen / "summary-001of002.json").write_text(json.dumps({"records": {}}))  # generated without --select
    found = generation_selections([gen, tmp_path / "missing"])
    assert list(found) == ["gen/summary-000of002.json"] and found["gen/summary-000of002.json"].n == 2
    assert generation_selections([tmp_path / "missing"]) is None
    del record["ids_sha256"]
    (gen / "summary-000of002.json").write_text(json.dumps({"selection": record}))
    with pytest.raises(InputError, match="lacks ids_sha256"):
        generation_selections([gen])
