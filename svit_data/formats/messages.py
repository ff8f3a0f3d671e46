"""TRL / transformers chat format: ``{"messages": [...], "images": [...]}`` with typed content parts.

The image part goes first in the first user message, as the chat templates of LLaVA-style processors
expect; assistant messages hold text only.
"""

from __future__ import annotations

from typing import Any

from svit_data.boxes import strip_markers
from svit_data.schema import GPT, USER

ROLES = {USER: "user", GPT: "assistant"}


def to_messages(row: dict[str, Any], *, keep_markers: bool = True, image: Any = None) -> dict[str, Any]:
    """One svit row as messages; ``image`` defaults to the row's ``image_file`` path."""
    messages = []
    for t, turn in enumerate(row["conversations"]):
        text = turn["value"] if keep_markers else strip_markers(turn["value"])
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if t == 0 and turn["from"] == USER:
            content.insert(0, {"type": "image"})
        messages.append({"role": ROLES[turn["from"]], "content": content})
    return {
        "id": row["id"],
        "messages": messages,
        "images": [image if image is not None else row["image_file"]],
    }


def from_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """The turns of a messages record as svit ``{"from", "value"}`` turns (image parts dropped)."""
    speakers = {role: speaker for speaker, role in ROLES.items()}
    turns = []
    for message in record["messages"]:
        text = "".join(part["text"] for part in message["content"] if part.get("type") == "text")
        turns.append({"from": speakers[message["role"]], "value": text})
    return turns
