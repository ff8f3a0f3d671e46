"""Boxes in SVIT text: parsing, formatting, checking, and the two coordinate frames.

SVIT writes a referred object as ``<st>name<ed> [x1, y1, x2, y2], [x1, y1, x2, y2]``: corners
normalized to 0-1 by the image width and height (the *original* frame). LLaVA-v1.5 pads the image to
a square first (the *square* frame); :func:`to_square` converts the way BAAI converted SVIT for
LLaVA-v1.5: to pixels with ``round``, shift the short side by ``(long - short) // 2``, divide by the
long side, round to 3 decimals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from svit_data.errors import BoxError

Box = tuple[float, float, float, float]

START, END = "<st>", "<ed>"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
BOX_RE = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_BOX_LIST = rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]"
REF_RE = re.compile(rf"<st>(?P<name>.*?)<ed>(?P<boxes>(?:\s*{_BOX_LIST}(?:\s*,\s*{_BOX_LIST})*)?)", re.DOTALL)
DECIMALS = 3


@dataclass(frozen=True)
class Ref:
    """One referred object: its name, its boxes, and where it sits in the text."""

    name: str
    boxes: tuple[Box, ...]
    start: int
    end: int


def check_box(box: Sequence[float]) -> Box:
    """Return ``box`` as a tuple if it is a valid original-frame box, else raise :class:`BoxError`."""
    if len(box) != 4:
        raise BoxError(f"a box has 4 values, got {len(box)}: {list(box)}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise BoxError(f"box values must be finite numbers: {list(box)}")
    if not all(0.0 <= v <= 1.0 for v in (x1, y1, x2, y2)):
        raise BoxError(f"box values must lie in 0-1: {list(box)}")
    if x2 < x1 or y2 < y1:
        raise BoxError(f"box corners are reversed (need x1 <= x2 and y1 <= y2): {list(box)}")
    return (x1, y1, x2, y2)


def parse_box(text: str) -> Box:
    match = BOX_RE.fullmatch(text.strip())
    if match is None:
        raise BoxError(f"not a box of the form [x1, y1, x2, y2]: {text!r}")
    return check_box([float(g) for g in match.groups()])


def parse_refs(text: str, *, strict: bool = True) -> list[Ref]:
    """Every ``<st>name<ed> [box], ...`` in ``text``; ``strict`` raises on invalid boxes."""
    refs = []
    for match in REF_RE.finditer(text):
        boxes = []
        for box_match in BOX_RE.finditer(match.group("boxes")):
            values = tuple(float(g) for g in box_match.groups())
            boxes.append(check_box(values) if strict else values)
        refs.append(Ref(match.group("name").strip(), tuple(boxes), match.start(), match.end()))
    return refs


def format_number(value: float) -> str:
    return str(round(float(value), DECIMALS) + 0.0)  # + 0.0 turns -0.0 into 0.0


def format_box(box: Sequence[float]) -> str:
    return "[" + ", ".join(format_number(v) for v in box) + "]"


def format_ref(name: str, boxes: Iterable[Sequence[float]]) -> str:
    boxes_text = ", ".join(format_box(b) for b in boxes)
    return f"{START}{name}{END} {boxes_text}" if boxes_text else f"{START}{name}{END}"


def strip_markers(text: str) -> str:
    return text.replace(START, "").replace(END, "")


def rewrite_boxes(text: str, convert: Callable[[Box], Box]) -> str:
    """Apply ``convert`` to every box that follows a ``<st>..<ed>`` marker, keeping the rest verbatim."""

    def rewrite_ref(match: re.Match[str]) -> str:
        boxes = BOX_RE.sub(
            lambda b: format_box(convert(tuple(float(g) for g in b.groups()))), match.group("boxes")
        )
        return match.group(0)[: match.start("boxes") - match.start()] + boxes

    return REF_RE.sub(rewrite_ref, text)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise BoxError(f"image size must be positive, got {width}x{height}")


def normalize_xywh(x: float, y: float, w: float, h: float, width: int, height: int) -> Box:
    """A VG/COCO pixel box ``[x, y, w, h]`` as original-frame corners, clipped to the image."""
    _check_size(width, height)
    if w < 0 or h < 0:
        raise BoxError(f"box width and height must be >= 0, got w={w}, h={h}")
    corners = (x / width, y / height, (x + w) / width, (y + h) / height)
    return tuple(round(min(max(v, 0.0), 1.0), DECIMALS) for v in corners)  # type: ignore[return-value]


def _square_geometry(width: int, height: int) -> tuple[int, int, int]:
    _check_size(width, height)
    long_side = max(width, height)
    shift = (long_side - min(width, height)) // 2
    return long_side, (shift if width < height else 0), (shift if height < width else 0)


def to_square(box: Sequence[float], width: int, height: int) -> Box:
    """Original-frame box -> padded-square frame (LLaVA-v1.5 pad-to-square), exactly as BAAI did."""
    x1, y1, x2, y2 = check_box(box)
    long_side, dx, dy = _square_geometry(width, height)
    pixels = (
        round(x1 * width) + dx,
        round(y1 * height) + dy,
        round(x2 * width) + dx,
        round(y2 * height) + dy,
    )
    return tuple(round(p / long_side, DECIMALS) for p in pixels)  # type: ignore[return-value]


def from_square(box: Sequence[float], width: int, height: int) -> Box:
    """Padded-square box -> original frame; inverse of :func:`to_square` up to its rounding."""
    x1, y1, x2, y2 = check_box(box)
    long_side, dx, dy = _square_geometry(width, height)
    values = (
        (x1 * long_side - dx) / width,
        (y1 * long_side - dy) / height,
        (x2 * long_side - dx) / width,
        (y2 * long_side - dy) / height,
    )
    return tuple(round(min(max(v, 0.0), 1.0), DECIMALS) for v in values)  # type: ignore[return-value]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two corner boxes (0 when both are empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
