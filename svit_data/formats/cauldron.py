"""the_cauldron (HuggingFaceM4): parquet rows of ``images`` and ``texts: [{user, assistant, source}]``.

Each row is one sample: its QA pairs become alternating turns. The texts hold no ``<image>`` token;
the images (embedded bytes) belong to the first question. A row's ``source`` names the original
dataset of the pair; it is not kept (the pool's ``source`` column names the svit source).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from svit_data.errors import InputError
from svit_data.formats.record import SourceRecord, image_entry
from svit_data.tasks import GPT, USER


def read_cauldron_records(records: Iterable[Any], *, file: str, start: int = 0) -> Iterator[SourceRecord]:
    for index, record in enumerate(records, start):
        texts = record.get("texts") if isinstance(record, dict) else None
        if not isinstance(texts, list) or not texts:
            raise InputError(
                "must be a non-empty list of {user, assistant}", file=file, record=index, field="texts"
            )
        values = []
        for t, pair in enumerate(texts):
            if not isinstance(pair, dict) or not all(
                isinstance(pair.get(k), str) for k in ("user", "assistant")
            ):
                raise InputError(
                    "needs string 'user' and 'assistant'", file=file, record=index, field=f"texts[{t}]"
                )
            values += [pair["user"], pair["assistant"]]
        images = record.get("images") or []
        if not isinstance(images, list):
            raise InputError("must be a list", file=file, record=index, field="images")
        entries = [
            image_entry(v, file=file, record=index, field_name=f"images[{i}]") for i, v in enumerate(images)
        ]
        yield SourceRecord(
            None,
            [USER, GPT] * len(texts),
            values,
            [path or f"{index}-{i}.png" for i, (path, _) in enumerate(entries)],
            [data for _, data in entries],
            image_list=True,
        )
