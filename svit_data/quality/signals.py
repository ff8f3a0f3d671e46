"""Complexity signals of a sample, stored as pool columns: answer words, QA pairs, boxes.

Answer words are the whitespace-separated words of the answer turns after removing ``[x1, y1, x2, y2]``
boxes and the ``<st>``/``<ed>`` markers (so coordinates do not make a referring answer look long).
Concepts mentioned depend on the recipe's vocabulary: they are the sample's row count of distinct
concepts in the recipe matrix (``svit_data.recipes.matching``), not a pool column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from svit_data.boxes import BOX_RE, END, START
from svit_data.quality.referring import count_boxes
from svit_data.tasks import GPT, USER

# a box, or several joined by commas: removed whole, so their separators are not words either
BOXES = re.compile(rf"\s*{BOX_RE.pattern}(?:\s*,\s*{BOX_RE.pattern})*")

SIGNALS: dict[str, str] = {
    "answer_words": "words in the answers (whitespace words; boxes and <st>/<ed> markers are not words)",
    "qa_pairs": "user-then-gpt turn pairs in the sample",
    "boxes": "boxes attached to <st>object<ed> markers in the sample's turns",
}


def answer_words(value: str) -> int:
    if "[" in value:
        value = BOXES.sub("", value)
    if START in value or END in value:
        value = value.replace(START, "").replace(END, "")
    return len(value.split())


def sample_signals(speakers: Sequence[str], values: Sequence[str]) -> tuple[int, int, int]:
    """(answer_words, qa_pairs, boxes) of one sample."""
    words = pairs = boxes = 0
    previous = None
    for speaker, value in zip(speakers, values, strict=True):  # one pass: this runs on every sample
        if speaker == GPT:
            words += answer_words(value)
            pairs += previous == USER
        if START in value:
            boxes += count_boxes(value)
        previous = speaker
    return words, pairs, boxes
