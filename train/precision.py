"""The memory plan: which dtype each part of the model is kept in, per training mode, device and precision.

The decision is a pure function of (mode, device type, precision) so that the CUDA branch is tested on a
machine without a GPU. The rule (bytes per parameter in the README's memory section):

- CPU, or `precision=fp32`: every part in fp32, no autocast.
- CUDA, `auto`/`bf16`: frozen parts (the vision tower always; the LM in stage 1 and under LoRA) are stored
  in bf16; trained parts (projector, LoRA adapters, the LM in full fine-tuning) keep fp32 master weights,
  and the forward pass runs under bf16 autocast.
- CUDA, `bf16-pure`: every part in bf16, trained parts too (AdamW states follow the parameter dtype), still
  under bf16 autocast: about half the memory of a full fine-tune, at the cost of bf16 rounding in updates.
- `quantize=4bit` (QLoRA): the LM's linear weights are stored as NF4 by bitsandbytes; the plan's `llm`
  dtype is then the compute dtype of the dequantized weights and of the parts bitsandbytes leaves alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from svit_data.train.config import PRECISIONS, TrainConfig

log = logging.getLogger(__name__)

MODES = ("stage1", "full", "lora")


@dataclass(frozen=True)
class Plan:
    vision: torch.dtype
    llm: torch.dtype  # the LM body and head (frozen in stage 1 and LoRA, trained in full)
    projector: torch.dtype
    adapters: torch.dtype  # LoRA weights (unused in other modes)
    autocast: torch.dtype | None  # the dtype of the forward pass, None for plain fp32


def mode_of(stage: str, lora: bool) -> str:
    return "stage1" if stage == "stage1" else "lora" if lora else "full"


def plan(mode: str, device: str, precision: str) -> Plan:
    """Dtypes per part; `device` is a torch device type ("cpu", "cuda")."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    f32, bf16 = torch.float32, torch.bfloat16
    if device != "cuda" or precision == "fp32":
        return Plan(vision=f32, llm=f32, projector=f32, adapters=f32, autocast=None)
    if precision == "bf16-pure":
        return Plan(vision=bf16, llm=bf16, projector=bf16, adapters=bf16, autocast=bf16)
    return Plan(vision=bf16, llm=f32 if mode == "full" else bf16, projector=f32, adapters=f32, autocast=bf16)


def plan_for(config: TrainConfig, device: str) -> Plan:
    return plan(mode_of(config.stage, config.lora), device, config.precision)


def apply_plan(model: torch.nn.Module, p: Plan) -> None:
    """Cast the parts of an assembled (not yet LoRA-wrapped) LLaVA model in place.

    Quantized (integer) weights are left as they are: `.to(dtype)` only touches floating-point tensors.
    """
    inner = model.model
    inner.vision_tower.to(p.vision)
    if not getattr(model, "is_loaded_in_4bit", False):
        inner.language_model.to(p.llm)
        model.lm_head.to(p.llm)
    inner.multi_modal_projector.to(p.projector)


def cast_adapters(model: torch.nn.Module, p: Plan) -> None:
    """After LoRA wrapping: adapter weights (and the projector's trainable copy) in their planned dtype."""
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        dtype = p.projector if "multi_modal_projector" in name else p.adapters
        if "lora_" in name or "multi_modal_projector" in name:
            param.data = param.data.to(dtype)


def dtype_report(model: torch.nn.Module) -> dict[str, str]:
    """Part name -> the set of floating dtypes found in it, for logs and tests."""
    parts = {"vision": ".vision_tower.", "projector": ".multi_modal_projector.", "adapters": ".lora_"}
    found: dict[str, set[str]] = {}
    for name, param in model.named_parameters():
        part = next((k for k, key in parts.items() if key in f".{name}"), "llm")
        if param.dtype.is_floating_point:
            found.setdefault(part, set()).add(str(param.dtype).removeprefix("torch."))
    return {k: ",".join(sorted(v)) for k, v in found.items()}


def oom_advice(config: TrainConfig) -> str:
    """One sentence for an out-of-memory step: which settings to lower first, cheapest change first."""
    advice = [f"lower --micro-batch (now {config.micro_batch}; accumulation keeps the global batch)"]
    if config.max_length > 512:
        advice.append(f"--max-length (now {config.max_length})")
    if not config.gradient_checkpointing:
        advice.append("turn on --gradient-checkpointing")
    if config.stage == "stage2" and not config.lora:
        advice.append("train --lora, or precision=bf16-pure")
    elif config.lora and not config.quantize:
        advice.append("add --quantize 4bit")
    return "out of GPU memory in a training step: " + ", or ".join(advice)
