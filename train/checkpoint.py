"""Resumable checkpoints and the final run folder.

A checkpoint holds only what training changes (trainable weights: projector, LLM or LoRA adapters),
the optimizer, the scheduler, the step and every rank's RNG; the frozen weights are rebuilt from the
run's config. With the step the sampler's position is known (sampler.py), so a resumed run replays
the uninterrupted one. Only rank 0 writes, to a temporary folder that is renamed when complete.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from svit_data.atomic import staged_folder, temp_path
from svit_data.errors import InputError
from svit_data.train.config import TrainConfig, read_checkpoint_state
from svit_data.train.distributed import Env, barrier, gather_objects, unwrap

if TYPE_CHECKING:
    from transformers import ProcessorMixin

log = logging.getLogger(__name__)

FILES = ("trainable.safetensors", "optimizer.pt", "scheduler.pt", "state.json", "rng.pt")


def _full_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def trainable_names(model: torch.nn.Module) -> list[str]:
    return [n for n, p in unwrap(model).named_parameters() if p.requires_grad]


def model_state(model: torch.nn.Module, env: Env, only_trainable: bool) -> dict[str, torch.Tensor]:
    """Full (unsharded) CPU tensors; a collective call under FSDP."""
    if env.fsdp:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(model, options=_full_options())
    else:
        state = {n: t.detach().cpu() for n, t in unwrap(model).state_dict().items()}
    if only_trainable:
        keep = set(trainable_names(model))
        state = {n: t.contiguous().clone() for n, t in state.items() if n in keep}
    return state


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(
    folder: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    config: TrainConfig,
    env: Env,
    skipped: Counter,
) -> None:
    weights = model_state(model, env, only_trainable=True)
    if env.fsdp:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        optim = get_optimizer_state_dict(model, optimizer, options=_full_options())
    else:
        optim = optimizer.state_dict()
    rngs = gather_objects(rng_state(), env)
    if env.is_main:
        with staged_folder(folder, durable=True) as tmp:  # hours of training: survive a machine crash
            save_file(weights, tmp / "trainable.safetensors")
            torch.save(optim, tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            torch.save(rngs, tmp / "rng.pt")
            state = {"step": step, "world": env.world, "skipped": dict(skipped), "config": config.to_dict()}
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
        log.info("checkpoint %s", folder)
    barrier(env)


def load_checkpoint(
    folder: str,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    env: Env,
) -> tuple[int, Counter]:
    """Restore everything `save_checkpoint` wrote; returns (step, skip counts so far)."""
    path = Path(folder)
    missing = [f for f in FILES if not (path / f).exists()]
    if missing:
        raise InputError(f"not a svit-train checkpoint: missing {', '.join(missing)}", file=folder)
    state = read_checkpoint_state(folder, config)
    weights = load_file(path / "trainable.safetensors")
    if set(weights) != set(trainable_names(model)):
        raise InputError(
            "the checkpoint's trained weights do not match this run's trainable weights", file=folder
        )
    optim = torch.load(path / "optimizer.pt", weights_only=False)
    if env.fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(model, weights, options=options)
        set_optimizer_state_dict(model, optimizer, optim, options=options)
    else:
        unwrap(model).load_state_dict(weights, strict=False)
        optimizer.load_state_dict(optim)
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rngs = torch.load(path / "rng.pt", weights_only=False)
    if len(rngs) == env.world:
        set_rng_state(rngs[env.rank])
    else:
        log.warning(
            "checkpoint was written by %d ranks, resuming on %d: RNG streams restart", len(rngs), env.world
        )
    log.info("resumed from %s at step %d", folder, state["step"])
    return int(state["step"]), Counter(state.get("skipped", {}))


def save_run(
    out: Path,
    *,
    model: torch.nn.Module,
    processor: ProcessorMixin,
    config: TrainConfig,
    env: Env,
    summary: dict,
) -> None:
    """The final folder: loadable with from_pretrained (merged), LoRA adapters in adapter/, processor."""
    full = model_state(model, env, only_trainable=False) if env.fsdp else None
    if not env.is_main:
        barrier(env)
        return
    tmp = temp_path(out / "final")  # the run folder holds checkpoints too: items move in one by one
    try:
        inner = unwrap(model)
        if config.lora:
            inner.save_pretrained(tmp / "adapter", state_dict=full)
            if config.save_merged and (config.quantize or env.fsdp):  # NF4 would round; FSDP holds shards
                from svit_data.train.quantize import merged_copy

                dtype = torch.bfloat16 if config.quantize or env.device.type == "cuda" else torch.float32
                merged_copy(config, tmp / "adapter", dtype).save_pretrained(tmp)
            elif config.save_merged:
                inner.merge_and_unload().save_pretrained(tmp)
        else:
            inner.save_pretrained(tmp, state_dict=full)
        processor.save_pretrained(tmp)
        (tmp / "train_config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        (tmp / "train_summary.json").write_text(json.dumps(summary, indent=1))
        for item in tmp.iterdir():
            target = out / item.name
            if target.is_dir():
                shutil.rmtree(target)
            item.replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s", out)
    barrier(env)
