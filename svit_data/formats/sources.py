"""Third-party source formats: the registry, reading files of any of them, and detection from the records.

Each format has a reader (records -> :class:`SourceRecord`) and a default box frame: the frame its
best-known data uses, which ``--box-frame`` overrides per source.

| format | records | default box frame |
|---|---|---|
| ``llava`` | ``{id, image?, conversations: [{from: human/gpt, value}]}`` (``image`` a path or a list) | ``square`` (LLaVA-1.5 pads to a square) |
| ``sharegpt`` | ``conversations``/``messages`` of ``from/value`` or ``role/content``, plus ``images`` | ``square`` |
| ``messages`` | TRL ``messages`` with content parts ``{type: text/image}``, plus ``images`` | ``square`` |
| ``cauldron`` | ``images`` + ``texts: [{user, assistant, source}]`` (parquet) | ``original`` |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svit_data.errors import InputError
from svit_data.formats.cauldron import read_cauldron_records
from svit_data.formats.jsonstream import FileRange, iter_json_records
from svit_data.formats.llava import read_llava_records
from svit_data.formats.messages import read_messages_records
from svit_data.formats.record import SourceRecord
from svit_data.formats.sharegpt import read_sharegpt_records

SOURCE_SUFFIXES = (".json", ".jsonl", ".parquet")
PARQUET_BATCH_ROWS = 1_024


@dataclass(frozen=True)
class SourceFormat:
    name: str
    read: Callable[..., Iterator[SourceRecord]]
    box_frame: str


SOURCE_FORMATS: dict[str, SourceFormat] = {
    "llava": SourceFormat("llava", read_llava_records, "square"),
    "sharegpt": SourceFormat("sharegpt", read_sharegpt_records, "square"),
    "messages": SourceFormat("messages", read_messages_records, "square"),
    "cauldron": SourceFormat("cauldron", read_cauldron_records, "original"),
}


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def format_of(record: Any) -> str | None:
    """The format a record is written in, or None when it is none of the known ones."""
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("texts"), list):
        return "cauldron"
    messages = record.get("messages")
    if _is_message_list(messages):
        parts = any(isinstance(m.get("content"), list) for m in messages if isinstance(m, dict))
        return "messages" if parts or "images" not in record else "sharegpt"
    conversations = record.get("conversations")
    if isinstance(conversations, list) and conversations and isinstance(conversations[0], dict):
        if "images" in record or "role" in conversations[0]:
            return "sharegpt"
        if "from" in conversations[0]:
            return "llava"
    return None


def source_files(path: Path) -> list[Path]:
    """The data files of a source: the file itself, or every .json/.jsonl/.parquet file below a folder."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES)
        if files:
            return files
        raise InputError(
            f"holds neither SVIT task files (conversation.json, ...) nor {', '.join(SOURCE_SUFFIXES)} files "
            "of another format",
            file=str(path),
        )
    raise InputError(
        "does not exist (a source is 'sample', a folder of SVIT task files, hf://datasets/OWNER/NAME, or a "
        "LLaVA, ShareGPT, messages or the_cauldron file or folder)",
        file=str(path),
    )


def iter_file_records(path: Path, part: FileRange | None = None) -> Iterator[Any]:
    """The records of one file: a JSON array, JSON Lines, or the rows of a parquet file, streamed (with
    ``part``, those of one range of a JSON or JSON Lines file)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            yield from batch.to_pylist()
        return
    yield from iter_json_records(path, part)


def detect_format(path: Path) -> str:
    """The format of a file, from its first record; one located sentence when it is none of them."""
    for record in iter_file_records(path):
        found = format_of(record)
        if found is None:
            keys = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
            raise InputError(
                f"is no known source format (keys: {keys}); expected llava (id, image, conversations "
                "from/value), sharegpt (conversations + images), messages (messages + images) or "
                "cauldron (images + texts); --format forces one",
                file=str(path),
                record=0,
            )
        return found
    raise InputError("holds no records", file=str(path))


def read_source(
    path: Path, fmt: str, part: FileRange | None = None
) -> Iterator[tuple[Path, int, SourceRecord]]:
    """``(file, record index, record)`` of every file of a source read as ``fmt``; with ``part``, of one
    range of the source's one file (record indices still count from the start of the file)."""
    reader = SOURCE_FORMATS[fmt].read
    if part is not None:
        for index, record in enumerate(
            reader(iter_file_records(path, part), file=str(path), start=part.record), part.record
        ):
            yield path, index, record
        return
    for file in source_files(path):
        for index, record in enumerate(reader(iter_file_records(file), file=str(file))):
            yield file, index, record


def check_format(fmt: str) -> str:
    if fmt not in SOURCE_FORMATS:
        raise InputError(f"unknown source format {fmt!r}; known: {', '.join(SOURCE_FORMATS)}")
    return fmt
