"""LLaVA-v1.5 format: ``{"id", "image"?, "conversations": [{"from": "human"|"gpt", "value"}]}``.

Conversion from SVIT follows what BAAI did for SVIT-mix-665K: ``<image>\\n`` before the first user
turn; ``<st>``/``<ed>`` removed; in referring QA one of three grounding instructions appended to each
question, chosen per sample with a seeded RNG (stable whatever the order of samples); boxes moved to
the padded-square frame (needs the image size). Records without ``image`` are text-only and valid.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from svit_data.boxes import REF_RE, rewrite_boxes, strip_markers, to_square
from svit_data.errors import BoxError, InputError
from svit_data.formats.jsonstream import iter_json_records
from svit_data.formats.record import IMAGE_TOKEN, SourceRecord, check_image_tokens, tokens_fit
from svit_data.frames import FRAMES, ORIGINAL, SQUARE, convert_row_texts
from svit_data.tasks import GPT, REFERRING_QA, TASKS, USER

HUMAN = "human"
LLAVA_SPEAKERS = {USER: HUMAN, GPT: GPT}
_SPEAKERS = {HUMAN: USER, GPT: GPT}  # LLaVA's speaker -> svit's
REFERRING_INSTRUCTIONS: tuple[str, ...] = (
    "Provide the bounding boxes of the mentioned objects.",
    "Include the coordinates for each mentioned object.",
    "Locate the objects with their coordinates.",
)
BOX_FRAMES = FRAMES


def llava_features():
    """The ``datasets.Features`` of configs stored in LLaVA format (mix-665k): the image is a path
    relative to an image root. A function, so that reading LLaVA files (ingest's worker processes) does
    not import ``datasets`` (about 2 s per process)."""
    from datasets import Features, Image, List, Value

    return Features(
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
    if row.get("task") not in TASKS:  # a third-party sample: its own texts, boxes moved between frames
        return _source_to_llava(row, box_frame, image_prefix)
    rng = _instruction_rng(seed, row["id"])
    width, height = row.get("width"), row.get("height")
    texts = row["conversations"]
    if box_frame not in (SQUARE, ORIGINAL):
        texts = convert_row_texts(row, box_frame, markers=True)
    turns = []
    for t, turn in enumerate(texts):
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


def _source_to_llava(row: dict[str, Any], box_frame: str, image_prefix: str) -> dict[str, Any]:
    record = source_row_to_llava(row)
    turns = convert_row_texts(row, box_frame, markers=False)
    record["conversations"] = [{"from": LLAVA_SPEAKERS[t["from"]], "value": t["value"]} for t in turns]
    if image_prefix and "image" in record:
        image = record["image"]
        record["image"] = (
            [image_prefix + i for i in image] if isinstance(image, list) else image_prefix + image
        )
    return record


def check_llava_record(record: Any, *, file: str, index: int, image_lists: bool = False) -> None:
    """Raise the located error for a record that is not LLaVA; ``image_lists``: accept multi-image
    records (``image`` a list of paths)."""
    if not isinstance(record, dict):
        raise InputError("a LLaVA record must be a JSON object", file=file, record=index)
    if "id" not in record:
        raise InputError("missing", file=file, record=index, field="id")
    image = record.get("image", "")
    multi = image_lists and isinstance(image, list) and all(isinstance(i, str) for i in image)
    if "image" in record and not isinstance(image, str) and not multi:
        expected = "a path string or a list of them" if image_lists else "a path string"
        raise InputError(f"must be {expected}", file=file, record=index, field="image")
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


def _fast_record(record: Any) -> SourceRecord | None:
    """The :class:`SourceRecord` of a record that is plainly valid (one pass over its turns, the
    ``<image>`` tokens counted in one joined text), or None for :func:`read_llava_records`' checked path,
    which accepts the same records and locates what is wrong with the others."""
    try:
        conversations = record["conversations"]
        froms = [turn["from"] for turn in conversations]
        values = [turn["value"] for turn in conversations]
        if type(record) is not dict or "id" not in record or type(conversations) is not list or not froms:
            return None
        speakers = [_SPEAKERS[speaker] for speaker in froms]
        tokens = "\0".join(values).count(IMAGE_TOKEN)  # a TypeError unless every value is a string
    except (TypeError, KeyError):
        return None
    image = record.get("image")
    if image is None:
        if "image" in record:
            return None
        images = []
    elif type(image) is str:
        images = [image]
    elif type(image) is list and all(type(i) is str for i in image):
        images = list(image)
    else:
        return None
    if not tokens_fit(tokens, len(images)):
        return None
    return SourceRecord(str(record["id"]), speakers, values, images, image_list=type(image) is list)


def read_llava_records(records: Iterable[Any], *, file: str, start: int = 0) -> Iterator[SourceRecord]:
    """LLaVA records (text-only, one image or an image list) as :class:`SourceRecord`, texts verbatim."""
    for index, record in enumerate(records, start):
        fast = _fast_record(record)
        if fast is not None:
            yield fast
            continue
        check_llava_record(record, file=file, index=index, image_lists=True)
        image = record.get("image")
        images = [] if image is None else image if isinstance(image, list) else [image]
        turns = record["conversations"]
        speakers = [_SPEAKERS[turn["from"]] for turn in turns]
        result = SourceRecord(
            str(record["id"]),
            speakers,
            [t["value"] for t in turns],
            list(images),
            image_list=isinstance(image, list),
        )
        check_image_tokens(result, file=file, index=index, field_name="image")
        yield result


def source_row_to_llava(row: dict[str, Any]) -> dict[str, Any]:
    """A pool row read from a third-party source back to the LLaVA record it came from."""
    record: dict[str, Any] = {"id": row.get("source_id") if row.get("source_id") is not None else row["id"]}
    if row.get("images") is not None:
        record["image"] = list(row["images"])
    elif row.get("image_file"):
        record["image"] = row["image_file"]
    record["conversations"] = [
        {"from": LLAVA_SPEAKERS[t["from"]], "value": t["value"]} for t in row["conversations"]
    ]
    return record


def llava_row(record: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """A LLaVA record as a row of ``llava_features()``."""
    return {
        "id": str(record["id"]),
        "image_file": record.get("image"),
        "image": None,
        "conversations": [{"from": t["from"], "value": t["value"]} for t in record["conversations"]],
        "source": source,
    }


def row_to_llava(row: dict[str, Any]) -> dict[str, Any]:
    """A row of ``llava_features()`` back to a LLaVA record (text-only rows have no ``image`` key)."""
    record: dict[str, Any] = {"id": row["id"]}
    if row.get("image_file"):
        record["image"] = row["image_file"]
    record["conversations"] = [{"from": t["from"], "value": t["value"]} for t in row["conversations"]]
    return record
