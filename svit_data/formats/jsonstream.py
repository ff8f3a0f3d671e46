"""Streaming JSON readers with bounded memory: a top-level JSON array, the arrays under named keys of a
top-level JSON object (COCO's ``{"images": [...], "annotations": [...]}``), or JSON Lines.

The released SVIT files and the VG/COCO sources are single JSON documents of hundreds of MB to GBs. We
decode one element at a time with the C scanner of the standard library (``raw_decode``) over a sliding
buffer, so memory stays at about one buffer plus one record, and the speed is that of ``json.loads``.
One loop (:func:`_scan`) serves every reader; on request it also gives each element's byte span, so a
caller can index a file in one pass and later read one element with a single seek (:func:`read_span`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from svit_data.errors import InputError

# 1M characters: a 4M buffer is up to 16 MB once one non-Latin-1 character widens the whole str, and decoding
# from it measured ~25% slower (CPU-cache misses); below 1M nothing more is gained.
CHUNK_CHARS = 1 << 20
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
_BOM = "\ufeff"  # accepted once, before the document: editors on Windows write it
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


def _scan(path: Path, chunk_chars: int, keys: frozenset[str] | None, spans: bool) -> Iterator[Any]:
    """The one decoding loop behind the public readers.

    ``keys=None``: the file is an array; yield its elements, or ``(element, byte_offset, byte_length)``
    with ``spans``. Else the file is an object; yield ``(key, element)`` for the arrays under ``keys``
    and skip every other member, arrays element by element so that memory stays bounded there too.
    """
    # newline="": characters map one to one onto the file's text, which the byte spans rely on
    with open(path, encoding="utf-8", newline="") as handle:
        buffer, pos, eof = "", 0, False
        base = 0  # character offset in the file of buffer[0]
        # spans: the byte offset of character ``char_mark``; between it and the next element there are
        # only whitespace, ',' and '[' (the BOM is counted when it is skipped), so one byte each
        char_mark = byte_mark = 0

        def refill() -> None:
            nonlocal buffer, pos, eof, base
            try:
                more = handle.read(chunk_chars)
            except UnicodeDecodeError as error:
                raise _not_utf8(path, error) from None
            eof = more == ""
            base += pos
            buffer, pos = buffer[pos:] + more, 0

        def next_char() -> str:
            nonlocal pos
            while True:
                pos = _skip(buffer, pos, _WHITESPACE)
                if pos < len(buffer) or eof:
                    return buffer[pos] if pos < len(buffer) else ""
                refill()

        def decode(record: int | None, field: str | None) -> tuple[Any, int]:
            """The value at ``pos`` and where it ends, reading on while the chunk edge may cut it."""
            while True:
                try:
                    value, end = _DECODER.raw_decode(buffer, pos)
                except json.JSONDecodeError as error:
                    if eof or not _needs_more(error, len(buffer)):
                        raise InputError(
                            f"malformed JSON ({error.msg})", file=str(path), record=record, field=field
                        ) from None
                    refill()
                    continue
                if not eof and end + _EDGE_CHARS >= len(buffer) and not isinstance(value, (dict, list, str)):
                    refill()  # a number near the buffer edge may go on in the next chunk
                    continue
                return value, end

        def truncated(what: str, record: int | None, field: str | None) -> InputError:
            return InputError(
                f"ends before the JSON {what} is closed (truncated file?)",
                file=str(path),
                record=record,
                field=field,
            )

        def elements(field: str | None) -> Iterator[Any]:
            """The elements of the array whose '[' is at ``pos``; leaves ``pos`` after its ']'."""
            nonlocal pos, char_mark, byte_mark
            pos += 1
            index = 0
            char = next_char()
            if char == "]":
                pos += 1
                return
            while True:
                if char == "":
                    raise truncated("array", index, field)
                value, end = decode(index, field)
                if spans:
                    text = buffer[pos:end]
                    length = end - pos if text.isascii() else len(text.encode("utf-8"))
                    offset = byte_mark + base + pos - char_mark
                    char_mark, byte_mark = base + end, offset + length
                    yield value, offset, length
                else:
                    yield value
                index += 1
                pos = end
                char = next_char()
                if char == "]":
                    pos += 1
                    return
                if char == "":
                    raise truncated("array", index, field)
                if char != ",":
                    raise InputError(
                        f"malformed JSON: expected ',' or ']' after this element, found {char!r}",
                        file=str(path),
                        record=index - 1,
                        field=field,
                    )
                pos += 1
                char = next_char()

        char = next_char()
        if char == _BOM:
            pos, byte_mark = pos + 1, 2  # one character, three bytes
            char = next_char()
        if keys is None:
            if char != "[":
                raise InputError("is not a JSON array (it must start with '[')", file=str(path))
            yield from elements(None)
            return
        if char != "{":
            raise InputError("is not a JSON object (it must start with '{')", file=str(path))
        pos += 1
        found: set[str] = set()
        char = next_char()
        while char != "}":
            if char != '"':
                if char == "":
                    raise truncated("object", None, None)
                raise InputError(
                    f"malformed JSON: expected a key in the top-level object, found {char!r}", file=str(path)
                )
            key, pos = decode(None, None)
            if next_char() != ":":
                raise InputError("malformed JSON: expected ':' after this key", file=str(path), field=key)
            pos += 1
            char = next_char()
            if char == "":
                raise truncated("object", None, key)
            if key in keys:
                if char != "[":
                    raise InputError("is not a JSON array", file=str(path), field=key)
                found.add(key)
                for value in elements(key):
                    yield key, value
            elif char == "[":
                for _ in elements(key):
                    pass
            else:
                _, pos = decode(None, key)
            char = next_char()
            if char == ",":
                pos += 1
                char = next_char()
                if char == "}":
                    raise InputError("malformed JSON: ',' before '}'", file=str(path))
            elif char == "":
                raise truncated("object", None, None)
            elif char != "}":
                raise InputError(
                    f"malformed JSON: expected ',' or '}}' after this member, found {char!r}",
                    file=str(path),
                    field=key,
                )
        missing = sorted(keys - found)
        if missing:
            raise InputError("no such top-level key", file=str(path), field=missing[0])


def iter_json_array(path: str | Path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[Any]:
    """Yield the elements of a file holding one JSON array, in order, without loading the file."""
    return _scan(Path(path), chunk_chars, None, False)


def iter_json_array_spans(
    path: str | Path, *, chunk_chars: int = CHUNK_CHARS
) -> Iterator[tuple[Any, int, int]]:
    """Like :func:`iter_json_array`, with each element's ``(byte_offset, byte_length)`` for :func:`read_span`.

    Why: one pass builds an ``id -> span`` index; each element is then read back with one seek, so a
    per-image lookup in a GB file needs neither the decoded file in memory nor a rescan.
    """
    return _scan(Path(path), chunk_chars, None, True)


def read_span(path: str | Path, offset: int, length: int) -> Any:
    """The JSON value at ``offset`` (``length`` bytes), as located by :func:`iter_json_array_spans`."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(
            f"no JSON value at bytes {offset}-{offset + length} (file changed since it was indexed?): {error}",
            file=str(path),
        ) from None


def iter_json_object_arrays(
    path: str | Path, keys: Collection[str], *, chunk_chars: int = CHUNK_CHARS
) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, element)`` for the arrays under ``keys`` of a file holding one JSON object, in file order.

    One pass for several keys: COCO files put ``annotations`` (hundreds of MB) between ``images`` and
    ``categories``, and a pass per key would decode it each time. Every key must be present.
    """
    return _scan(Path(path), chunk_chars, frozenset(keys), False)


def iter_json_object_array(path: str | Path, key: str, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[Any]:
    """Yield the elements of the array under ``key`` of a file holding one JSON object."""
    for _, value in iter_json_object_arrays(path, (key,), chunk_chars=chunk_chars):
        yield value


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
