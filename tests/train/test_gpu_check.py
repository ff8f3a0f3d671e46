"""benchmarks/gpu_check.sh's CPU-possible parts (GPU_CHECK_CPU=1): fixtures, stage 1, stage 2 LoRA, resume
equivalence, generation from the saved run and the benchmark's --tiny mode; the report says what ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_cpu_parts_write_a_report(tmp_path, tiny_parts):
    carry = tmp_path / "carry"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_fixtures.py"), str(carry)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (carry / "clip" / "config.json").exists() and list((carry / "images").iterdir())
    report = tmp_path / "out" / "report.txt"
    report.parent.mkdir()
    env = dict(
        os.environ, GPU_CHECK_CPU="1", SVIT_LLM=tiny_parts["llm"], PYTHON=sys.executable, OMP_NUM_THREADS="1"
    )
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(carry), str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    text = report.read_text()
    log = (report.parent / "gpu_check.log").read_text()
    assert done.returncode == 0, text + log[-3000:]
    status = {line.split()[1]: line.split()[0] for line in text.splitlines() if not line.startswith("#")}
    assert status == {
        "cuda": "PASS",
        "stage1": "PASS",
        "full": "SKIP",
        "lora": "PASS",
        "qlora": "SKIP",
        "resume": "PASS",
        "resume-equivalence": "PASS",
        "ask": "PASS",
        "bench": "PASS",
    }, text
    assert "# total" in text and "0 failed" in text
    bench = json.loads((report.parent / "bench_train_gpu.json").read_text())
    assert bench["shapes"] == "tiny" and bench["results"][0]["tokens_per_s"] > 0
