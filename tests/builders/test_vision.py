"""Vision teachers: OpenAI's image token rule, image parts, missing images, drift, refusing servers."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3

import pytest
from builders_helpers import generate_args, read_records
from fake_openai import image_parts
from PIL import Image

from svit_data.builders.cache import ResponseCache
from svit_data.builders.llm import ChatRequest, ChatResult, LLMFatalError
from svit_data.builders.vision import ImageFinder, ImageUnavailable, TokenDrift, image_tokens
from svit_data.cli import generate
from svit_data.tasks import TASKS

ALL = ",".join(TASKS)


@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        ((4096, 8192), "low", 85),  # low: fixed, whatever the size
        ((1024, 1024), "high", 765),  # short side 1024 -> 768: 768x768, 2x2 tiles: 4*170+85
        ((2048, 4096), "high", 1105),  # fit 2048: 1024x2048; short side -> 768: 768x1536, 2x3 tiles
        ((500, 300), "high", 255),  # no scaling: one tile
        ((800, 600), "high", 765),  # short side 600 < 768 stays: 2x2 tiles
        ((1536, 768), "high", 1105),  # exactly 768 short: 3x2 tiles
        ((1000, 3000), "high", 1445),  # fit: 682.7x2048 (short < 768 stays): 2x4 tiles
        ((1024, 1024), "auto", 765),  # auto counts as high: never undercount
    ],
)
def test_gpt4o_image_token_rule(size, detail, tokens):
    assert image_tokens(*size, detail) == tokens


def test_image_token_override_and_bad_detail():
    assert image_tokens(4000, 3000, "high", override=576) == 576
    with pytest.raises(ValueError, match="detail"):
        image_tokens(10, 10, "medium")


def _jpeg(path, size=(800, 600), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG")
    return path


def test_finder_finds_nested_images_and_reports_bad_ones(tmp_path):
    _jpeg(tmp_path / "VG_100K" / "1.jpg")
    _jpeg(tmp_path / "VG_100K_2" / "2.jpg", size=(300, 200))
    (tmp_path / "3.jpg").write_bytes(b"not a jpeg at all")
    full = (tmp_path / "VG_100K" / "1.jpg").read_bytes()
    (tmp_path / "4.jpg").write_bytes(full[: len(full) // 3])  # truncated
    finder = ImageFinder(tmp_path, "high")
    one = finder.get(1)
    assert one.tokens == 765 and one.detail == "high" and one.path.endswith("VG_100K/1.jpg")
    assert base64.b64decode(one.data_url().split(",", 1)[1]) == full
    assert one.data_url().startswith("data:image/jpeg;base64,")
    assert finder.get(2).tokens == 255
    assert ImageFinder(tmp_path, "low").get(1).tokens == 85
    for image_id, reason in ((3, "image_unreadable"), (4, "image_unreadable"), (9, "image_missing")):
        with pytest.raises(ImageUnavailable) as info:
            finder.get(image_id)
        assert info.value.reason == reason


def test_request_body_key_and_cache_row(tmp_path):
    _jpeg(tmp_path / "img" / "7.jpg")
    image = ImageFinder(tmp_path / "img", "low").get(7)
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "ctx"}]
    request = ChatRequest.build("gpt-4o", messages, image, max_tokens=10)
    body = request.body()
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    text, part = body["messages"][1]["content"]
    assert text == {"type": "text", "text": "ctx"}
    assert part["image_url"]["detail"] == "low" and part["image_url"]["url"].startswith("data:image/jpeg")
    # the key names the image by digest: same bytes same key, other detail another key, text-only unchanged
    again = ChatRequest.build("gpt-4o", messages, ImageFinder(tmp_path / "img", "low").get(7), max_tokens=10)
    assert again.key == request.key
    assert (
        ChatRequest.build("gpt-4o", messages, ImageFinder(tmp_path / "img", "high").get(7), max_tokens=10).key
        != request.key
    )
    assert ChatRequest.build("gpt-4o", messages, max_tokens=10).body() == {
        "model": "gpt-4o",
        "messages": messages,
        "max_tokens": 10,
    }
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put(request, ChatResult("ok", 100, 1, "r1"))
    cache.close()
    stored = sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT request FROM responses").fetchone()[0]
    assert "base64" not in stored and f"sha256:{image.digest}" in stored


def test_drift_warns_once_over_a_window(caplog):
    drift = TokenDrift(window=4, threshold=0.10)
    with caplog.at_level(logging.WARNING):
        assert not any(drift.observe(1000, 1090) for _ in range(10))  # 9% off: quiet
        drift = TokenDrift(window=4, threshold=0.10)
        assert [drift.observe(1000, 1200) for _ in range(6)] == [False, False, False, True, False, False]
    warnings = [r.getMessage() for r in caplog.records if "image token estimate" in r.getMessage()]
    assert len(warnings) == 1 and "4000" in warnings[0] and "4800" in warnings[0]


@pytest.fixture
def vg_images(tmp_path):
    root = tmp_path / "images"
    for image_id, size in (
        (1, (800, 600)),
        (2, (800, 600)),
        (3, (640, 480)),
        (4, (640, 480)),
        (5, (800, 600)),
    ):
        _jpeg(root / f"part{image_id % 2}" / f"{image_id}.jpg", size=size)
    return root  # image 6 is missing


def _run(small_vg, out, url, **kw):
    args = generate_args(vg=small_vg, out=out, base_url=url, tasks=ALL, quiet=True, timeout=5, **kw)
    return generate.run(args)


def test_generate_sends_images_and_skips_missing_ones(small_vg, vg_images, tmp_path, fake_server, capsys):
    out = tmp_path / "out"
    with fake_server() as (fake, url):
        assert _run(small_vg, out, url, send_image="high", images=vg_images, dry_run=True) == 0
        printed = capsys.readouterr().out
        assert len(fake.log) == 0
        assert "20 requests to send" in printed
        # 4 tasks x (three 800x600 images: 2x2 tiles, 765 + two 640x480: 2x1 tiles, 425)
        assert "image tokens (rule estimate, included above): 12580" in printed
        assert "4 image_missing" in printed
        assert _run(small_vg, out, url, send_image="high", images=vg_images) == 0
    assert len(fake.log) == 20
    for entry in fake.log:
        (part,) = image_parts(entry["body"])
        assert part["image_url"]["detail"] == "high"
        assert "it is attached to the message" in entry["body"]["messages"][0]["content"]
    conv = read_records(out, "conversation")
    assert [r["image_id"] for r in conv] == [1, 2, 3, 4, 5]
    summary = json.loads((out / "summary.json").read_text())
    # the server bills by the same rule: its prompt tokens are what the records and summary carry
    assert summary["llm"]["input_tokens"] == sum(fake.prompt_tokens(e["body"]) for e in fake.log)
    planned = int(printed.split("input tokens (exact): ")[1].split()[0])
    assert planned == summary["llm"]["input_tokens"]  # the dry run's estimate is the bill
    assert summary["reasons"]["image_missing"] == 4 and summary["image_missing"] == 4
    rejected = [json.loads(x) for x in (out / "rejections.jsonl").read_text().splitlines()]
    assert {(r["image_id"], r["reason"]) for r in rejected} == {(6, "image_missing")}


def test_reported_tokens_match_the_rule(small_vg, vg_images, tmp_path, fake_server, caplog):
    with fake_server() as (fake, url), caplog.at_level(logging.WARNING):
        assert _run(small_vg, tmp_path / "a", url, send_image="low", images=vg_images) == 0
    assert not [r for r in caplog.records if "image token estimate" in r.getMessage()]
    with fake_server(image_token_cost=3000) as (fake, url), caplog.at_level(logging.WARNING):
        assert _run(small_vg, tmp_path / "b", url, send_image="low", images=vg_images) == 0
    warnings = [r.getMessage() for r in caplog.records if "image token estimate" in r.getMessage()]
    assert len(warnings) == 1 and "server reported" in warnings[0]


def test_image_tokens_override_reaches_the_plan(small_vg, vg_images, tmp_path, capsys):
    assert (
        _run(
            small_vg,
            tmp_path / "o",
            "http://127.0.0.1:9/v1",
            send_image="high",
            images=vg_images,
            image_tokens=1000,
            dry_run=True,
        )
        == 0
    )
    assert "image tokens (rule estimate, included above): 20000" in capsys.readouterr().out


def test_a_text_only_model_stops_the_run_in_one_sentence(small_vg, vg_images, tmp_path, fake_server):
    with fake_server(text_only=True) as (fake, url):
        with pytest.raises(LLMFatalError, match="does not take images"):
            _run(small_vg, tmp_path / "out", url, send_image="auto", images=vg_images)
    assert {e["status"] for e in fake.log} == {400}
