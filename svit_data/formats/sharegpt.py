"""ShareGPT / LLaMA-Factory format: ``conversations`` (or ``messages``) of ``{"from", "value"}`` or
``{"role", "content"}`` turns with string texts, plus an ``images`` list; ``<image>`` marks where each
image goes. LLaMA-Factory's optional ``system`` field is not a turn and is not kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from svit_data.errors import InputError
from svit_data.formats.record import (
    SourceRecord,
    map_speaker,
    with_image_list,
)

TURN_KEYS = ("conversations", "messages")


def turn_key(record: dict[str, Any]) -> str | None:
    return next((key for key in TURN_KEYS if isinstance(record.get(key), list)), None)


def read_sharegpt_records(records: Iterable[Any], *, file: str, start: int = 0) -> Iterator[SourceRecord]:
    for index, record in enumerate(records, start):
        key = turn_key(record) if isinstance(record, dict) else None
        if key is None or not record[key]:
            raise InputError(
                "needs a non-empty 'conversations' or 'messages' list",
                file=file,
                record=index,
                field="conversations",
            )
        speakers, values = [], []
        for t, turn in enumerate(record[key]):
            where = f"{key}[{t}]"
            if not isinstance(turn, dict):
                raise InputError("a turn must be a JSON object", file=file, record=index, field=where)
            speaker, text = (
                (turn.get("from"), turn.get("value"))
                if "from" in turn
                else (turn.get("role"), turn.get("content"))
            )
            if not isinstance(text, str):
                raise InputError("the turn text must be a string", file=file, record=index, field=where)
            speakers.append(map_speaker(speaker, file=file, record=index, field_name=where))
            values.append(text)
        yield with_image_list(record, speakers, values, file=file, index=index)
