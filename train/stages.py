"""What each stage trains. Stage 1: the projector. Stage 2: projector + LLM, or projector + LoRA adapters.

The vision tower is frozen in both stages, as in LLaVA-1.5. Learning rates are split into two
parameter groups so LoRA's projector can learn at its own (lower) rate.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import torch

from svit_data.train.config import TrainConfig
from svit_data.train.precision import apply_plan, cast_adapters, dtype_report, plan_for

log = logging.getLogger(__name__)

PROJECTOR = "multi_modal_projector"


def language_linears(model: torch.nn.Module) -> list[str]:
    """Names of every Linear inside the LM body: LoRA targets that work for any decoder architecture."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".language_model." in f".{name}."
    ]


@contextlib.contextmanager
def peft_probe_quietly() -> Iterator[None]:
    """peft reads the model's ``is_gradient_checkpointing`` when it wraps it, and transformers 5 warns
    (FutureWarning: renamed ``is_activation_checkpointing``) on every read. The read is peft's, not ours:
    ignore exactly that warning while peft wraps or loads adapters; tests fail if it shows again."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def prepare(model: torch.nn.Module, config: TrainConfig, device: str = "cpu") -> torch.nn.Module:
    """Apply the memory plan, freeze and, for LoRA, wrap the model; returns the module the loop trains.

    `device` is the torch device type the run trains on: it decides the dtypes (precision.plan).
    """
    p = plan_for(config, device)
    if config.quantize:
        from svit_data.train.quantize import prepare_kbit

        prepare_kbit(model, p)
    apply_plan(model, p)
    model.set_attn_implementation(config.attn)
    model.requires_grad_(False)
    model.model.multi_modal_projector.requires_grad_(True)
    if config.stage == "stage2" and not config.lora:
        model.model.language_model.requires_grad_(True)
        model.lm_head.requires_grad_(True)
    elif config.stage == "stage2":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=language_linears(model),
            modules_to_save=[PROJECTOR],
        )
        with peft_probe_quietly():
            model = get_peft_model(model, lora)
    cast_adapters(model, p)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        "%s%s: training %d of %d parameters", config.stage, " (LoRA)" if config.lora else "", trainable, total
    )
    log.info("dtypes per part: %s", dtype_report(model))
    return model


def enable_checkpointing(model: torch.nn.Module) -> None:
    """Recompute activations in backward, non-reentrant: that variant gives gradients to LoRA weights even
    when the frozen embeddings output tensors that do not require grad, where the reentrant one silently
    gives them none (the input-requires-grad trap; tests/train/test_memory_plan.py shows both)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def param_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict]:
    projector, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (projector if PROJECTOR in name else rest).append(param)
    groups = [{"params": projector, "lr": config.projector_lr, "name": "projector"}]
    if rest:
        groups.append({"params": rest, "lr": config.lr, "name": "llm"})
    return groups
