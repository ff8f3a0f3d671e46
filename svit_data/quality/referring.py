"""Checks (and safe repairs) of ``<st>object<ed> [x1, y1, x2, y2]`` text.

Repairs, only where the intent is unambiguous and only when ``repair`` is on: reversed corners are
swapped (``[0.6, 0.1, 0.2, 0.4]`` -> ``[0.2, 0.1, 0.6, 0.4]``), and values at most
:data:`CLIP_TOLERANCE` outside 0-1 are clipped (``1.0004`` -> ``1.0``). Only the repaired box is
rewritten; the rest of the text stays byte for byte. A repair is reported as ``box_repaired``.
"""

from __future__ import annotations

import math
import re

from svit_data.boxes import BOX_RE, END, REF_RE, START, format_box
from svit_data.quality.base import Finding
from svit_data.tasks import REFERRING_QA

CLIP_TOLERANCE = 0.001
NUMBER_LIST = re.compile(r"\[\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:\s*,\s*[-+]?(?:\d+\.?\d*|\.\d+))*\s*\]")


def _repair_box(values: tuple[float, ...], repair: bool) -> tuple[tuple[float, ...] | None, Finding | None]:
    """(repaired box or None when unchanged, finding or None)."""
    shown = list(values)
    if not all(math.isfinite(v) for v in values):
        return None, Finding("box_out_of_range", f"box values must be finite: {shown}")
    if any(v < -CLIP_TOLERANCE or v > 1.0 + CLIP_TOLERANCE for v in values):
        return None, Finding("box_out_of_range", f"box values must lie in 0-1: {shown}")
    x1, y1, x2, y2 = values
    clipped = any(v < 0.0 or v > 1.0 for v in values)
    reversed_ = x2 < x1 or y2 < y1
    if not (clipped or reversed_):
        return None, None
    if not repair:
        if reversed_:
            return None, Finding("box_reversed", f"box corners are reversed: {shown}")
        return None, Finding("box_out_of_range", f"box values must lie in 0-1: {shown}")
    x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in values)
    box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    what = "swapped reversed corners" if reversed_ else "clipped to 0-1"
    return box, Finding("box_repaired", f"{what}: {shown} -> {list(box)}")


def check_turn_boxes(task: str, text: str, *, repair: bool = True) -> tuple[list[Finding], str]:
    """Findings about the boxes in one turn, and the turn's text (repaired when a repair was made)."""
    if task != REFERRING_QA:
        match = BOX_RE.search(text) if "[" in text else None
        return (
            [Finding("leaked_coordinates", f"numeric box {match.group(0)} in a task without boxes")]
            if match
            else []
        ), text
    if START not in text and END not in text and "[" not in text:
        return [], text
    if text.count(START) != text.count(END):
        return [Finding("malformed_box", f"{text.count(START)} {START} but {text.count(END)} {END}")], text
    wrong = [m.group(0) for m in NUMBER_LIST.finditer(text) if m.group(0).count(",") != 3]
    if wrong:
        return [Finding("malformed_box", f"a box needs 4 values: {wrong[0]}")], text
    attached = []
    for ref in REF_RE.finditer(text):
        offset = ref.start("boxes")
        attached += [(offset + b.start(), offset + b.end(), b) for b in BOX_RE.finditer(ref.group("boxes"))]
    if len(attached) != len(BOX_RE.findall(text)):
        return [Finding("malformed_box", "a box that follows no <st>object<ed> marker")], text
    findings, pieces, last = [], [], 0
    for start, end, match in attached:
        box, finding = _repair_box(tuple(float(g) for g in match.groups()), repair)
        if finding:
            findings.append(finding)
        if box is not None:
            pieces += [text[last:start], format_box(box)]
            last = end
    return findings, ("".join(pieces) + text[last:]) if pieces else text


def count_boxes(text: str) -> int:
    """Boxes attached to ``<st>..<ed>`` markers in ``text`` (a complexity signal)."""
    return (
        sum(len(BOX_RE.findall(ref.group("boxes"))) for ref in REF_RE.finditer(text)) if START in text else 0
    )
