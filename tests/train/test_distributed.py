"""torchrun with 2 CPU processes (gloo, DDP) agrees with 1 process on the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch

from svit_data.train.config import TrainConfig
from svit_data.train.generate import load_run
from svit_data.train.loop import train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def losses(folder) -> list[float]:
    return [json.loads(line)["loss"] for line in (folder / "log.jsonl").read_text().splitlines()]


def test_ddp_two_processes_match_one(tmp_path, tiny_parts, llava_parquet):
    train(
        TrainConfig(
            stage="stage1",
            out=str(tmp_path / "s1"),
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
        str(tmp_path / "s1"),
        "--data",
        llava_parquet,
        "--max-steps",
        "3",
        "global_batch=8",
        "micro_batch=4",
        "num_workers=0",
        "lr=5e-3",
        "save_every=2",
        "seed=3",
    ]
    one = subprocess.run(
        [sys.executable, "-m", "svit_data.train", *args, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            "-m",
            "svit_data.train",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert two.returncode == 0, two.stderr[-3000:]
    # 1 process accumulates 2 micro-batches of 4; 2 processes run 1 micro-batch of 4 each
    assert len(losses(tmp_path / "two")) == 3  # only rank 0 logs
    torch.testing.assert_close(
        torch.tensor(losses(tmp_path / "two")), torch.tensor(losses(tmp_path / "one")), rtol=1e-5, atol=1e-5
    )
    a, _ = load_run(str(tmp_path / "one"))
    b, _ = load_run(str(tmp_path / "two"))
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)
    rngs = torch.load(tmp_path / "two" / "checkpoint-2" / "rng.pt", weights_only=False)
    assert len(rngs) == 2  # every rank's RNG, written once by rank 0
    assert not list((tmp_path / "two").glob("*.tmp*"))
