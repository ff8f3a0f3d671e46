"""Image decoding and LLaVA-1.5 pad-to-square preprocessing.

LLaVA-1.5 pads every image to a square with the processor's mean colour before resizing, so the
whole image is seen (no centre crop) and svit's padded-square box frame matches the pixels.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from svit_data.errors import InputError


def mean_colour(image_processor) -> tuple[int, int, int]:
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
    data: bytes | None, image_file: str | None, image_root: str | None, record: str
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
    image.load()
    return image.convert("RGB")


def preprocess(image: Image.Image, image_processor):
    """Pad to square, then the vision tower's own resize/normalise; returns a (3, H, W) tensor."""
    square = pad_to_square(image, mean_colour(image_processor))
    return image_processor(images=[square], return_tensors="pt")["pixel_values"][0]
