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


def load_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_train_gpu", ROOT / "benchmarks" / "bench_train_gpu.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_flop_formula_at_7b_shapes():
    bench = load_bench()
    config = bench.llava_config(tiny=False)
    # Llama-2-7B: 32 x (4 x 4096^2 attention + 3 x 4096 x 11008 MLP) + 4096 x 32000 head = 6.607e9 matmul params
    n_lm = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 4096 * 32000
    assert n_lm == 6_607_077_376
    s = 1024
    full, lora = (bench.model_flops_per_sample(config, mode, s) for mode in ("full", "lora"))
    assert full - lora == 2 * n_lm * s  # LoRA skips the frozen weights' gradient
    vision = 2 * 24 * (4 * 1024**2 + 2 * 1024 * 4096) * 577 + 4 * 24 * 1024 * 577**2
    projector = 6 * (1024 * 4096 + 4096 * 4096) * 576
    assert full == 6 * n_lm * s + 12 * 32 * 4096 * s * s + vision + projector
    assert config.image_seq_length == 576
