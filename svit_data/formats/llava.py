"""LLaVA-v1.5 format: ``{"id", "image"?, "conversations": [{"from": "human"|"gpt", "value"}]}``.

Conversion from SVIT follows what BAAI did for SVIT-mix-665K: ``<image>\\n`` before the first user
turn; ``<st>``/``<ed>`` removed; in referring QA one of three grounding instructions appended to each
question, chosen per sample with a seeded RNG (stable whatever the order of samples); boxes moved to
the padded-square frame (needs the image size). Records without ``image`` are text-only and valid.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Features, Image, List, Value

from svit_data.boxes import REF_RE, rewrite_boxes, strip_markers, to_square
from svit_data.errors import BoxError, InputError
from svit_data.formats.jsonstream import iter_json_records
from svit_data.schema import GPT, USER
from svit_data.tasks import REFERRING_QA

IMAGE_TOKEN = "<image>"
HUMAN = "human"
LLAVA_SPEAKERS = {USER: HUMAN, GPT: GPT}
REFERRING_INSTRUCTIONS: tuple[str, ...] = (
    "Provide the bounding boxes of the mentioned objects.",
    "Include the coordinates for each mentioned object.",
    "Locate the objects with their coordinates.",
)
BOX_FRAMES = ("square", "original")

# Schema of configs stored in LLaVA format (mix-665k): the image is a path relative to an image root.
LLAVA_FEATURES = Features(
    {
        "id": Value("string"),
        "image_file": Value("string"),
        "image": Image(),
        "conversations": List({"from": Value("string"), "value": Value("string")}),
        "source": Value("string"),
    }
)


def _instruction_rng(seed: int, sample_id: str) -> random.Random:
    return random.Random(f"{seed}:{sample_id}")


def to_llava_record(
    row: dict[str, Any], *, seed: int = 0, box_frame: str = "square", image_prefix: str = ""
) -> dict[str, Any]:
    """One svit row (``FEATURES`` dict) as a LLaVA-v1.5 record."""
    if box_frame not in BOX_FRAMES:
        raise ValueError(f"unknown box frame {box_frame!r}; known: {', '.join(BOX_FRAMES)}")
    rng = _instruction_rng(seed, row["id"])
    width, height = row.get("width"), row.get("height")
    turns = []
    for t, turn in enumerate(row["conversations"]):
        value = turn["value"]
        if box_frame == "square" and REF_RE.search(value):
            if not width or not height:
                raise InputError(
                    "the image size is unknown, so boxes cannot move to the square frame "
                    "(give image sizes, or export with --box-frame original)",
                    record=row["id"],
                    field="width",
                )
            try:
                value = rewrite_boxes(value, lambda box: to_square(box, width, height))
            except BoxError as error:
                raise InputError(str(error), record=row["id"], field=f"conversations[{t}].value") from None
        value = strip_markers(value)
        if turn["from"] == USER and row["task"] == REFERRING_QA:
            value = f"{value}\n{rng.choice(REFERRING_INSTRUCTIONS)}"
        if t == 0 and turn["from"] == USER:
            value = f"{IMAGE_TOKEN}\n{value}"
        turns.append({"from": LLAVA_SPEAKERS[turn["from"]], "value": value})
    return {"id": row["id"], "image": f"{image_prefix}{row['image_file']}", "conversations": turns}


def check_llava_record(record: Any, *, file: str, index: int) -> None:
    if not isinstance(record, dict):
        raise InputError("a LLaVA record must be a JSON object", file=file, record=index)
    if "id" not in record:
        raise InputError("missing", file=file, record=index, field="id")
    if "image" in record and not isinstance(record["image"], str):
        raise InputError("must be a path string", file=file, record=index, field="image")
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise InputError("must be a non-empty list", file=file, record=index, field="conversations")
    for t, turn in enumerate(conversations):
        if not isinstance(turn, dict) or turn.get("from") not in (HUMAN, GPT):
            speaker = turn.get("from") if isinstance(turn, dict) else turn
            raise InputError(
                f"unknown speaker {speaker!r} (expected 'human' or 'gpt')",
                file=file,
                record=index,
                field=f"conversations[{t}].from",
            )
        if not isinstance(turn.get("value"), str):
            raise InputError("must be a string", file=file, record=index, field=f"conversations[{t}].value")


def iter_llava_json(path: str | Path) -> Iterator[dict[str, Any]]:
    """Checked LLaVA records from a JSON array or JSON Lines file, streamed."""
    for index, record in enumerate(iter_json_records(path)):
        check_llava_record(record, file=str(path), index=index)
        yield record


def llava_row(record: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """A LLaVA record as a row of ``LLAVA_FEATURES``."""
    return {
        "id": str(record["id"]),
        "image_file": record.get("image"),
        "image": None,
        "conversations": [{"from": t["from"], "value": t["value"]} for t in record["conversations"]],
        "source": source,
    }


def row_to_llava(row: dict[str, Any]) -> dict[str, Any]:
    """A row of ``LLAVA_FEATURES`` back to a LLaVA record (text-only rows have no ``image`` key)."""
    record: dict[str, Any] = {"id": row["id"]}
    if row.get("image_file"):
        record["image"] = row["image_file"]
    record["conversations"] = [{"from": t["from"], "value": t["value"]} for t in row["conversations"]]
    return record
