"""The vision judge of ``svit-recipe verify``: its messages for one QA pair, and the parse of its reply.

Pure functions; the network, the cache and the pool are :mod:`svit_data.builders.verify`'s.

The judge is asked for a strict yes/no and a short reason. Three reply formats, tried in this order
(a server that rejects one falls back to the next for the rest of the run):

- ``json_schema``: ``response_format`` with a strict JSON schema ``{"supported": "yes"|"no", "reason": str}``;
- ``json_object``: ``response_format`` ``{"type": "json_object"}`` with the same keys asked for in the prompt;
- ``text``: no ``response_format``; the first word of the reply is yes or no, the rest is the reason.

:func:`parse_judgment` reads any of them (a JSON reply, else the first word), so a server that ignores
``response_format`` still works. A reply that says neither yes nor no parses to None (counted, re-asked).
Boxes in a QA pair are part of its text; the prompt says in which frame they are written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from svit_data.boxes import BOX_RE
from svit_data.frames import K1000, ORIGINAL, PIXELS, SQUARE
from svit_data.tasks import GPT, NO_TASK_LABEL, USER

FORMATS: tuple[str, ...] = ("json_schema", "json_object", "text")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"supported": {"type": "string", "enum": ["yes", "no"]}, "reason": {"type": "string"}},
    "required": ["supported", "reason"],
    "additionalProperties": False,
}
BOX_FRAMES = {
    ORIGINAL: "fractions (0-1) of the image width and height",
    SQUARE: "fractions (0-1) of the side of the image padded to a square (the short side padded evenly)",
    PIXELS: "pixels",
    K1000: "thousandths (0-1000) of the image width and height",
}
REASK = (
    'Your reply did not start with "yes" or "no". Is the answer supported by the image? Reply again in the '
    "required format."
)
_FIRST_WORD = re.compile(r"^[\s\W]*(yes|no)\b[\s\W]*(.*)$", re.IGNORECASE | re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
YES_NO = {"yes": True, "no": False, "true": True, "false": False}


@dataclass(frozen=True)
class Judgment:
    supported: bool
    reason: str


def _prompt(name: str) -> str:
    return resources.files("svit_data.builders.prompts").joinpath(name).read_text(encoding="utf-8").strip()


def response_format(fmt: str) -> dict[str, Any] | None:
    """The ``response_format`` request parameter of a reply format (None: plain text)."""
    if fmt == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "judgment", "strict": True, "schema": SCHEMA}}
    if fmt == "json_object":
        return {"type": "json_object"}
    if fmt == "text":
        return None
    raise ValueError(f"reply format must be one of {FORMATS}, got {fmt!r}")


def judge_messages(
    task: str, question: str, answer: str, fmt: str, box_frame: str | None = None
) -> list[dict[str, str]]:
    """System and user message for one QA pair (the image joins the user message)."""
    reply = _prompt("verify_reply_text.txt" if fmt == "text" else "verify_reply_json.txt")
    boxes = ""
    if BOX_RE.search(question) or BOX_RE.search(answer):
        unit = BOX_FRAMES.get(box_frame or ORIGINAL, BOX_FRAMES[ORIGINAL])
        boxes = f"Boxes are written [x1, y1, x2, y2] (top-left and bottom-right corners) in {unit}.\n"
    user = _prompt("verify_user.txt").format(
        task=task or NO_TASK_LABEL, boxes=boxes, question=question, answer=answer
    )
    return [
        {"role": "system", "content": _prompt("verify_system.txt").format(reply_format=reply)},
        {"role": "user", "content": user.replace("\n\n\n", "\n\n")},
    ]


def parse_judgment(text: str) -> Judgment | None:
    """The verdict of a reply (JSON or plain text), or None when it says neither yes nor no."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        value = data.get("supported")
        verdict = value if isinstance(value, bool) else YES_NO.get(str(value).strip().lower())
        if verdict is None:
            return None
        return Judgment(verdict, " ".join(str(data.get("reason") or "").split()))
    match = _FIRST_WORD.match(stripped)
    if match is None:
        return None
    return Judgment(match.group(1).lower() == "yes", " ".join(match.group(2).split()))


def qa_pairs(conversations: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(question, answer) for every user turn followed by a gpt turn, in order."""
    return [
        (turn["value"], reply["value"])
        for turn, reply in zip(conversations, conversations[1:], strict=False)
        if turn["from"] == USER and reply["from"] == GPT
    ]
