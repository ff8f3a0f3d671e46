"""svit-recipe verify against the loopback server: verdicts, flags in the next build, bad input, resuming."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import image_parts, judge_answer, text_of
from PIL import Image
from test_endpoints import _dead_url as dead_url
from test_kill_restart import _cached_bodies

from svit_data import splits
from svit_data.builders.judge import Judgment, judge_messages, parse_judgment, qa_pairs
from svit_data.builders.openai_client import ClientConfig
from svit_data.builders.verify import VerifyConfig
from svit_data.builders.verify_run import VerifyJob, plan, verify
from svit_data.cli import main
from svit_data.errors import SvitError
from svit_data.sources import open_sources, parse_source
from svit_data.tasks import TASK_FILES
from svit_data.verified import store_path

IDS = [i for i in range(1, 100) if i not in splits.test_image_ids()][:4]  # ok, missing, corrupt, ok
GOOD, MISSING, CORRUPT, OTHER = IDS
UNICORN = f"complex_reasoning/{GOOD}/2"
MUMBLE = f"complex_reasoning/{OTHER}/1"
OBJECTS = ["dog", "bicycle", "umbrella", "kite", "bench", "truck", "lamp", "clock"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Verdicts are stored per pool fingerprint in the svit cache: each test gets its own."""
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "svit-cache"))


def qa(q: str, a: str) -> list[dict[str, str]]:
    return [{"from": "user", "value": q}, {"from": "gpt", "value": a}]


def make_source(folder: Path) -> Path:
    """Four images (one missing, one that does not decode) with complex reasoning and referring QA."""
    records = {"complex_reasoning": [], "referring_qa": []}
    for n, image_id in enumerate(IDS):
        content = []
        for k in range(8):
            thing = OBJECTS[(k + n) % len(OBJECTS)]
            answer = f"It is likely used by people nearby, reason {k}."
            if image_id == GOOD and k == 2:
                answer = "A unicorn stands next to it."
            if image_id == OTHER and k == 1:
                answer = "Hard to say, mumble."
            content += qa(f"Why might the {thing} be here ({k}, {image_id})?", answer)
        records["complex_reasoning"].append({"image_id": image_id, "conversations": [{"content": content}]})
        content = []
        for k in range(6):
            x = round(0.1 * (k % 5), 2)
            content += qa(
                f"Where is the <st>{OBJECTS[k]}<ed>?",
                f"The <st>{OBJECTS[k]}<ed> [{x}, 0.1, {x + 0.1:.2f}, 0.3] stands there ({image_id}).",
            )
        records["referring_qa"].append({"image_id": image_id, "conversations": [{"content": content}]})
    folder.mkdir(parents=True)
    for task, items in records.items():
        (folder / TASK_FILES[task]).write_text(json.dumps(items))
    images = folder / "images"
    images.mkdir()
    for image_id in (GOOD, OTHER):
        Image.new("RGB", (64, 48), (200, 40, 40)).save(images / f"{image_id}.jpg")
    (images / f"{CORRUPT}.jpg").write_bytes(b"not a jpeg at all")
    return folder


@pytest.fixture
def source(tmp_path) -> Path:
    return make_source(tmp_path / "src")


def run(source: Path, out: Path, url, **kw) -> dict:
    client = {k: kw.pop(k) for k in ("timeout", "max_retries", "backoff", "concurrency") if k in kw}
    job_keys = {"dry_run", "max_cost", "price_input", "price_output", "vg"}
    job = VerifyJob(out=str(out), source=(str(source),), **{k: kw.pop(k) for k in list(kw) if k in job_keys})
    config = VerifyConfig(**kw)
    if job.dry_run:
        return plan(job, config)
    return verify(job, config, ClientConfig(base_url=url, **client))


def judgments(out: Path) -> dict[str, dict]:
    return {row["id"]: row for row in map(json.loads, (out / "judgments.jsonl").read_text().splitlines())}


def chat_requests(fake) -> int:
    return len(fake.log)


# -- pure pieces ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"supported": "yes", "reason": "a red  dog"}', Judgment(True, "a red dog")),
        ('```json\n{"supported": "No", "reason": "no dog"}\n```', Judgment(False, "no dog")),
        ('{"supported": false, "reason": ""}', Judgment(False, "")),
        ("Yes, the dog is visible.", Judgment(True, "the dog is visible.")),
        ("no - there is no dog", Judgment(False, "there is no dog")),
        ("**No**. Nothing like it.", Judgment(False, "Nothing like it.")),
        ("Maybe; it is hard to tell.", None),
        ("Yesterday it was there.", None),
        ("Not visible.", None),
        ('{"supported": "perhaps"}', None),
        ('{"supported": "yes"', None),
        ("", None),
    ],
)
def test_parse_judgment(text, expected):
    assert parse_judgment(text) == expected


def test_pairs_and_messages_pass_boxes_and_their_frame():
    turns = qa("Q1", "A1") + qa("Q2", "A2")
    assert qa_pairs(turns) == [("Q1", "A1"), ("Q2", "A2")]
    assert qa_pairs([{"from": "gpt", "value": "x"}, *qa("Q", "A")]) == [("Q", "A")]
    boxed = judge_messages("referring_qa", "Where is the <st>dog<ed>?", "At [0.1, 0.2, 0.3, 0.4].", "text")
    assert "fractions (0-1) of the image width and height" in boxed[1]["content"]
    assert "At [0.1, 0.2, 0.3, 0.4]." in boxed[1]["content"]
    assert "first word" in boxed[0]["content"]
    plain = judge_messages("conversation", "What color?", "Red.", "json_object", "square")
    assert "Boxes" not in plain[1]["content"] and "JSON" in plain[0]["content"]
    assert "padded to a square" in judge_messages("", "Q", "[1, 2, 3, 4]", "text", "square")[1]["content"]


# -- end to end -------------------------------------------------------------------------------------
def test_verdicts_become_flags_and_a_rerun_repeats_no_request(source, tmp_path, fake_server):
    out = tmp_path / "out"
    with fake_server(answer=judge_answer) as (fake, url):
        summary = run(source, out, url, reask=1)
        sent = chat_requests(fake)
        bodies = [e["body"] for e in fake.log]
        again = run(source, out, url, reask=1)
        assert chat_requests(fake) == sent  # everything came from the response cache
    # every request: one image part (low detail) and a strict JSON schema
    assert all(len(image_parts(b)) == 1 and image_parts(b)[0]["image_url"]["detail"] == "low" for b in bodies)
    assert all(b["response_format"]["type"] == "json_schema" for b in bodies)
    # referring QA boxes reach the judge with their frame
    referring = [
        text_of(b["messages"][1]["content"]) for b in bodies if "<st>" in text_of(b["messages"][1]["content"])
    ]
    assert referring and all("[x1, y1, x2, y2]" in t and "fractions (0-1)" in t for t in referring)
    verdicts = judgments(out)
    assert len(verdicts) == 2 * (8 + 6)  # the two images that exist; the other two are skipped and counted
    assert summary["skipped"] == {"image_missing": 14, "image_unreadable": 14}
    assert verdicts[UNICORN]["supported"] is False and "unicorn" in verdicts[UNICORN]["reason"]
    assert verdicts[MUMBLE]["supported"] is True  # unclear at first, "yes" when re-asked
    assert summary["unclear_replies"] == 1 and summary["unsupported"] == 1 and summary["judged"] == 28
    assert summary["per_task"]["complex_reasoning"] == {"supported": 15, "unsupported_by_image": 1}
    assert summary["sent"] == sent and again["sent"] == 0 and again["cached"] == sent
    assert {k: v for k, v in again.items() if k not in ("sent", "cached", "llm")} == {
        k: v for k, v in summary.items() if k not in ("sent", "cached", "llm", "spent_usd")
    } | {"spent_usd": 0.0}
    # the pool opened again (as build opens it) carries the flag, its counts and the rate per task
    pool = open_sources([parse_source(str(source))], progress=False)
    flagged = {r["id"]: r["flags"] for r in pool.table(["id", "flags"]).to_pylist() if r["flags"]}
    assert flagged == {UNICORN: ["unsupported_by_image"]}
    assert pool.quality["per_task"]["complex_reasoning"]["unsupported_by_image"] == 1
    assert pool.quality["examples"]["unsupported_by_image"] == [UNICORN]
    assert pool.quality["flagged"] == 1
    assert pool.quality["verification"]["per_task"] == {
        "complex_reasoning": {"checked": 16, "unsupported_by_image": 1, "ungrounded_box": 0},
        "referring_qa": {"checked": 12, "unsupported_by_image": 0, "ungrounded_box": 0},
    }
    assert store_path(pool.fingerprint).is_file()


def test_build_shows_the_flag_recipes_exclude_it_and_the_card_has_the_rate(source, tmp_path, fake_server):
    out = tmp_path / "svit"
    build = ["build", "full", "svit-train", "--source", str(source), "--out", str(out), "--quiet"]
    assert main(build) == 0  # before verify: the pool and its concept matrix are cached, nothing flagged
    assert "unsupported_by_image" not in (out / "README.md").read_text()
    with fake_server(answer=judge_answer) as (_, url):
        run(source, tmp_path / "out", url, tasks=("complex_reasoning",))
    assert main(build) == 0
    from datasets import load_dataset

    from svit_data.folder import read_state

    full = load_dataset(str(out), "full", cache_dir=str(tmp_path / "hf"))
    # the corrupt image is embedded as it is: read ids and flags without decoding images
    flags = {
        row["id"]: row["flags"] for split in full.values() for row in split.select_columns(["id", "flags"])
    }
    assert flags[UNICORN] == ["unsupported_by_image"]
    train = load_dataset(str(out), "svit-train", cache_dir=str(tmp_path / "hf2"))
    assert UNICORN not in {i for split in train.values() for i in split["id"]}
    quality = read_state(out).configs["svit-train"].recipe.diagnostics.quality
    assert quality["excluded_by_reason"] == {"unsupported_by_image": 1}
    card = (out / "README.md").read_text()
    assert "`unsupported_by_image`" in card and "| complex_reasoning | 16 | 1 | 0 | 6.2% |" in card


def test_a_server_without_response_format_gets_plain_text_and_a_rerun_repeats_nothing(
    source, tmp_path, fake_server
):
    out = tmp_path / "out"
    with fake_server(answer=judge_answer, reject_response_format=True) as (fake, url):
        summary = run(source, out, url, tasks=("complex_reasoning",), concurrency=1, chunk_size=1)
        rejected = [e for e in fake.log if e["status"] == 400]
        answered = [e["body"] for e in fake.log if e.get("answered")]
        count = chat_requests(fake)
        run(source, out, url, tasks=("complex_reasoning",))
        assert chat_requests(fake) == count
    assert len(rejected) == 2  # json_schema, then json_object: each refused once, then plain text
    assert all("response_format" not in b for b in answered)
    assert summary["reply_format"] == "text" and summary["unsupported"] == 1
    assert judgments(out)[UNICORN]["reason"] == "the picture shows no unicorn"


def test_a_reply_that_stays_unclear_is_counted_not_flagged(source, tmp_path, fake_server):
    out = tmp_path / "out"
    with fake_server(answer=judge_answer) as (_, url):
        summary = run(source, out, url, tasks=("complex_reasoning",), reask=0)
    assert judgments(out)[MUMBLE]["supported"] is None
    assert summary["unclear"] == 1 and summary["unclear_replies"] == 1
    pool = open_sources([parse_source(str(source))], progress=False)
    assert pool.quality["verification"]["per_task"]["complex_reasoning"]["checked"] == 15


def test_a_model_without_images_is_one_clear_error(source, tmp_path, fake_server, capsys):
    with fake_server(answer=judge_answer, text_only=True) as (_, url):
        with pytest.raises(
            SvitError, match=r"does not take images \(HTTP 400: .*\), so it cannot judge them"
        ):
            run(source, tmp_path / "out", url)
        code = main(
            ["verify", "--source", str(source), "--out", str(tmp_path / "o2"), "--base-url", url, "--quiet"]
        )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not take images" in err[0] and "choose a vision model" in err[0]
    assert "--send-image" not in err[0] and "image_url is only supported by certain models" in err[0]


def test_every_endpoint_down_stops_cleanly_and_keeps_what_was_answered(source, tmp_path, fake_server, capsys):
    out = tmp_path / "out"
    with fake_server(answer=judge_answer) as (fake, url):
        run(source, out, url, tasks=("complex_reasoning",), limit=3)
        first = chat_requests(fake)
    args = ["verify", "--source", str(source), "--out", str(out), "--tasks", "complex_reasoning", "--quiet"]
    args += ["--base-url", dead_url(), "--base-url", dead_url(), "--timeout", "5", "--backoff", "0.01"]
    assert main(args) == 2
    assert "every endpoint is down" in capsys.readouterr().err
    assert len(judgments(out)) == 3  # the answered samples were rebuilt from the cache and kept
    assert json.loads((out / "verify_summary.json").read_text())["stopped"]
    with fake_server(answer=judge_answer) as (fake, url):
        summary = run(source, out, url, tasks=("complex_reasoning",))
    assert chat_requests(fake) == summary["sent"] and summary["cached"] == first
    assert len(judgments(out)) == 16


def test_dry_run_counts_image_tokens_and_writes_nothing(source, tmp_path, fake_server, capsys):
    out = tmp_path / "out"
    estimate = run(source, out, None, dry_run=True, tasks=("referring_qa",))
    assert not out.exists()
    assert estimate["requests"] == 12 and estimate["image_tokens"] == 12 * 85
    assert estimate["skipped"] == {"image_missing": 6, "image_unreadable": 6}
    assert estimate["cost_online_usd"] > 0
    with fake_server(answer=judge_answer) as (_, url):
        run(source, out, url, tasks=("referring_qa",), limit=2)
    again = run(source, out, None, dry_run=True, tasks=("referring_qa",))
    assert (again["cached"], again["requests"]) == (2, 10)
    assert main(["verify", "--source", str(source), "--out", str(out), "--dry-run", "--quiet"]) == 0
    assert "images by the rule" in capsys.readouterr().out


def test_budget_cap_stops_with_exit_3(source, tmp_path, fake_server, capsys):
    with fake_server(answer=judge_answer) as (fake, url):
        args = [
            "verify",
            "--source",
            str(source),
            "--out",
            str(tmp_path / "out"),
            "--base-url",
            url,
            "--quiet",
        ]
        assert main([*args, "--max-cost", "0.005", "--concurrency", "1", "--chunk-size", "1"]) == 3
    assert "max-cost" in capsys.readouterr().err
    assert 0 < len(fake.log) < 28


def test_unknown_pool_and_bad_flags_are_clear_errors(tmp_path, capsys):
    assert (
        main(["verify", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    )
    assert "nope: does not exist" in capsys.readouterr().err
    assert main(["verify", "--out", str(tmp_path / "o"), "--detail", "huge", "--dry-run"]) == 2
    assert "detail must be one of" in capsys.readouterr().err


def _canonical(body: dict) -> str:
    """A request body as the cache stores it: images named by the sha256 of their bytes, not inlined."""
    body = json.loads(json.dumps(body))
    for part in image_parts(body):
        data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
        part["image_url"]["url"] = "sha256:" + hashlib.sha256(data).hexdigest()
    return json.dumps(body, sort_keys=True)


def test_sigkill_and_restart_repeats_no_request(source, tmp_path, fake_server):
    out = tmp_path / "out"
    main_cli = "import sys; from svit_data.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", main_cli, "verify", "--source", str(source), "--out", str(out)]
    cmd += ["--concurrency", "2", "--chunk-size", "4", "--quiet", "--timeout", "10"]
    with fake_server(answer=judge_answer, latency=0.2) as (fake, url):
        child = subprocess.Popen([*cmd, "--base-url", url])
        db, deadline = out / "cache.sqlite", time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if db.exists() and len(_cached_bodies(db)) >= 10:
                    break
            except sqlite3.OperationalError:  # the child is still creating the schema
                pass
            time.sleep(0.02)
        assert child.poll() is None, "the run ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        received = _cached_bodies(db)
        assert 10 <= len(received) < 29 and not (out / "judgments.jsonl").exists()
        first = len(fake.log)
        subprocess.run([*cmd, "--base-url", url], check=True, timeout=120)
        resent = [_canonical(e["body"]) for e in fake.log[first:]]
    assert resent and not set(resent) & received  # zero repeated requests for answers already received
    assert len(received) + len(resent) <= 29 + 2  # at most the in-flight ones lost by the kill
    verdicts = judgments(out)
    assert len(verdicts) == 28 and verdicts[UNICORN]["supported"] is False


def make_vg(folder: Path) -> Path:
    """Visual Genome annotations of the four images (100 x 100 px): boxes for every referring box of
    ``make_source`` except the fourth QA pair's (x = 0.3), which matches nothing."""
    folder.mkdir()
    (folder / "image_data.json").write_text(
        json.dumps([{"image_id": i, "width": 100, "height": 100} for i in IDS])
    )
    objects = [
        {
            "image_id": i,
            "objects": [
                {"object_id": 10 * i + k, "names": [OBJECTS[k]], "x": 10 * k, "y": 10, "w": 10, "h": 20}
                for k in (0, 1, 2, 4)
            ],
        }
        for i in IDS
    ]
    (folder / "objects.json").write_text(json.dumps(objects))
    (folder / "region_descriptions.json").write_text(
        json.dumps([{"image_id": i, "regions": []} for i in IDS])
    )
    return folder


def test_referring_boxes_are_checked_against_the_source_annotations(source, tmp_path, fake_server):
    vg = make_vg(tmp_path / "vg")
    out = tmp_path / "out"
    estimate = run(source, out, None, dry_run=True, tasks=("referring_qa",), vg=str(vg))
    assert estimate["ungrounded"] == 4 and estimate["requests"] == 10  # 2 readable images x 5 grounded
    with fake_server(answer=judge_answer) as (fake, url):
        summary = run(source, out, url, tasks=("referring_qa",), vg=str(vg))
    assert len(fake.log) == 10  # an ungrounded sample costs no request, whatever its image
    assert summary["ungrounded"] == 4 and summary["judged"] == 10
    verdict = judgments(out)[f"referring_qa/{GOOD}/3"]
    assert verdict["code"] == "ungrounded_box" and verdict["supported"] is False
    assert verdict["reason"] == "box [0.3, 0.1, 0.4, 0.3] matches no source box (IoU < 0.5)"
    pool = open_sources([parse_source(str(source))], progress=False)
    flagged = {r["id"]: r["flags"] for r in pool.table(["id", "flags"]).to_pylist() if r["flags"]}
    assert flagged == {f"referring_qa/{i}/3": ["ungrounded_box"] for i in IDS}
    assert pool.quality["verification"]["per_task"]["referring_qa"] == {
        "checked": 14,
        "unsupported_by_image": 0,
        "ungrounded_box": 4,
    }
