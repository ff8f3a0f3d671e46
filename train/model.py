"""Model assembly: a LLaVA model from a vision tower + any causal LM + a fresh 2-layer GELU projector.

The parts keep their pretrained weights: the LLaVA shell is built on the meta device and the loaded
vision tower, LM body and LM head are moved into it, so nothing is initialised twice (a 7B LM would
otherwise be randomly initialised and then overwritten). Only the projector is new.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import (
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoTokenizer,
    CLIPVisionModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerBase,
    SiglipVisionModel,
)
from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

from svit_data.errors import InputError

log = logging.getLogger(__name__)

IMAGE_TOKEN = "<image>"

# LLaVA-1.5's conversation format ("conv_vicuna_v1"), used when the LM's tokenizer has no chat template.
VICUNA_V1 = (
    "{{ bos_token }}{% if messages[0]['role'] != 'system' %}A chat between a curious human and an artificial "
    "intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's "
    "questions. {% endif %}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }} "
    "{% elif m['role'] == 'user' %}USER: {{ m['content'] }} {% else %}ASSISTANT: {{ m['content'] }}"
    "{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

# vision model_type -> (tower class, LLaVA feature strategy, extra tokens before the patches)
VISION_TOWERS = {
    "clip": (CLIPVisionModel, "default", 1),
    "clip_vision_model": (CLIPVisionModel, "default", 1),
    "siglip": (SiglipVisionModel, "full", 0),
    "siglip_vision_model": (SiglipVisionModel, "full", 0),
}


def _gguf_file(llm: str, gguf_file: str | None) -> str | None:
    """A local folder holding one GGUF file and no config.json is loaded from that file."""
    folder = Path(llm)
    if gguf_file or not folder.is_dir() or (folder / "config.json").exists():
        return gguf_file
    found = sorted(folder.glob("*.gguf"))
    return found[0].name if len(found) == 1 else None


def load_vision_tower(vision: str, dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, str, int]:
    from transformers import AutoConfig

    try:
        model_type = AutoConfig.from_pretrained(vision).model_type
    except OSError as e:
        raise InputError(f"cannot load the vision tower config: {e}", file=vision) from None
    if model_type not in VISION_TOWERS:
        raise InputError(
            f"vision model type {model_type!r} is not supported; use one of {sorted(VISION_TOWERS)}",
            file=vision,
        )
    cls, strategy, extra = VISION_TOWERS[model_type]
    return cls.from_pretrained(vision, dtype=dtype), strategy, extra


def with_image_token(tokenizer: PreTrainedTokenizerBase, chat_template: str | None) -> None:
    """Add <image>, a pad token and a chat template in place (the tokenizer travels with the run)."""
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    if chat_template is not None:
        tokenizer.chat_template = Path(chat_template).read_text()
    elif not tokenizer.chat_template:
        tokenizer.chat_template = VICUNA_V1


def build_fresh(
    vision: str,
    llm: str,
    *,
    gguf_file: str | None = None,
    chat_template: str | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    quantization_config: object | None = None,
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """A stage-1 starting point: pretrained vision tower and LM, new projector, <image> added.

    `dtype` is the load dtype of the pretrained parts (the memory plan casts them after); a
    `quantization_config` loads the LM quantized (QLoRA).
    """
    tower, strategy, extra = load_vision_tower(vision, dtype)
    image_processor = AutoImageProcessor.from_pretrained(vision)
    gguf = _gguf_file(llm, gguf_file)
    kw = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(llm, **kw)
    if quantization_config is not None:
        kw["quantization_config"] = quantization_config
    lm = AutoModelForCausalLM.from_pretrained(llm, dtype=dtype, **kw)
    if (
        hasattr(lm.config, "quantization_config") and quantization_config is None
    ):  # GGUF weights arrive dequantized: the result is plain fp32
        del lm.config.quantization_config
    with_image_token(tokenizer, chat_template)
    torch.manual_seed(seed)  # the new <image> embedding row and the projector are reproducible
    lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)

    vc = tower.config
    patches = (vc.image_size // vc.patch_size) ** 2
    config = LlavaConfig(
        vision_config=vc.to_dict(),
        text_config=lm.config.to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=patches + (extra if strategy == "full" else 0),
        projector_hidden_act="gelu",
        vision_feature_layer=-2,
        vision_feature_select_strategy=strategy,
        tie_word_embeddings=bool(getattr(lm.config, "tie_word_embeddings", False)),
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = tower
    model.model.language_model = lm.base_model
    model.lm_head = lm.get_output_embeddings()
    model.model.multi_modal_projector = LlavaMultiModalProjector(config)
    model.config.text_config = lm.config
    meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if meta:
        raise RuntimeError(f"assembly left tensors on the meta device: {meta[:5]}")
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vc.patch_size,
        vision_feature_select_strategy=strategy,
        chat_template=tokenizer.chat_template,
        num_additional_image_tokens=extra,
    )
    log.info("assembled LLaVA: %s + %s, %d image tokens", vision, llm, config.image_seq_length)
    return model, processor


def load_pretrained(
    path: str, *, dtype: torch.dtype = torch.float32, quantization_config: object | None = None
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """A stage-1 run, a merged stage-2 run or any LLaVA checkpoint (e.g. llava-hf/llava-1.5-7b-hf)."""
    from transformers import AutoProcessor

    folder = Path(path)
    if folder.is_dir() and not (folder / "config.json").exists() and (folder / "adapter").is_dir():
        return load_adapter_run(folder)
    from transformers import AutoConfig

    try:
        model_type = AutoConfig.from_pretrained(path).model_type
        if model_type != "llava":  # from_pretrained would build a default 7B LLaVA around it
            raise InputError(
                f"--from needs a LLaVA model (a svit-train run or a LLaVA checkpoint), this is {model_type!r}; "
                "use --vision and --llm to start from a plain LM",
                file=path,
            )
        kw = {} if quantization_config is None else {"quantization_config": quantization_config}
        model = LlavaForConditionalGeneration.from_pretrained(path, dtype=dtype, **kw)
        processor = AutoProcessor.from_pretrained(path)
    except OSError as e:
        raise InputError(f"cannot load a LLaVA model or processor: {e}", file=path) from None
    if not processor.tokenizer.chat_template:
        processor.tokenizer.chat_template = VICUNA_V1
    return model, processor


def load_adapter_run(folder: Path) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """A LoRA run written without merged weights: its base model plus the adapters, merged in memory."""
    import yaml
    from peft import PeftModel

    from svit_data.train.stages import peft_probe_quietly

    base = (yaml.safe_load((folder / "train_config.yaml").read_text()) or {}).get("init_from")
    if base is None:
        raise InputError(
            "a base+adapter run needs the base run in train_config.yaml init_from", file=str(folder)
        )
    model, processor = load_pretrained(base)
    with peft_probe_quietly():
        model = PeftModel.from_pretrained(model, str(folder / "adapter")).merge_and_unload()
    return model, processor
