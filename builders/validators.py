"""Checks on a parsed reply. Each check returns a reason (rejected) or None (kept); reasons are counted.

Record checks reject a whole reply: empty or error replies, truncation, a wrong QA count (within a
configurable tolerance), nothing usable left. QA checks drop one pair: answers citing the source text
("the description", "bounding box", ...), malformed boxes or markers, boxes in tasks that must not
give coordinates, and referring boxes that match no source box (IoU below a threshold).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from svit_data.boxes import BOX_RE, END, START, iou, parse_refs
from svit_data.builders.llm import ChatResult
from svit_data.builders.parsers import QA, Parsed
from svit_data.builders.serializer import ImageContext
from svit_data.errors import BoxError, ConfigError
from svit_data.tasks import REPLY_DESCRIPTION, task_spec

ERROR_REPLY = re.compile(
    r"it seems (?:like )?(?:your|the) message (?:is|was) empty|i'?m sorry,? but i (?:can(?:no|')t|am unable)"
    r"|as an ai(?: language model)?,? i (?:can(?:no|')t|do not|don'?t)|i (?:can(?:no|')t|am unable to) (?:see|view) "
    r"(?:the |any )?image|please provide (?:the |an? )?(?:image|description|caption)",
    re.IGNORECASE,
)
SOURCE_MENTION = re.compile(
    r"\b(?:the|a|given|provided)\s+(?:image\s+)?descriptions?\b|\bbounding[ -]?box(?:es)?\b|\bcoordinates?\b"
    r"|\bthe\s+captions?\b|\b(?:object|region)\s+(?:list|descriptions?)\b"
    r"|\b(?:provided|given)\s+(?:information|data|annotations?|text|details)\b",
    re.IGNORECASE,
)


NUMBER_LIST = re.compile(r"\[\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:\s*,\s*[-+]?(?:\d+\.?\d*|\.\d+))*\s*\]")


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


def check_source_mention(qa: QA) -> str | None:
    text = qa.question + "\n" + qa.answer
    match = SOURCE_MENTION.search(re.sub(rf"{START}.*?{END}", "", text))
    return f"mentions {match.group(0)!r} as a source" if match else None


def check_boxes(
    task: str, qa: QA, context: ImageContext, config: ValidationConfig
) -> tuple[str, str, int, int]:
    """(reason, detail, boxes, grounded); reason is "" when the pair passes."""
    text = qa.question + "\n" + qa.answer
    if not task_spec(task).boxes:
        return (
            ("leaked_coordinates", "numeric box in a task without boxes", 0, 0)
            if BOX_RE.search(text)
            else ("", "", 0, 0)
        )
    if text.count(START) != text.count(END):
        return "malformed_box", f"{text.count(START)} {START} but {text.count(END)} {END}", 0, 0
    wrong = [m.group(0) for m in NUMBER_LIST.finditer(text) if m.group(0).count(",") != 3]
    if wrong:
        return "malformed_box", f"a box needs 4 values: {wrong[0]}", 0, 0
    try:
        refs = parse_refs(text, strict=True)
    except BoxError as exc:
        return "malformed_box", str(exc), 0, 0
    if not refs:
        return "no_reference", f"no {START}object{END} [box] reference", 0, 0
    attached = sum(len(r.boxes) for r in refs)
    if len(BOX_RE.findall(text)) != attached:
        return "malformed_box", "a box that follows no <st>object<ed> marker", 0, 0
    boxes = [box for ref in refs for box in ref.boxes]
    grounded = [
        max((iou(box, s) for s in context.boxes), default=0.0) >= config.iou_threshold for box in boxes
    ]
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
            detail = check_source_mention(qa)
            reason = "source_mention" if detail else ""
            if not detail:
                reason, detail, boxes, grounded = check_boxes(task, qa, context, config)
                verdict.boxes += boxes
                verdict.grounded += grounded
            if reason and detail:
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
