"""All per-sample checks in one call: turn structure, then each QA pair's text and boxes, then duplicates.

Used by ingest on released or third-party data and, QA pair by QA pair, by the builders' validators,
so that both raise the same reason codes on the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from svit_data.quality.base import Finding, QACheck
from svit_data.quality.referring import check_turn_boxes
from svit_data.quality.text import (
    check_empty_answer,
    check_error_reply,
    check_source_mention,
    text_checks_may_find,
)
from svit_data.tasks import COMPLEX_REASONING, CONVERSATION, DETAIL_DESCRIPTION, GPT, REFERRING_QA, USER

QA_CHECKS: tuple[QACheck, ...] = (check_error_reply, check_empty_answer, check_source_mention)

# QA pairs per conversation in SVIT's generation prompts (complex and referring QA: per image)
QUOTA: dict[str, int] = {CONVERSATION: 5, COMPLEX_REASONING: 15, REFERRING_QA: 10, DETAIL_DESCRIPTION: 1}


@dataclass
class SampleCheck:
    """The outcome for one sample: its flags (codes in order of first finding, no repeats) and turn texts."""

    values: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        return list(dict.fromkeys(f.code for f in self.findings))


def check_qa(
    task: str, question: str, answer: str, *, repair: bool = False
) -> tuple[list[Finding], str, str]:
    """Findings for one QA pair (text checks, then the question's boxes, then the answer's), repaired texts."""
    findings = [f for check in QA_CHECKS if (f := check(task, question, answer)) is not None]
    q_findings, question = check_turn_boxes(task, question, repair=repair)
    a_findings, answer = check_turn_boxes(task, answer, repair=repair)
    return findings + q_findings + a_findings, question, answer


def alternates(speakers: Sequence[str]) -> bool:
    """User, gpt, user, gpt, ...: an even number of turns starting with the user."""
    return len(speakers) % 2 == 0 and all(s == (USER if i % 2 == 0 else GPT) for i, s in enumerate(speakers))


def turn_order_finding(speakers: Sequence[str]) -> Finding:
    """Where the alternation user, gpt, ... first breaks (or the odd last turn)."""
    for t, speaker in enumerate(speakers):
        expected = USER if t % 2 == 0 else GPT
        if speaker != expected:
            return Finding("turn_order", f"turn {t} is from {speaker!r}, expected {expected!r}", t, "from")
    return Finding(
        "turn_order", f"{len(speakers)} turns: the last question has no answer", len(speakers) - 1, "from"
    )


def check_quota(task: str, pairs: int) -> Finding | None:
    """Far from the quota: fewer than half or more than double the task's QA pairs per conversation."""
    quota = QUOTA[task]
    if 2 * pairs < quota or pairs > 2 * quota:
        return Finding("off_quota", f"{pairs} QA pairs in the conversation, quota {quota}")
    return None


def normalize(text: str) -> str:
    """Case and whitespace folded: what makes two questions or answers "the same"."""
    return " ".join(text.lower().split())


def check_sample(
    task: str,
    speakers: Sequence[str],
    values: Sequence[str],
    *,
    repair: bool = True,
    seen: set[tuple[str, str]] | None = None,
    conversation_pairs: int | None = None,
) -> SampleCheck:
    """Check one sample's turns. ``seen`` collects the image's normalized QA pairs (duplicates);
    ``conversation_pairs`` is the QA count of the sample's source conversation (quota), None to skip."""
    result = SampleCheck(list(values))
    in_order = alternates(speakers)
    if not in_order:
        result.findings.append(turn_order_finding(speakers))
    if conversation_pairs is not None and (finding := check_quota(task, conversation_pairs)):
        result.findings.append(finding)
    referring = task == REFERRING_QA
    for t, speaker in enumerate(speakers):
        if speaker != GPT:
            continue
        q = t - 1 if t > 0 and speakers[t - 1] == USER else None
        question = result.values[q] if q is not None else ""
        answer = result.values[t]
        findings = (
            [(f, t) for check in QA_CHECKS if (f := check(task, question, answer)) is not None]
            if text_checks_may_find(question, answer)
            else []
        )
        # check_turn_boxes finds nothing and changes nothing outside referring QA without a "["
        if q is not None and (referring or "[" in question):
            q_findings, result.values[q] = check_turn_boxes(task, question, repair=repair)
            findings += [(f, q) for f in q_findings]
        if referring or "[" in answer:
            a_findings, result.values[t] = check_turn_boxes(task, answer, repair=repair)
            findings += [(f, t) for f in a_findings]
        result.findings += [Finding(f.code, f.detail, turn) for f, turn in findings]
        question, answer = (result.values[q] if q is not None else ""), result.values[t]
        if seen is not None and q is not None:
            key = (normalize(question), normalize(answer))
            if key in seen:
                result.findings.append(
                    Finding("duplicate_qa", "the same QA pair appears earlier for this image", t)
                )
            seen.add(key)
    if not in_order:  # turns outside a user/gpt pair still get their boxes checked
        paired = {t for t, s in enumerate(speakers) if s == GPT} | {
            t - 1 for t, s in enumerate(speakers) if s == GPT and t > 0 and speakers[t - 1] == USER
        }
        for t in range(len(speakers)):
            if t not in paired:
                findings, result.values[t] = check_turn_boxes(task, result.values[t], repair=repair)
                result.findings += [Finding(f.code, f.detail, t) for f in findings]
    return result
