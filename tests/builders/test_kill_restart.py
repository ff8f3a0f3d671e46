"""kill -9 in the middle of a run, restart: no answer already received is requested again; same records."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from builders_helpers import HERE, read_records

from svit_data.tasks import TASKS

TASK_LIST = "conversation,referring_qa"


def _cmd(vg: Path, out: Path, url: str) -> list[str]:
    return [
        sys.executable,
        str(HERE / "run_generate.py"),
        "--vg",
        str(vg),
        "--out",
        str(out),
        "--base-url",
        url,
        "--tasks",
        TASK_LIST,
        "--concurrency",
        "2",
        "--chunk-size",
        "5",
        "--quiet",
        "--timeout",
        "10",
    ]


def _cached_bodies(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {
            json.dumps(json.loads(r[0]), sort_keys=True)
            for r in conn.execute("SELECT request FROM responses")
        }


def test_sigkill_and_restart(vg_dir, tmp_path, fake_server):
    env = {**os.environ, "OPENAI_API_KEY": "k"}
    with fake_server(latency=0.0) as (_, url):  # reference run, 30 images
        subprocess.run(_cmd(vg_dir, tmp_path / "ref", url), env=env, check=True, timeout=120)
    reference = {t: read_records(tmp_path / "ref", t) for t in TASK_LIST.split(",")}
    out = tmp_path / "out"
    with fake_server(latency=0.05) as (fake, url):
        child = subprocess.Popen(_cmd(vg_dir, out, url), env=env)
        db = out / "cache.sqlite"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if db.exists() and len(_cached_bodies(db)) >= 20:
                    break
            except sqlite3.OperationalError:  # the child is still creating the schema
                pass
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        received_before = _cached_bodies(db)
        assert 20 <= len(received_before) < 60
        first_run = len(fake.log)
        subprocess.run(_cmd(vg_dir, out, url), env=env, check=True, timeout=120)
        resent = [json.dumps(e["body"], sort_keys=True) for e in fake.log[first_run:]]
    assert not set(resent) & received_before  # zero repeated requests for answers already received
    assert len(resent) <= 60 - len(received_before) + 2  # at most the in-flight ones lost by the kill
    for task, records in reference.items():
        got = read_records(out, task)
        strip = lambda rs: [{k: v for k, v in r.items() if k != "provenance"} for r in rs]  # noqa: E731
        assert strip(got) == strip(records)
    assert not list(out.rglob(".*.tmp*"))  # no partial files left by the kill (tmp files are per pid)
    assert set(TASKS) >= set(json.loads((out / "summary.json").read_text())["records"])
