"""Reason codes, findings and the check protocol shared by ingest and the builders' validators.

A check looks at one QA pair (or one sample) and returns a :class:`Finding` or None; it never drops
anything. Every reason has a code, a one-line description, and whether a flagged sample is excluded
from recipes and training (a repair is recorded but does not exclude).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Reason:
    code: str
    description: str
    excludes: bool = True  # a sample with this flag is left out of recipes and training
    ingest: bool = True  # raised on ingested data (False: only the builders' validators raise it)


_REASONS = [
    Reason(
        "error_reply", 'an answer is a model error or refusal message ("It seems like your message is empty")'
    ),
    Reason("empty_answer", "an answer is empty or whitespace only"),
    Reason(
        "source_mention",
        "a question or answer cites the source material ('the description', 'the captions', 'the given "
        "information'; 'bounding box' in an answer outside referring QA) instead of the image",
    ),
    Reason(
        "malformed_box",
        "referring text that does not parse: unbalanced <st>/<ed>, a bracketed list that is not 4 numbers, "
        "or a box that follows no <st>object<ed>",
    ),
    Reason("box_out_of_range", "a box value lies outside 0-1 (beyond the repair tolerance)"),
    Reason("box_reversed", "a box has x2 < x1 or y2 < y1 (not repaired: --no-repair)"),
    Reason("leaked_coordinates", "a numeric [x1, y1, x2, y2] box in a task that must not give coordinates"),
    Reason(
        "box_repaired",
        "a box was repaired: reversed corners swapped, or values within 0.001 outside 0-1 clipped; the text "
        "holds the repaired box",
        excludes=False,
    ),
    Reason("turn_order", "turns do not alternate user, gpt starting with user, or a speaker is neither"),
    Reason(
        "off_quota",
        "a conversation holds far fewer or more QA pairs than its task's quota (fewer than half, more than double)",
    ),
    Reason("duplicate_qa", "the same normalized question and answer appear earlier for the same image"),
    Reason(
        "near_duplicate",
        "a long answer (>= 25 words) nearly repeats an earlier sample's answer (estimated Jaccard of word "
        "3-grams >= 0.8): templated text",
    ),
    # generation only: the builders see the raw reply and the source annotations
    Reason("empty_reply", "the model returned no text", ingest=False),
    Reason("truncated", "the reply was cut at max_tokens", ingest=False),
    Reason(
        "wrong_count",
        "a reply holds more or fewer conversations or QA pairs than its quota allows",
        ingest=False,
    ),
    Reason("unparseable", "no question-answer pairs could be parsed from the reply", ingest=False),
    Reason("too_short", "a detail description is shorter than the minimum word count", ingest=False),
    Reason("no_reference", "a referring QA pair has no <st>object<ed> [box] reference", ingest=False),
    Reason("ungrounded_box", "a referring box matches no source box (IoU below the threshold)", ingest=False),
    Reason("no_valid_qa", "every QA pair of the reply was rejected", ingest=False),
    # svit-recipe verify: a vision model judged a QA pair against the image (the reason is in its store)
    Reason("unsupported_by_image", "a vision judge found an answer not supported by the image", ingest=False),
]
REASONS: dict[str, Reason] = {reason.code: reason for reason in _REASONS}
EXCLUDING: frozenset[str] = frozenset(code for code, reason in REASONS.items() if reason.excludes)


@dataclass(frozen=True)
class Finding:
    """One problem: its reason code, a readable detail, and the turn it is about (index in the sample)."""

    code: str
    detail: str
    turn: int | None = None
    part: str = "value"  # the turn's key the finding is about ("from" for turn order)

    def __post_init__(self) -> None:
        if self.code not in REASONS:
            raise ValueError(f"unknown reason code {self.code!r}")


@dataclass
class QualityConfig:
    """What the checks may change: repairs on or off (``--no-repair``)."""

    repair: bool = field(
        default=True, metadata={"help": "repair reversed corners and values within 0.001 of 0-1"}
    )

    @property
    def key(self) -> str:
        """Enters the pool fingerprint: a pool ingested with other settings is another pool."""
        return f"repair={int(self.repair)}"


class QACheck(Protocol):
    """A check of one QA pair of a sample of ``task``; returns a finding or None."""

    def __call__(self, task: str, question: str, answer: str) -> Finding | None: ...


def is_excluding(flags: list[str] | tuple[str, ...]) -> bool:
    return any(flag in EXCLUDING for flag in flags)
