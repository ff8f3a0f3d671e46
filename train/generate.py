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


@torch.no_grad()
def ask(
    model: torch.nn.Module,
    processor: ProcessorMixin,
    question: str,
    *,
    image: str | Path | Image.Image | None = None,
    max_new_tokens: int = 128,
) -> str:
    tokenizer = processor.tokenizer
    content = f"{IMAGE_TOKEN}\n{question}" if image is not None else question
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    image_id = model.config.image_token_index
    ids: list[int] = []
    for t in tokenizer(prompt, add_special_tokens=False)["input_ids"]:
        ids += [t] * model.config.image_seq_length if t == image_id else [t]
    device = next(model.parameters()).device
    inputs = {"input_ids": torch.tensor([ids], device=device)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if image is not None:
        if not isinstance(image, Image.Image):
            image = open_image(Path(image).read_bytes(), None, None, str(image))
        inputs["pixel_values"] = preprocess(image.convert("RGB"), processor.image_processor)[None].to(device)
    out = model.generate(
        **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True).strip()
