"""Checks on the words of a QA pair: error and refusal replies, empty answers, citing the source text."""

from __future__ import annotations

import re

from svit_data.boxes import END, START
from svit_data.quality.base import Finding
from svit_data.tasks import REFERRING_QA

ERROR_REPLY = re.compile(
    r"it seems (?:like )?(?:your|the) message (?:is|was) empty|i'?m sorry,? but i (?:can(?:no|')t|am unable)"
    r"|as an ai(?: language model)?,? i (?:can(?:no|')t|do not|don'?t)|i (?:can(?:no|')t|am unable to) (?:see|view) "
    r"(?:the |any )?image|please provide (?:the |an? )?(?:image|description|caption)",
    re.IGNORECASE,
)
# words that only make sense when reading the annotations GPT-4 was given, not when looking at the image
_SOURCE = (
    r"\b(?:the|a|given|provided)\s+(?:image\s+)?descriptions?\b|\bthe\s+captions?\b"
    r"|\b(?:object|region)\s+(?:list|descriptions?)\b"
    r"|\b(?:provided|given)\s+(?:information|data|annotations?|text|details)\b"
)
SOURCE_MENTION = re.compile(_SOURCE, re.IGNORECASE)
# box words cite the annotations only in an answer outside referring QA (which talks about boxes by
# design); a question may ask for a box: LLaVA-1.5's grounding data ("Please provide the bounding box
# coordinate of the region this sentence describes") is a task of its own, not a leak
BOX_WORDS = re.compile(r"\bbounding[ -]?box(?:es)?\b|\bcoordinates?\b", re.IGNORECASE)
MARKED = re.compile(rf"{START}.*?{END}", re.DOTALL)
# literal words every match contains: a cheap test that skips the regex on almost every clean pair
ERROR_HINTS = ("message", "sorry", "as an ai", "unable", "cannot", "can't", "please provide")
SOURCE_HINTS = ("descri", "caption", "bounding", "coordinat", "provided", "given", "list")
_HINTS = re.compile("|".join(re.escape(hint) for hint in ERROR_HINTS + SOURCE_HINTS))


def text_checks_may_find(question: str, answer: str) -> bool:
    """False only when no check of :data:`QA_CHECKS <svit_data.quality.samples.QA_CHECKS>` can find
    anything: the answer is not blank and no hint word occurs (the hints are ASCII, so they occur in a
    lowercased slice only if they occur in the whole lowercased pair)."""
    if not answer.strip():
        return True
    return _HINTS.search((question + "\n" + answer).lower()) is not None


def check_error_reply(task: str, question: str, answer: str) -> Finding | None:
    head = answer[:400].lower()
    if not any(hint in head for hint in ERROR_HINTS):
        return None
    match = ERROR_REPLY.search(head)
    return Finding("error_reply", f"answer is an error message: {match.group(0)!r}") if match else None


def check_empty_answer(task: str, question: str, answer: str) -> Finding | None:
    return None if answer.strip() else Finding("empty_answer", "the answer is empty")


def check_source_mention(task: str, question: str, answer: str) -> Finding | None:
    text = (question + "\n" + answer).lower()
    if not any(hint in text for hint in SOURCE_HINTS):
        return None
    match = SOURCE_MENTION.search(_unmarked(text))
    if match is None and task != REFERRING_QA:
        match = BOX_WORDS.search(_unmarked(answer.lower()))
    return Finding("source_mention", f"mentions {match.group(0)!r} as a source") if match else None


def _unmarked(text: str) -> str:
    """``text`` without its ``<st>...<ed>`` spans (a referred phrase is the image's, not a citation)."""
    return MARKED.sub("", text) if START in text else text
