"""Batch API mode: same records as online; a restarted or killed process never pays for a batch twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from builders_helpers import HERE, generate_args, read_records, run_library, strip_provenance
from fake_openai import echo_answer

from svit_data.builders.batch import BatchRunner
from svit_data.builders.cache import ResponseCache
from svit_data.builders.llm import ChatRequest
from svit_data.builders.openai_client import ClientConfig
from svit_data.cli import generate
from svit_data.tasks import TASKS

ALL = ",".join(TASKS)


def test_batch_gives_online_records(small_vg, tmp_path, fake_server):
    with fake_server() as (_, url):
        run_library(small_vg, tmp_path / "online", url, tasks=ALL)
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


def test_kill_between_create_and_record_does_not_pay_twice(small_vg, tmp_path, fake_server):
    out = tmp_path / "out"
    cmd = [sys.executable, str(HERE / "run_generate.py"), "--vg", str(small_vg), "--out", str(out)]
    cmd += ["--tasks", ALL, "--batch", "--poll-interval", "0.05", "--quiet"]
    env = {**os.environ, "OPENAI_API_KEY": "k"}
    # the server creates the batch, then holds its answer: the client is killed before it learns the id
    with fake_server(batch_delay=0.5, create_hold=3) as (fake, url):
        child = subprocess.Popen([*cmd, "--base-url", url], env=env)
        deadline = time.monotonic() + 60
        while not fake.batches and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        with sqlite3.connect(out / "cache.sqlite") as conn:
            assert conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0
            (file_id,) = conn.execute("SELECT input_file_id FROM batch_intents").fetchone()
        (batch,) = fake.batches.values()
        assert batch["input_file_id"] == file_id and batch["metadata"]["svit_input_sha256"]
        subprocess.run([*cmd, "--base-url", url], env=env, check=True, timeout=60)
        assert len(fake.batches) == 1 and fake.list_calls >= 1  # looked up and adopted
        assert sum(1 for e in fake.log if e.get("batch")) == 24  # every request answered once
        with sqlite3.connect(out / "cache.sqlite") as conn:
            assert conn.execute("SELECT COUNT(*) FROM batch_intents").fetchone()[0] == 0
    assert [r["image_id"] for r in read_records(out, "conversation")] == [1, 2, 3, 4, 5, 6]


def test_intent_without_batch_is_created_once_from_the_stored_file(tmp_path, fake_server):
    requests = [
        ChatRequest.build("gpt-4o", [{"role": "user", "content": f"q{i}"}], max_tokens=5) for i in range(3)
    ]

    async def scenario(url: str) -> None:
        cache = ResponseCache(tmp_path / "cache.sqlite")
        runner = BatchRunner(ClientConfig(base_url=url), cache, tmp_path / "batches", poll_interval=0.05)
        create = runner.client.batches.create

        async def killed(**kwargs):
            raise RuntimeError("killed after the upload, before batches.create")

        runner.client.batches.create = killed
        with pytest.raises(RuntimeError, match="killed"):
            await runner.submit(requests)
        ((_, _, keys, file_id, _),) = cache.intents()
        assert file_id is not None and sorted(keys) == sorted(r.key for r in requests)
        runner.client.batches.create = create
        assert await runner.submit(requests) == []  # settled from the intent, nothing new
        assert runner.stats["batches_created"] == 1 and cache.intents() == []
        assert await runner.submit(requests) == []
        await runner.collect()
        assert all(cache.get(r.key).text.startswith("echo: q") for r in requests)
        await runner.aclose()
        cache.close()

    with fake_server(answer=echo_answer) as (fake, url):
        asyncio.run(scenario(url))
        assert len(fake.batches) == 1
        uploads = [f for f in fake.files.values() if b'"custom_id"' in f and b'"method"' in f]
        assert len(uploads) == 1  # the input was not uploaded again
