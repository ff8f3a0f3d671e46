"""The generate command end to end against the fake OpenAI server: faults, dry run, cost cap, rejections."""

from __future__ import annotations

import json

import pytest
from builders_helpers import generate_args, read_records, run_library, strip_provenance

from svit_data.builders.llm import LLMFatalError
from svit_data.cli import generate
from svit_data.errors import InputError
from svit_data.tasks import TASKS

ALL = ",".join(TASKS)


def _lib(small_vg, out, url, **kw) -> dict:
    """The library call: returns the summary."""
    kw.setdefault("tasks", ALL)
    kw.setdefault("timeout", 5)
    return run_library(small_vg, out, url, **kw)


def _run(small_vg, out, url, **kw):
    """Through the command line (what it prints and its exit code)."""
    args = generate_args(
        vg=small_vg,
        out=out,
        base_url=url,
        tasks=kw.pop("tasks", ALL),
        quiet=True,
        timeout=kw.pop("timeout", 5),
        **kw,
    )
    return generate.run(args)


def test_clean_run_writes_svit_records(small_vg, tmp_path, fake_server):
    with fake_server() as (fake, url):
        returned = _lib(small_vg, tmp_path / "out", url)
    out = tmp_path / "out"
    conv = read_records(out, "conversation")
    assert [r["image_id"] for r in conv] == [1, 2, 3, 4, 5, 6]
    assert len(conv[0]["conversations"]) == 3 and len(conv[0]["conversations"][0]["content"]) == 10
    assert conv[0]["conversations"][0]["content"][0]["from"] == "user"
    ref = read_records(out, "referring_qa")[0]
    assert len(ref["conversations"]) == 1 and len(ref["conversations"][0]["content"]) == 20
    assert "<st>" in ref["conversations"][0]["content"][0]["value"]
    detail = read_records(out, "detail_description")[0]
    assert detail["conversations"][0]["content"][0]["value"].endswith((".", "?"))
    prov = detail["provenance"]
    assert (
        prov["model"] == "gpt-4o" and prov["input_tokens"] > 0 and prov["cost_usd"] > 0 and prov["source_ids"]
    )
    assert detail["image_file"] == "1.jpg" and detail["width"] == 800
    summary = json.loads((out / "summary.json").read_text())
    assert summary == returned
    assert summary["records"] == {t: 6 for t in TASKS} and summary["sent"] == 24
    assert summary["grounding_rate"] == 1.0
    assert (out / "rejections.jsonl").read_text() == ""
    assert len(fake.log) == 24


def test_faults_give_the_same_records(small_vg, tmp_path, fake_server):
    with fake_server() as (_, url):
        _lib(small_vg, tmp_path / "clean", url)
    faults = ["429", "500", "timeout", "truncated", "empty", "malformed", None, "500", "429", "malformed"]
    with fake_server(faults=faults, timeout_sleep=3) as (fake, url):
        assert not _lib(small_vg, tmp_path / "faulty", url, timeout=1, reask=1)["stopped"]
    assert {e["status"] for e in fake.log} >= {429, 500, "timeout", "truncated"}
    for task in TASKS:
        clean = read_records(tmp_path / "clean", task)
        assert strip_provenance(read_records(tmp_path / "faulty", task)) == strip_provenance(clean)
    rejections = [
        json.loads(line) for line in (tmp_path / "faulty" / "rejections.jsonl").read_text().splitlines()
    ]
    assert len(rejections) == 2 and {r["reason"] for r in rejections} <= {"unparseable", "too_short"}
    assert {r["attempt"] for r in rejections} == {0}  # the re-ask (attempt 1) succeeded


def test_rerun_sends_nothing(small_vg, tmp_path, fake_server):
    with fake_server() as (fake, url):
        _lib(small_vg, tmp_path / "out", url)
        first = {t: read_records(tmp_path / "out", t) for t in TASKS}
        sent = len(fake.log)
        assert _lib(small_vg, tmp_path / "out", url)["cached"] == sent
        assert len(fake.log) == sent
    assert {t: read_records(tmp_path / "out", t) for t in TASKS} == first


def test_dry_run_sends_nothing_and_prices(small_vg, tmp_path, fake_server, capsys):
    with fake_server() as (fake, url):
        assert _run(small_vg, tmp_path / "out", url, dry_run=True) == 0
        assert fake.log == []
    text = capsys.readouterr().out
    assert "24 requests to send" in text and "with --batch" in text
    online = float(text.split("estimated cost: $")[1].split(" ")[0])
    batch = float(text.split("online, $")[1].split(" ")[0])
    assert online > 0 and batch == pytest.approx(online / 2, abs=0.011)


def _plan_numbers(text: str) -> dict[str, float]:
    return {
        "requests": int(text.split(" requests to send")[0].rsplit(" ", 1)[1]),
        "input": int(text.split("input tokens (exact): ")[1].split()[0]),
        "output": int(text.split("output tokens (estimate): ")[1].split()[0]),
        "online": float(text.split("estimated cost: $")[1].split(" ")[0]),
        "batch": float(text.split("online, $")[1].split(" ")[0]),
    }


def _snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_dry_run_writes_nothing_and_counts_exactly(small_vg, tmp_path, fake_server, capsys):
    out = tmp_path / "out"
    with fake_server() as (fake, url):
        assert _run(small_vg, out, url, dry_run=True) == 0
        assert fake.log == [] and not out.exists()  # no folder, no cache.sqlite, no index
        plan = _plan_numbers(capsys.readouterr().out)
        assert plan["requests"] == 24 and plan["output"] == 6 * (900 + 1500 + 1100 + 300)
        assert plan["online"] == pytest.approx((plan["input"] * 2.5 + plan["output"] * 10) / 1e6, abs=0.006)
        assert plan["batch"] == pytest.approx(plan["online"] / 2, abs=0.006)
        assert _run(small_vg, out, url) == 0
        # the exact count is what the server counted for the same requests
        assert plan["input"] == sum(fake.counter.count_messages(e["body"]["messages"]) for e in fake.log)
        capsys.readouterr()
        before = _snapshot(out)
        assert _run(small_vg, out, url, dry_run=True) == 0
        assert len(fake.log) == 24
    assert _snapshot(out) == before  # not even a -wal/-shm file next to the cache
    assert "0 requests to send (24 already cached)" in capsys.readouterr().out


def test_max_cost_is_a_hard_cap(small_vg, tmp_path, fake_server):
    with fake_server() as (_, url):
        summary = _lib(small_vg, tmp_path / "out", url, max_cost=0.05, max_tokens=1000, concurrency=2)
        assert summary["stopped"] and 0 < summary["spent_usd"] <= 0.05
        code = _run(small_vg, tmp_path / "cli", url, max_cost=0.05, max_tokens=1000, concurrency=2)
    assert code == generate.EXIT_BUDGET


def test_errors_in_replies_are_rejected_with_reasons(small_vg, tmp_path, fake_server):
    replies = iter(
        [
            "It seems like your message is empty. Could you provide the details?",
            "Question: What is here?\nAnswer: According to the description, a building.",
        ]
    )

    def bad(body):
        return next(replies, "nothing usable at all")

    with fake_server(answer=bad) as (_, url):
        _lib(small_vg, tmp_path / "out", url, tasks="complex_reasoning", limit=3, concurrency=1)
    rows = [json.loads(line) for line in (tmp_path / "out" / "rejections.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rows] == ["error_reply", "wrong_count", "unparseable"]
    assert rows[0]["text"].startswith("It seems like") and rows[0]["image_id"] == 1
    assert read_records(tmp_path / "out", "complex_reasoning") == []


def test_invalid_key_stops_at_once(small_vg, tmp_path, fake_server, monkeypatch):
    with (
        fake_server(api_key="right") as (fake, url),
        pytest.raises(LLMFatalError, match="rejected the API key"),
    ):
        _lib(small_vg, tmp_path / "out", url, concurrency=1, api_key="wrong")
    assert len(fake.log) == 1  # no retry, nothing else sent


def test_refused_connection_is_a_clear_error(small_vg, tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(LLMFatalError, match="cannot reach"):
        _lib(small_vg, tmp_path / "out", f"http://127.0.0.1:{port}/v1", max_retries=1, concurrency=1)
    assert (tmp_path / "out" / "cache.sqlite").exists()


def test_bad_inputs(small_vg, tmp_path):
    with pytest.raises(InputError, match="missing Visual Genome"):
        _lib(tmp_path, tmp_path / "out", None, dry_run=True)
    prompts = tmp_path / "prompts" / "conversation"
    prompts.mkdir(parents=True)
    (prompts / "system_message.txt").write_text("hi")
    with pytest.raises(InputError, match="no folder or file for task 'referring_qa'"):
        _lib(
            small_vg,
            tmp_path / "out",
            None,
            dry_run=True,
            prompts=str(tmp_path / "prompts"),
            tasks="conversation,referring_qa",
        )
    with pytest.raises(InputError, match="--shard"):
        _run(small_vg, tmp_path / "out", "http://127.0.0.1:9/v1", dry_run=True, shard="3/2")
