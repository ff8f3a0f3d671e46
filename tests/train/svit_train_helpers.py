"""Shared helpers for trainer tests (a uniquely named module: tests/train has no __init__.py)."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image

WORDS = (
    "what is in the image a cat dog sits on red blue green table chair man woman holds cup of tea "
    "describe picture detail left right top bottom there are two three objects yes no color street car"
).split()

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


def make_image(seed: int, size: tuple[int, int] = (40, 28)) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    img.paste(tuple(rng.randrange(256) for _ in range(3)), (0, 0, size[0] // 2, size[1] // 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def llava_rows(n: int, *, seed: int = 0, text_only_every: int = 0) -> list[dict]:
    """Rows in the LLaVA-format config schema (id, image_file, image, conversations human/gpt)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text_only = text_only_every and i % text_only_every == text_only_every - 1
        q = sentence(rng, rng.randint(3, 8)) + "?"
        turns = [
            {"from": "human", "value": q if text_only else "<image>\n" + q},
            {"from": "gpt", "value": sentence(rng, rng.randint(4, 12)) + "."},
        ]
        if rng.random() < 0.5:
            turns += [
                {"from": "human", "value": sentence(rng, 4) + "?"},
                {"from": "gpt", "value": sentence(rng, 6) + "."},
            ]
        rows.append(
            {
                "id": f"s{i}",
                "image_file": None if text_only else f"{i}.png",
                "image": None if text_only else {"bytes": make_image(seed * 1000 + i), "path": f"{i}.png"},
                "conversations": turns,
            }
        )
    return rows
