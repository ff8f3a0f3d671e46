"""QLoRA and attention kernels: what must be installed and present, the 4-bit load, the bf16 merge.

Requests that cannot run here are refused before any model is loaded, each with one sentence
(`check_support`); the CLI turns them into exit code 2.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from svit_data.errors import SvitError
from svit_data.train.config import TrainConfig
from svit_data.train.precision import Plan

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig

log = logging.getLogger(__name__)

# Parts of a LLaVA model that stay unquantized: the vision tower is small, the projector and head are trained
# or precision-sensitive.
KEEP_UNQUANTIZED = ["vision_tower", "multi_modal_projector", "lm_head"]


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def check_support(config: TrainConfig, *, cuda: bool) -> None:
    """Refuse, in one sentence, what this machine cannot run."""
    if config.quantize and not cuda:
        raise SvitError(
            "--quantize 4bit needs a CUDA GPU (bitsandbytes NF4 kernels), and none is available; "
            "drop --quantize to train LoRA in fp32 on CPU"
        )
    if config.quantize and not installed("bitsandbytes"):
        raise SvitError("--quantize 4bit needs bitsandbytes: pip install bitsandbytes")
    if config.attn == "flash_attention_2" and not installed("flash_attn"):
        raise SvitError(
            "--attn flash_attention_2 needs the flash-attn package; install it or use --attn sdpa"
        )
    if config.attn == "flash_attention_2" and not cuda:
        raise SvitError("--attn flash_attention_2 runs on CUDA GPUs only; use --attn sdpa on CPU")
    if config.precision == "bf16-pure" and not cuda:
        raise SvitError("precision=bf16-pure needs a CUDA GPU, and none is available; use precision=fp32")


def bnb_config(compute: torch.dtype) -> BitsAndBytesConfig:
    """NF4 with double quantization (QLoRA's recipe); matmuls run in the plan's compute dtype."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
        llm_int8_skip_modules=KEEP_UNQUANTIZED,
    )


def prepare_kbit(model: torch.nn.Module, p: Plan) -> None:
    """peft's k-bit preparation (norms and embeddings to fp32, frozen), then the vision tower back to plan.

    Gradient checkpointing is enabled later by the loop, non-reentrant, so no input-grad hook is needed here.
    """
    from peft import prepare_model_for_kbit_training

    model.is_loaded_in_4bit = True  # the assembled LLaVA shell does not inherit the LM's flag
    prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.model.vision_tower.to(p.vision)


def merged_copy(config: TrainConfig, adapter: Path, dtype: torch.dtype) -> torch.nn.Module:
    """A LoRA run's saved adapters merged into a fresh, unquantized copy of its base, in `dtype`.

    For QLoRA (merging into NF4 weights would round them) and FSDP (the trained model's weights are
    shards), the base is rebuilt from the run's config and the adapters are loaded from disk.
    """
    from peft import PeftModel

    from svit_data.train.loop import build
    from svit_data.train.stages import peft_probe_quietly

    base_config = TrainConfig(**{**config.to_dict(), "quantize": None, "resume": None})
    model, _ = build(base_config, dtype=dtype)
    model.to(dtype)
    with peft_probe_quietly():
        return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
