"""torchrun support with torch.distributed only: process group, DDP or FSDP wrapping, reductions.

Run as a single process when torchrun's environment is absent. CUDA-only features (FSDP, bf16) are
refused up front with a clear message instead of failing deep inside torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from svit_data.errors import SvitError
from svit_data.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Env:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    fsdp: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def check_hardware(config: TrainConfig) -> None:
    from svit_data.train.quantize import check_support

    check_support(config, cuda=torch.cuda.is_available())
    if not torch.cuda.is_available():
        if config.fsdp:
            raise SvitError("--fsdp needs CUDA GPUs, and none is available; drop --fsdp to train on CPU")
        if config.precision == "bf16":
            raise SvitError("precision=bf16 needs a CUDA GPU, and none is available; use precision=fp32")


def setup(config: TrainConfig) -> Env:
    check_hardware(config)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if (world > 1 or config.fsdp) and not dist.is_initialized():  # FSDP2 needs a group, even of one
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        log.info("rank %d of %d on %s", rank, world, device)
    return Env(rank, world, local_rank, device, config.fsdp)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, env: Env, param_dtype: torch.dtype | None = None) -> torch.nn.Module:
    """DDP across ranks, or FSDP2 sharding of every decoder/encoder layer plus the root.

    Under FSDP2 the memory plan's forward dtype (`param_dtype`, None for fp32) is the all-gathered
    parameters' dtype; gradients are reduced in fp32 into the planned master weights.
    """
    if env.fsdp:  # fully_shard moves each shard to the GPU, so no rank ever holds the whole model there
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
        for module in model.modules():
            if isinstance(module, torch.nn.ModuleList):
                for layer in module:
                    fully_shard(layer, mp_policy=policy)
        return fully_shard(model, mp_policy=policy)
    model.to(env.device)
    if env.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # text-only micro-batches leave the projector unused
        return DistributedDataParallel(model, find_unused_parameters=True)
    return model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def grad_sync(model: torch.nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """Skip the gradient all-reduce on all but the last micro-batch of a step."""
    if sync:
        return contextlib.nullcontext()
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(False)
        return _restore_sync(model)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _restore_sync(model):
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def all_sum(values: list[float], env: Env) -> list[float]:
    if env.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj: Any, env: Env) -> list:
    if env.world == 1:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def barrier(env: Env) -> None:
    if env.world > 1:
        dist.barrier()
