"""Batch API mode: same records as online; a restarted process picks up its batch instead of paying twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from builders_helpers import HERE, generate_args, read_records, strip_provenance

from svit_data.cli import generate
from svit_data.tasks import TASKS

ALL = ",".join(TASKS)


def test_batch_gives_online_records(small_vg, tmp_path, fake_server):
    with fake_server() as (_, url):
        generate.run(generate_args(vg=small_vg, out=tmp_path / "online", base_url=url, tasks=ALL, quiet=True))
    with fake_server(batch_delay=0.2) as (fake, url):
        args = generate_args(
            vg=small_vg,
            out=tmp_path / "batch",
            base_url=url,
            tasks=ALL,
            quiet=True,
            batch=True,
            poll_interval=0.05,
        )
        assert generate.run(args) == 0
        assert len(fake.batches) == 1 and all(e.get("batch") for e in fake.log)
        assert generate.run(args) == 0  # rerun: everything cached, no new batch
        assert len(fake.batches) == 1
    for task in TASKS:
        got = read_records(tmp_path / "batch", task)
        assert strip_provenance(got) == strip_provenance(read_records(tmp_path / "online", task))
        assert got[0]["provenance"]["request_id"].startswith("batch_")


def test_restart_picks_up_the_open_batch(small_vg, tmp_path, fake_server):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(HERE / "run_generate.py"),
        "--vg",
        str(small_vg),
        "--out",
        str(out),
        "--tasks",
        ALL,
        "--batch",
        "--poll-interval",
        "0.05",
        "--quiet",
    ]
    env = {**os.environ, "OPENAI_API_KEY": "k"}
    with fake_server(batch_delay=1.5) as (fake, url):
        child = subprocess.Popen([*cmd, "--base-url", url], env=env)
        deadline = time.monotonic() + 60
        while not fake.batches and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the batch id is committed right after creation
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        with sqlite3.connect(out / "cache.sqlite") as conn:
            assert conn.execute("SELECT COUNT(*) FROM batches WHERE status = 'submitted'").fetchone()[0] == 1
        subprocess.run([*cmd, "--base-url", url], env=env, check=True, timeout=60)
        assert len(fake.batches) == 1  # picked up, not paid twice
    assert len(read_records(out, "conversation")) == 6
