"""The SVIT original format: per task, a JSON array of image records.

A record is ``{"image_id": int, "conversations": [{"content": [{"from", "value"}, ...]}, ...]}``.
Records written by svit's builders may also carry ``width``, ``height``, ``image_file`` and
``provenance``; they are kept. :func:`expand_record` turns a record into samples (one per
conversation, or one per QA pair for the per-QA tasks) and :func:`group_samples` puts samples back
into records, so that svit -> internal -> svit is lossless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from svit_data.atomic import atomic_open
from svit_data.boxes import START, parse_refs
from svit_data.errors import BoxError, InputError, SvitError
from svit_data.schema import GPT, SPEAKERS, USER, Sample, default_image_file, parse_sample_id
from svit_data.tasks import PER_QA_TASKS, check_task

EXTRA_KEYS = ("width", "height", "image_file", "provenance")


def check_record(record: Any, *, file: str, index: int) -> None:
    """Raise one :class:`InputError` naming file, record and field if ``record`` is not valid."""
    if not isinstance(record, dict):
        raise InputError(
            f"a record must be a JSON object, got {type(record).__name__}", file=file, record=index
        )
    image_id = record.get("image_id")
    if image_id is None:
        raise InputError("missing", file=file, record=index, field="image_id")
    if isinstance(image_id, bool) or not isinstance(image_id, int):
        raise InputError(f"must be an integer, got {image_id!r}", file=file, record=index, field="image_id")
    conversations = record.get("conversations")
    if conversations is None:
        raise InputError("missing", file=file, record=index, field="conversations")
    if not isinstance(conversations, list):
        raise InputError("must be a list", file=file, record=index, field="conversations")
    for c, conversation in enumerate(conversations):
        content = conversation.get("content") if isinstance(conversation, dict) else None
        if not isinstance(content, list):
            raise InputError(
                "must be a list of turns", file=file, record=index, field=f"conversations[{c}].content"
            )
        for t, turn in enumerate(content):
            where = f"conversations[{c}].content[{t}]"
            if not isinstance(turn, dict):
                raise InputError("a turn must be an object", file=file, record=index, field=where)
            if turn.get("from") not in SPEAKERS:
                raise InputError(
                    f"unknown speaker {turn.get('from')!r} (expected 'user' or 'gpt')",
                    file=file,
                    record=index,
                    field=f"{where}.from",
                )
            value = turn.get("value")
            if not isinstance(value, str):
                raise InputError("must be a string", file=file, record=index, field=f"{where}.value")
            check_text_boxes(value, file=file, index=index, field=f"{where}.value")


def check_text_boxes(value: str, *, file: str, index: int, field: str) -> None:
    """Raise an :class:`InputError` if a ``<st>..<ed>`` box in ``value`` is outside 0-1 or reversed."""
    if START in value:
        try:
            parse_refs(value)
        except BoxError as error:
            raise InputError(str(error), file=file, record=index, field=field) from None


def _qa_pairs(content: list[dict[str, str]], *, file: str, index: int, c: int) -> list[list[dict[str, str]]]:
    if len(content) % 2:
        raise InputError(
            f"has {len(content)} turns; QA pairs need an even number",
            file=file,
            record=index,
            field=f"conversations[{c}].content",
        )
    for t, turn in enumerate(content):
        expected = USER if t % 2 == 0 else GPT
        if turn["from"] != expected:
            raise InputError(
                f"expected speaker {expected!r} (QA pairs alternate user, gpt)",
                file=file,
                record=index,
                field=f"conversations[{c}].content[{t}].from",
            )
    return [content[t : t + 2] for t in range(0, len(content), 2)]


def expand_record(
    record: dict[str, Any], task: str, *, file: str = "<memory>", index: int = 0
) -> list[Sample]:
    """Samples of one image record: per conversation, or per QA pair for the per-QA tasks."""
    check_task(task)
    check_record(record, file=file, index=index)
    extras = {key: record.get(key) for key in EXTRA_KEYS}
    samples: list[Sample] = []
    for c, conversation in enumerate(record["conversations"]):
        content = [{"from": turn["from"], "value": turn["value"]} for turn in conversation["content"]]
        chunks = _qa_pairs(content, file=file, index=index, c=c) if task in PER_QA_TASKS else [content]
        for turns in chunks:
            samples.append(
                Sample(
                    image_id=record["image_id"],
                    task=task,
                    n=len(samples),
                    conversation_index=c,
                    conversations=turns,
                    **extras,
                )
            )
    return samples


def iter_samples(records: Iterable[Any], task: str, *, file: str) -> Iterator[Sample]:
    for index, record in enumerate(records):
        yield from expand_record(record, task, file=file, index=index)


def group_samples(
    rows: Iterable[dict[str, Any]], *, extras: tuple[str, ...] = EXTRA_KEYS
) -> Iterator[dict[str, Any]]:
    """Rows (``FEATURES`` dicts, one task, each image's rows together) back into SVIT records.

    ``extras`` are the non-released keys (of ``EXTRA_KEYS``) a record keeps when they are set.

    Within an image, rows are put back in sample order, so rows sorted by their id strings (where
    ``.../10`` sorts before ``.../2``) regroup correctly too.
    """
    image_rows: list[dict[str, Any]] = []
    for row in rows:
        if image_rows and image_rows[0]["image_id"] != row["image_id"]:
            yield _record_of(image_rows, extras)
            image_rows = []
        image_rows.append(row)
    if image_rows:
        yield _record_of(image_rows, extras)


def _record_of(rows: list[dict[str, Any]], extras: tuple[str, ...]) -> dict[str, Any]:
    rows = sorted(rows, key=lambda row: (row["conversation_index"], parse_sample_id(row["id"])[2]))
    first = rows[0]
    record: dict[str, Any] = {"image_id": first["image_id"], "conversations": []}
    for key in extras:
        value = first.get(key)
        if value is not None and not (key == "image_file" and value == default_image_file(first["image_id"])):
            record[key] = value
    conversations = record["conversations"]
    for row in rows:
        while len(conversations) <= row["conversation_index"]:
            conversations.append({"content": []})
        conversations[row["conversation_index"]]["content"].extend(
            {"from": t["from"], "value": t["value"]} for t in row["conversations"]
        )
    return record


def write_json_array(items: Iterable[Any], path: str | Path) -> int:
    """Write ``items`` as one JSON array, streaming, through a temporary file renamed at the end."""
    path = Path(path)
    count = 0
    try:
        with atomic_open(path) as handle:
            handle.write("[")
            for item in items:
                handle.write(",\n" if count else "\n")
                handle.write(json.dumps(item, ensure_ascii=False))
                count += 1
            handle.write("\n]\n")
    except OSError as error:
        raise SvitError(f"cannot write {path}: {error.strerror}") from None
    return count
