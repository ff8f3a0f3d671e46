"""The trainer's one configuration object: defaults from DESIGN.md §8, YAML files and `key=value` overrides.

Every field carries its help text (the CLI builds its flags from it), values are checked in
`__post_init__`, and the resolved config is written next to every run so a run can be repeated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from svit_data.atomic import write_text
from svit_data.errors import ConfigError, InputError, SvitError

STAGES = ("stage1", "stage2")
PRECISIONS = ("auto", "bf16", "fp32", "bf16-pure")
QUANTIZE = ("4bit",)
ATTENTION = ("sdpa", "flash_attention_2", "eager")

# LLaVA-1.5 as SVIT trained it (DESIGN.md §8); keyed by (stage, lora).
STAGE_DEFAULTS: dict[tuple[str, bool], dict[str, Any]] = {
    ("stage1", False): {"lr": 1e-3, "projector_lr": 1e-3, "global_batch": 256},
    ("stage2", False): {"lr": 2e-5, "projector_lr": 2e-5, "global_batch": 128},
    ("stage2", True): {"lr": 2e-4, "projector_lr": 2e-5, "global_batch": 128},
}

# Fields that must agree between a checkpoint and the run that resumes it.
RESUME_KEYS = (
    "stage",
    "vision",
    "llm",
    "llm_gguf_file",
    "init_from",
    "data",
    "split",
    "lora",
    "lora_r",
    "lora_alpha",
    "global_batch",
    "micro_batch",
    "epochs",
    "max_length",
    "seed",
    "group_by_modality_length",
    "precision",
    "quantize",
)


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def check_model_reference(flag: str, value: str) -> None:
    """A model is a local folder or a Hub id: say so now, before the data is read, not deep in transformers."""
    if Path(value).expanduser().is_dir():
        return
    looks_local = value.startswith((".", "/", "~")) or os.sep in value.strip("/").replace("/", "", 1)
    if looks_local or not HUB_ID.fullmatch(value) or ".." in value:
        raise InputError(f"{flag}: no such folder, and not a Hub id of the form OWNER/NAME", file=value)


def _help(text: str, default: Any = None, **kw: Any) -> Any:
    return field(default=default, metadata={"help": text}, **kw)


@dataclass
class TrainConfig:
    """One training stage. `None` in a stage-dependent field means "the stage default" (STAGE_DEFAULTS)."""

    stage: str = _help("stage1 (projector only) or stage2 (projector + LLM, full or LoRA)", "stage1")
    out: str | None = _help("run folder to write (checkpoints, final model, resolved config)")
    data: str | None = _help(
        "svit:<config> (local dataset folder), OWNER/NAME:<config> (Hub), or a LLaVA JSON file"
    )
    data_dir: str = _help("the local dataset folder that svit:<config> reads", "./svit")
    split: str = _help("dataset split to train on", "train")
    include_flagged: bool = _help(
        "also train on samples with a quality flag (skipped and counted by default)", False
    )
    image_root: str | None = _help("folder that image_file / LLaVA image paths are relative to")
    vision: str | None = _help("vision tower: Hub id or local folder (CLIP); builds a fresh LLaVA model")
    llm: str | None = _help("causal LM: Hub id or local folder; builds a fresh LLaVA model")
    llm_gguf_file: str | None = _help("GGUF file name inside --llm, when the LM ships as GGUF")
    init_from: str | None = _help("continue from a stage-1 run folder or a LLaVA checkpoint (CLI: --from)")
    chat_template: str | None = _help("Jinja chat template file; default: the tokenizer's, else Vicuna v1")
    lora: bool = _help("stage 2 only: train LoRA adapters + projector instead of the full LLM", False)
    lora_r: int = _help("LoRA rank", 128)
    lora_alpha: int = _help("LoRA alpha", 256)
    lora_dropout: float = _help("LoRA dropout", 0.05)
    lr: float | None = _help("peak learning rate of the trained LLM / LoRA weights")
    projector_lr: float | None = _help("peak learning rate of the projector")
    global_batch: int | None = _help("samples per optimizer step over all ranks")
    micro_batch: int = _help(
        "samples per forward pass on one device; accumulation fills the global batch", 16
    )
    epochs: float = _help("passes over the data; sets the length of the lr schedule", 1.0)
    max_steps: int | None = _help("stop after this many optimizer steps (smoke runs); schedule unchanged")
    warmup_ratio: float = _help("fraction of the steps spent warming the lr up linearly", 0.03)
    weight_decay: float = _help("AdamW weight decay", 0.0)
    max_grad_norm: float = _help("clip the gradient norm to this (0 disables)", 1.0)
    max_length: int = _help("maximum tokens per sample, image tokens included; longer text is cut", 2048)
    seed: int = _help("seed for the sampler order, dropout and the fresh projector", 0)
    save_every: int = _help("write a resumable checkpoint every N optimizer steps (0: only at the end)", 500)
    log_every: int = _help("log loss, lr and throughput every N steps", 1)
    resume: str | None = _help("checkpoint folder (runs/x/checkpoint-N) to resume from")
    fsdp: bool = _help("shard the model with FSDP (CUDA + torchrun only)", False)
    precision: str = _help(
        "auto/bf16: on CUDA frozen parts in bf16, trained parts fp32 under bf16 autocast; fp32; "
        "bf16-pure: trained parts in bf16 too (least memory); CPU always trains in fp32",
        "auto",
    )
    quantize: str | None = _help("4bit: QLoRA, the LM stored as NF4 by bitsandbytes (CUDA, stage 2 --lora)")
    attn: str = _help("attention kernel: sdpa, flash_attention_2 (needs flash-attn) or eager", "sdpa")
    gradient_checkpointing: bool | None = _help("recompute activations (default: on for CUDA)")
    num_workers: int = _help("DataLoader worker processes per rank", 4)
    group_by_modality_length: bool = _help(
        "batch image and text-only samples apart, similar lengths together", True
    )
    save_merged: bool = _help("LoRA: also write merged weights so the run loads with from_pretrained", True)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.lora and self.stage != "stage2":
            raise ConfigError("--lora is a stage 2 option: stage 1 trains the projector only")
        for key, value in STAGE_DEFAULTS[(self.stage, self.lora)].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.quantize is not None and self.quantize not in QUANTIZE:
            raise ConfigError(f"quantize must be one of {QUANTIZE}, got {self.quantize!r}")
        if self.quantize and not self.lora:
            raise ConfigError(
                "--quantize 4bit trains LoRA adapters over a frozen 4-bit LM: add --lora (stage 2)"
            )
        if self.quantize and self.fsdp:
            raise ConfigError("--quantize 4bit cannot be sharded with --fsdp: use one of them")
        if self.attn not in ATTENTION:
            raise ConfigError(f"attn must be one of {ATTENTION}, got {self.attn!r}")
        has_parts = self.vision is not None or self.llm is not None
        if has_parts and (self.vision is None or self.llm is None):
            raise ConfigError("give both --vision and --llm to build a fresh model")
        if has_parts == (self.init_from is not None):
            raise ConfigError(
                "give either --vision and --llm (fresh model) or --from (a run or LLaVA checkpoint)"
            )
        for flag, value in (("--vision", self.vision), ("--llm", self.llm), ("--from", self.init_from)):
            if value is not None:
                check_model_reference(flag, value)
        for name in ("global_batch", "micro_batch", "max_length", "lora_r"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.epochs <= 0 or (self.max_steps is not None and self.max_steps <= 0):
            raise ConfigError("epochs and max_steps must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        for name in ("lr", "projector_lr", "lora_alpha", "log_every"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("save_every", "num_workers", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved config through a temporary file, so a reader never sees half of it."""
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


ALIASES = {"from": "init_from"}


def field_type(f: dataclasses.Field) -> type:
    """The scalar type of a field, unwrapping `X | None`."""
    hint = typing.get_type_hints(TrainConfig)[f.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def coerce(name: str, value: Any) -> Any:
    """Turn a YAML/CLI value into the field's type, naming the field when it cannot."""
    by_name = {f.name: f for f in fields(TrainConfig)}
    name = ALIASES.get(name, name)
    if name not in by_name:
        raise SvitError(f"unknown config key {name!r}; known keys: {', '.join(sorted(by_name))}")
    if value is None:
        return None
    kind = field_type(by_name[name])
    if isinstance(value, str) and kind is not str:
        value = yaml.safe_load(value)
    try:
        if kind is bool and not isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise SvitError(f"config key {name!r} expects {kind.__name__}, got {value!r}") from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["lr=1e-4", "epochs=2"]` -> typed values."""
    out = {}
    for item in items:
        if "=" not in item:
            raise SvitError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        out[ALIASES.get(key, key)] = coerce(key, value)
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise InputError(f"cannot read config: {e.strerror}", file=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"not valid YAML{where}", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("a config file must be a YAML mapping", file=str(path))
    return {ALIASES.get(k, k): coerce(k, v) for k, v in data.items()}


def resolve(*layers: dict[str, Any]) -> TrainConfig:
    """Merge layers left to right (defaults < YAML < flags < key=value) and validate once."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return TrainConfig(**merged)


def read_checkpoint_state(folder: str, current: TrainConfig | None = None) -> dict[str, Any]:
    """A checkpoint's ``state.json`` (step, world, skip counts, the run's config), one sentence when it is
    missing or unreadable. With ``current``, also refuse a checkpoint of another run: a checkpoint only
    continues the run that wrote it, so name the first field that differs."""
    path = Path(folder) / "state.json"
    if not path.exists():
        raise InputError("not a svit-train checkpoint: missing state.json", file=folder)
    try:
        state = json.loads(path.read_text())
        saved = state["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError("cannot read the run's config from state.json", file=folder) from None
    if not isinstance(saved, dict):
        raise InputError("cannot read the run's config from state.json", file=folder)
    if current is not None:
        _check_resume_compatible(saved, current, folder)
    return state


def _check_resume_compatible(saved: dict[str, Any], current: TrainConfig, folder: str) -> None:
    for key in RESUME_KEYS:
        if saved.get(key) != getattr(current, key):
            raise InputError(
                f"checkpoint was written with {key}={saved.get(key)!r} but this run has "
                f"{key}={getattr(current, key)!r}",
                file=folder,
                field=key,
            )
