"""Streaming JSON readers with bounded memory: a top-level JSON array, or JSON Lines.

The released SVIT files are JSON arrays of hundreds of MB to GBs. We decode one element at a time
with the C scanner of the standard library (``raw_decode``) over a sliding buffer, so memory stays at
about one buffer plus one record, and the speed is that of ``json.loads``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from svit_data.errors import InputError

CHUNK_CHARS = 1 << 22
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
# A decode error this close to the end of the buffer may just be a value cut by the chunk edge.
_EDGE_CHARS = 16


def _needs_more(error: json.JSONDecodeError, buffer_len: int) -> bool:
    """Whether a decode error may vanish with more input (else the JSON is malformed right here).

    Reading on after a real error would pull the rest of a GB file into memory before reporting it.
    """
    return error.msg.startswith("Unterminated string") or error.pos >= buffer_len - _EDGE_CHARS


def _not_utf8(path: Path, error: UnicodeDecodeError) -> InputError:
    return InputError(f"is not UTF-8 text ({error.reason} at byte {error.start} of a chunk)", file=str(path))


def _skip(buffer: str, pos: int, chars: str) -> int:
    while pos < len(buffer) and buffer[pos] in chars:
        pos += 1
    return pos


def iter_json_array(path: str | Path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[Any]:
    """Yield the elements of a file holding one JSON array, in order, without loading the file."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        buffer, pos, eof = "", 0, False

        def refill() -> None:
            nonlocal buffer, pos, eof
            try:
                more = handle.read(chunk_chars)
            except UnicodeDecodeError as error:
                raise _not_utf8(path, error) from None
            eof = more == ""
            buffer, pos = buffer[pos:] + more, 0

        def next_char() -> str:
            nonlocal pos
            while True:
                pos = _skip(buffer, pos, _WHITESPACE + "\ufeff")
                if pos < len(buffer) or eof:
                    return buffer[pos] if pos < len(buffer) else ""
                refill()

        if next_char() != "[":
            raise InputError("is not a JSON array (it must start with '[')", file=str(path))
        pos += 1
        index = 0
        while True:
            char = next_char()
            if char == "]" and index == 0:
                return
            if char == "":
                raise InputError(
                    "ends before the JSON array is closed (truncated file?)", file=str(path), record=index
                )
            while True:
                try:
                    value, end = _DECODER.raw_decode(buffer, pos)
                except json.JSONDecodeError as error:
                    if eof or not _needs_more(error, len(buffer)):
                        raise InputError(
                            f"malformed JSON ({error.msg})", file=str(path), record=index
                        ) from None
                    refill()
                    continue
                if not eof and end + _EDGE_CHARS >= len(buffer) and not isinstance(value, (dict, list, str)):
                    refill()  # a number near the buffer edge may go on in the next chunk
                    continue
                break
            yield value
            index += 1
            pos = end
            char = next_char()
            if char == "]":
                return
            if char == "":
                raise InputError(
                    "ends before the JSON array is closed (truncated file?)", file=str(path), record=index
                )
            if char != ",":
                raise InputError(
                    f"malformed JSON: expected ',' or ']' after this element, found {char!r}",
                    file=str(path),
                    record=index - 1,
                )
            pos += 1


def iter_json_lines(path: str | Path) -> Iterator[Any]:
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        lines = enumerate(handle)
        while True:
            try:
                line_number, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as error:
                raise _not_utf8(path, error) from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(
                    f"malformed JSON on line {line_number + 1} ({error.msg})",
                    file=str(path),
                    record=line_number,
                ) from None
            yield value


def iter_json_records(path: str | Path) -> Iterator[Any]:
    """Elements of a JSON array file (``.json``) or the lines of a JSON Lines file (``.jsonl``)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return iter_json_lines(path)
    return iter_json_array(path)
