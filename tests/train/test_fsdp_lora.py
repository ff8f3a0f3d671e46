"""FSDP2 + LoRA + gradient checkpointing under torchrun with 2 CPU processes (gloo): sharded training
agrees with one process, gradients reach LoRA through checkpointed layers with frozen embeddings, and
the run checkpoints, resumes and merges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_distributed import free_port, losses

from svit_data.train.config import TrainConfig
from svit_data.train.generate import load_run
from svit_data.train.loop import train

WORKER = str(Path(__file__).with_name("fsdp_cpu_worker.py"))


def run(args: list[str], procs: int, timeout: int = 400) -> None:
    launch = [sys.executable]
    if procs > 1:
        launch += [
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(procs),
            "--master-addr",
            "127.0.0.1",
        ]
        launch += ["--master-port", str(free_port())]
    done = subprocess.run(
        [*launch, WORKER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent)),
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_fsdp2_lora_checkpointing_resume_and_merge(tmp_path, tiny_parts, llava_parquet):
    s1 = tmp_path / "s1"
    train(
        TrainConfig(
            stage="stage1",
            out=str(s1),
            data=llava_parquet,
            **tiny_parts,
            global_batch=8,
            micro_batch=8,
            max_steps=1,
            num_workers=0,
        )
    )
    args = [
        "stage2",
        "--from",
        str(s1),
        "--data",
        llava_parquet,
        "--lora",
        "--gradient-checkpointing",
        "lora_r=4",
        "lora_alpha=8",
        "global_batch=8",
        "micro_batch=4",
        "num_workers=0",
        "lr=5e-3",
        "save_every=2",
        "seed=3",
        "lora_dropout=0.0",
    ]
    run([*args, "--max-steps", "3", "--out", str(tmp_path / "one")], procs=1)
    run([*args, "--fsdp", "--max-steps", "3", "--out", str(tmp_path / "fsdp")], procs=2)
    fsdp = tmp_path / "fsdp"
    torch.testing.assert_close(
        torch.tensor(losses(fsdp)), torch.tensor(losses(tmp_path / "one")), rtol=1e-5, atol=1e-5
    )
    # gradients reached LoRA through the checkpointed layers: lora_B starts at zero and moved in every layer
    adapters = load_file(fsdp / "adapter" / "adapter_model.safetensors")
    lora_b = {k: v for k, v in adapters.items() if "lora_B" in k}
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())
    assert json.loads((fsdp / "train_summary.json").read_text())["steps"] == 3

    # resume the sharded run from its step-2 checkpoint: step 3 repeats the uninterrupted run's loss
    resumed = tmp_path / "resumed"
    run(
        [
            "stage2",
            "--resume",
            str(fsdp / "checkpoint-2"),
            "--fsdp",
            "--max-steps",
            "3",
            "--out",
            str(resumed),
        ],
        procs=2,
    )
    torch.testing.assert_close(losses(resumed)[-1], losses(fsdp)[-1], rtol=1e-5, atol=1e-5)

    # merged: the run folder loads with from_pretrained and equals the single-process merge
    a, _ = load_run(str(fsdp))
    b, _ = load_run(str(tmp_path / "one"))
    assert (fsdp / "config.json").exists()
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)
