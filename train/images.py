"""Image decoding and LLaVA-1.5 pad-to-square preprocessing.

LLaVA-1.5 pads every image to a square with the processor's mean colour before resizing, so the
whole image is seen (no centre crop) and svit's padded-square box frame matches the pixels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from svit_data.errors import InputError

if TYPE_CHECKING:
    from transformers import BaseImageProcessor


def mean_colour(image_processor: BaseImageProcessor) -> tuple[int, int, int]:
    return tuple(int(round(v * 255)) for v in image_processor.image_mean)


def pad_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Centre the image on a square canvas of its long side (the short side shifts by (long-short)//2)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def open_image(
    data: bytes | None,
    image_file: str | None,
    image_root: str | None,
    record: str,
    draft_side: int | None = None,
) -> Image.Image:
    """Embedded bytes first, else image_root/image_file. Raises OSError when the bytes do not decode."""
    if data is None:
        if image_root is None:
            raise InputError(
                f"no embedded image and no --image-root to find {image_file!r} in",
                record=record,
                field="image",
            )
        data = (Path(image_root) / image_file).read_bytes()
    image = Image.open(io.BytesIO(data))
    original_size = image.size
    if draft_side is not None:  # let libjpeg decode at 1/2, 1/4.. scale when the result stays big enough
        long = max(image.size)
        image.draft("RGB", (-(-image.size[0] * draft_side // long), -(-image.size[1] * draft_side // long)))
    image.load()
    rgb = image.convert("RGB")
    rgb.info["original_size"] = original_size  # draft decoding may shrink .size; boxes need the real one
    return rgb


def square_side(image_processor: BaseImageProcessor) -> int | None:
    """The output side when the processor maps a square image to a square (CLIP, SigLIP); else None."""
    size, crop = dict(image_processor.size or {}), dict(getattr(image_processor, "crop_size", None) or {})
    side = size.get("shortest_edge") or (
        size.get("height") if size.get("height") == size.get("width") else None
    )
    if not side or not getattr(image_processor, "do_resize", True):
        return None
    if getattr(image_processor, "do_center_crop", False) and (crop.get("height"), crop.get("width")) != (
        side,
        side,
    ):
        return None
    return int(side)


def preprocess(image: Image.Image, image_processor: BaseImageProcessor) -> torch.Tensor:
    """Pad to square, then resize/rescale/normalise as the vision tower's processor; a (3, H, W) tensor.

    For square-output processors (CLIP, SigLIP) the same steps run directly in PIL + numpy, which is
    several times faster than the generic processor call (test_data_path checks they agree).
    """
    square = pad_to_square(image, mean_colour(image_processor))
    side = square_side(image_processor)
    if side is None:
        return image_processor(images=[square], return_tensors="pt")["pixel_values"][0]
    resample = getattr(image_processor, "resample", None)
    pixels = np.asarray(
        square.resize((side, side), resample=Image.Resampling(int(resample if resample is not None else 2))),
        dtype=np.float32,
    )
    if getattr(image_processor, "do_rescale", True):
        pixels = pixels * np.float32(image_processor.rescale_factor)
    if getattr(image_processor, "do_normalize", True):
        pixels = (pixels - np.asarray(image_processor.image_mean, np.float32)) / np.asarray(
            image_processor.image_std, np.float32
        )
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
