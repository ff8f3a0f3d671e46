"""TRL / transformers chat format: ``{"messages": [...], "images": [...]}`` with typed content parts.

The image part goes first in the first user message, as the chat templates of LLaVA-style processors
expect; assistant messages hold text only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from svit_data.boxes import strip_markers
from svit_data.errors import InputError
from svit_data.formats.record import (
    IMAGE_TOKEN,
    SourceRecord,
    map_speaker,
    with_image_list,
)
from svit_data.tasks import GPT, USER

ROLES = {USER: "user", GPT: "assistant"}


def to_messages(row: dict[str, Any], *, keep_markers: bool = True, image: Any = None) -> dict[str, Any]:
    """One svit row as messages; ``image`` defaults to the row's ``image_file`` path.

    A third-party row (empty ``task``) keeps its own image placement: each ``<image>`` token becomes an
    image part where it stood (one image without a token goes first, as for SVIT rows); a text-only row
    has no image part and no images."""
    if row.get("task") == "" and image is None:
        return _source_to_messages(row)
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


def _parts(text: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for k, piece in enumerate(text.split(IMAGE_TOKEN)):
        if k:
            parts.append({"type": "image"})
            piece = piece.removeprefix("\n")
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def _source_to_messages(row: dict[str, Any]) -> dict[str, Any]:
    images = (
        list(row["images"])
        if row.get("images") is not None
        else [row["image_file"]]
        if row.get("image_file")
        else []
    )
    turns = row["conversations"]
    tokens = sum(t["value"].count(IMAGE_TOKEN) for t in turns)
    messages = [{"role": ROLES[t["from"]], "content": _parts(t["value"])} for t in turns]
    if images and not tokens and messages:  # one image without a token: before the first message's text
        messages[0]["content"].insert(0, {"type": "image"})
    record: dict[str, Any] = {"id": row.get("source_id") or row["id"], "messages": messages, "images": images}
    return record


def from_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """The turns of a messages record as svit ``{"from", "value"}`` turns (image parts dropped)."""
    speakers = {role: speaker for speaker, role in ROLES.items()}
    turns = []
    for message in record["messages"]:
        text = "".join(part["text"] for part in message["content"] if part.get("type") == "text")
        turns.append({"from": speakers[message["role"]], "value": text})
    return turns


def _message_text(content: Any, *, file: str, index: int, where: str) -> str:
    """A message's content as one text; each image part becomes an ``<image>`` token where it stood."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InputError("must be a string or a list of parts", file=file, record=index, field=where)
    pieces = []
    for p, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            pieces.append(part["text"])
        elif kind == "image":
            pieces.append(IMAGE_TOKEN + "\n")
        else:
            raise InputError(
                "a part must be {type: text, text} or {type: image}",
                file=file,
                record=index,
                field=f"{where}[{p}]",
            )
    text = "".join(pieces)
    return text[:-1] if text.endswith(IMAGE_TOKEN + "\n") else text


def read_messages_records(records: Iterable[Any], *, file: str, start: int = 0) -> Iterator[SourceRecord]:
    """TRL/transformers ``messages`` records (JSON Lines or parquet) as :class:`SourceRecord`."""
    for index, record in enumerate(records, start):
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not messages:
            raise InputError("must be a non-empty list", file=file, record=index, field="messages")
        speakers, values = [], []
        for m, message in enumerate(messages):
            where = f"messages[{m}]"
            if not isinstance(message, dict):
                raise InputError("a message must be a JSON object", file=file, record=index, field=where)
            speaker = map_speaker(message.get("role"), file=file, record=index, field_name=f"{where}.role")
            text = _message_text(message.get("content"), file=file, index=index, where=f"{where}.content")
            speakers.append(speaker)
            values.append(text)
        yield with_image_list(record, speakers, values, file=file, index=index)
