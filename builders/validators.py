"""Checks on a parsed reply. Each check returns a reason (rejected) or None (kept); reasons are counted.

Record checks reject a whole reply: empty or error replies, truncation, a wrong QA count (within a
configurable tolerance), nothing usable left. QA checks drop one pair; they are the checks that ingest
runs on released data (:mod:`svit_data.quality`, same reason codes: error replies, answers citing the
source text, malformed, out-of-range or reversed boxes, boxes in tasks that must not give
coordinates), never repairing, plus what only generation can check: a referring pair without a
reference, and referring boxes that match no source box (IoU below a threshold).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from svit_data.boxes import END, START, Box, iou, parse_refs
from svit_data.builders.llm import ChatResult
from svit_data.builders.parsers import QA, Parsed
from svit_data.builders.serializer import ImageContext
from svit_data.errors import ConfigError
from svit_data.quality import check_qa
from svit_data.quality.text import ERROR_REPLY
from svit_data.tasks import REPLY_DESCRIPTION, task_spec


@dataclass(frozen=True)
class ValidationConfig:
    qa_tolerance: int = field(
        default=2,
        metadata={
            "help": "QA pairs a reply may have fewer or more than the task's quota (per conversation for conversation)"
        },
    )
    min_description_words: int = field(
        default=20, metadata={"help": "a detail description shorter than this many words is rejected"}
    )
    iou_threshold: float = field(
        default=0.5,
        metadata={"help": "a referring box is grounded when its IoU with some source box reaches this"},
    )

    def __post_init__(self) -> None:
        if self.qa_tolerance < 0:
            raise ConfigError(f"qa_tolerance must be >= 0, got {self.qa_tolerance}")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str
    level: str  # "record" or "qa"
    text: str  # the raw reply (record) or the QA pair (qa)


@dataclass
class Verdict:
    conversations: list[list[QA]]  # what survived; empty when the record is rejected
    rejections: list[Rejection]
    boxes: int = 0
    grounded: int = 0

    @property
    def record_rejection(self) -> Rejection | None:
        return next((r for r in self.rejections if r.level == "record"), None)


def check_reply(result: ChatResult) -> tuple[str, str] | None:
    text = result.text.strip()
    if not text:
        return "empty_reply", "the model returned no text"
    match = ERROR_REPLY.search(text[:400])
    if match:
        return "error_reply", f"reply is an error message: {match.group(0)!r}"
    if result.finish_reason == "length":
        return "truncated", "reply cut at max_tokens (finish_reason=length)"
    return None


def check_counts(task: str, parsed: Parsed, config: ValidationConfig) -> tuple[str, str] | None:
    spec = task_spec(task)  # quotas and reply kind
    conversations, per = spec.conversations, spec.qa_per_conversation
    if not parsed.conversations:
        return "unparseable", "no question-answer pairs found" + (
            f" ({'; '.join(parsed.issues)})" if parsed.issues else ""
        )
    if spec.reply == REPLY_DESCRIPTION:
        words = len(parsed.conversations[0][0].answer.split())
        if words < config.min_description_words:
            return "too_short", f"description has {words} words, expected >= {config.min_description_words}"
        return None
    if len(parsed.conversations) != conversations:
        return "wrong_count", f"{len(parsed.conversations)} conversations, expected {conversations}"
    tol = config.qa_tolerance
    for index, pairs in enumerate(parsed.conversations):
        if abs(len(pairs) - per) > tol:
            where = f"conversation {index + 1}: " if conversations > 1 else ""
            return "wrong_count", f"{where}{len(pairs)} QA pairs, expected {per} (tolerance {tol})"
    return None


def grounded_mask(boxes: Sequence[Box], sources: Sequence[Box], threshold: float) -> list[bool]:
    """Per box: does some source box overlap it with IoU >= ``threshold`` (generate and verify)."""
    return [max((iou(box, s) for s in sources), default=0.0) >= threshold for box in boxes]


def check_pair(
    task: str, qa: QA, context: ImageContext, config: ValidationConfig
) -> tuple[str, str, int, int]:
    """(reason, detail, boxes, grounded) of one pair; reason is "" when it passes.

    First the shared quality checks (the first finding is the reason), then, for referring QA, a
    reference must exist and every box must match a source box.
    """
    findings, _, _ = check_qa(task, qa.question, qa.answer, repair=False)
    if findings:
        return findings[0].code, findings[0].detail, 0, 0
    if not task_spec(task).boxes:
        return "", "", 0, 0
    refs = parse_refs(qa.question + "\n" + qa.answer, strict=True)  # valid: the checks above passed
    if not refs:
        return "no_reference", f"no {START}object{END} [box] reference", 0, 0
    boxes = [box for ref in refs for box in ref.boxes]
    grounded = grounded_mask(boxes, context.boxes, config.iou_threshold)
    if not all(grounded):
        bad = [b for b, ok in zip(boxes, grounded, strict=False) if not ok][0]
        return (
            "ungrounded_box",
            f"box {list(bad)} matches no source box (IoU < {config.iou_threshold})",
            len(boxes),
            sum(grounded),
        )
    return "", "", len(boxes), len(boxes)


def validate(
    task: str,
    context: ImageContext,
    result: ChatResult,
    parsed: Parsed,
    config: ValidationConfig = ValidationConfig(),
) -> Verdict:
    """Apply the record checks, then the QA checks; see the module docstring."""
    for failure in (check_reply(result), check_counts(task, parsed, config)):
        if failure:
            return Verdict([], [Rejection(*failure, "record", result.text)])
    verdict = Verdict([], [])
    for pairs in parsed.conversations:
        kept = []
        for qa in pairs:
            reason, detail, boxes, grounded = check_pair(task, qa, context, config)
            verdict.boxes += boxes
            verdict.grounded += grounded
            if reason:
                verdict.rejections.append(
                    Rejection(reason, detail, "qa", f"Q: {qa.question}\nA: {qa.answer}")
                )
            else:
                kept.append(qa)
        if kept:
            verdict.conversations.append(kept)
    if not verdict.conversations:
        verdict.rejections.append(
            Rejection("no_valid_qa", "every QA pair was rejected", "record", result.text)
        )
    return verdict


def count_reasons(rejections: list[Rejection]) -> Counter[str]:
    return Counter(r.reason for r in rejections)
