"""Ask one question about one image with a trained run: the same prompt path as training uses.

The prompt is rendered with the run's chat template and `<image>` is expanded exactly as in
encode.py, and the image goes through the same pad-to-square preprocessing, so what the model sees
at inference matches what it was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image

from svit_data.train.images import open_image, preprocess
from svit_data.train.model import IMAGE_TOKEN, load_pretrained

if TYPE_CHECKING:
    from transformers import ProcessorMixin


def load_run(path: str) -> tuple[torch.nn.Module, ProcessorMixin]:
    """(model, processor) of a run folder (merged, or base + adapters) or any LLaVA checkpoint."""
    model, processor = load_pretrained(path)
    return model.eval(), processor


def prompt_ids(
    model: torch.nn.Module, processor: ProcessorMixin, question: str, with_image: bool
) -> list[int]:
    """The chat-templated prompt with `<image>` expanded to the model's image sequence length."""
    tokenizer = processor.tokenizer
    content = f"{IMAGE_TOKEN}\n{question}" if with_image else question
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    image_id = model.config.image_token_index
    ids: list[int] = []
    for t in tokenizer(prompt, add_special_tokens=False)["input_ids"]:
        ids += [t] * model.config.image_seq_length if t == image_id else [t]
    return ids


@torch.no_grad()
def answer_batch(
    model: torch.nn.Module,
    processor: ProcessorMixin,
    questions: list[str],
    images: list[Image.Image] | None = None,
    *,
    max_new_tokens: int = 128,
) -> list[str]:
    """Greedy answers for a batch, left-padded (every row ends where generation starts)."""
    tokenizer = processor.tokenizer
    prompts = [prompt_ids(model, processor, q, images is not None) for q in questions]
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    inputs = {"input_ids": input_ids, "attention_mask": mask}
    if images is not None:
        pixels = [preprocess(im.convert("RGB"), processor.image_processor) for im in images]
        inputs["pixel_values"] = torch.stack(pixels).to(device, next(model.parameters()).dtype)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    return [t.strip() for t in tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)]


def ask(
    model: torch.nn.Module,
    processor: ProcessorMixin,
    question: str,
    *,
    image: str | Path | Image.Image | None = None,
    max_new_tokens: int = 128,
) -> str:
    if image is not None and not isinstance(image, Image.Image):
        image = open_image(Path(image).read_bytes(), None, None, str(image))
    images = None if image is None else [image]
    return answer_batch(model, processor, [question], images, max_new_tokens=max_new_tokens)[0]
