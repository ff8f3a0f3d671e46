"""Streaming JSON readers with bounded memory: a top-level JSON array, the arrays under named keys of a
top-level JSON object (COCO's ``{"images": [...], "annotations": [...]}``), or JSON Lines.

The released SVIT files and the VG/COCO sources are single JSON documents of hundreds of MB to GBs. We
decode one element at a time with the C scanner of the standard library (``raw_decode``) over a sliding
buffer, so memory stays at about one buffer plus one record, and the speed is that of ``json.loads``.
One scanner (:class:`_Scanner`) serves every reader; on request it also gives each element's byte span, so a
caller can index a file in one pass and later read one element with a single seek (:func:`read_span`).
Every record reader also reads a :class:`FileRange` alone: a part of the file that starts at a record
boundary, with the records before it counted (:mod:`svit_data.formats.jsonsplit` finds them), so that
processes can share one large file and still give every record its index in the whole file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from svit_data.errors import InputError

# 1M characters: a 4M buffer is up to 16 MB once one non-Latin-1 character widens the whole str, and decoding
# from it measured ~25% slower (CPU-cache misses); below 1M nothing more is gained.
CHUNK_CHARS = 1 << 20
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
_BOM = "\ufeff"  # accepted once, before the document: editors on Windows write it
# A decode error this close to the end of the buffer may just be a value cut by the chunk edge.
_EDGE_CHARS = 16


@dataclass(frozen=True)
class FileRange:
    """Bytes ``[start, stop)`` of a JSON array or JSON Lines file (``stop`` None: to the end of the file).

    ``start`` is 0 or a record boundary: just after the ',' that ends an element of the top-level array,
    or just after a newline. ``record`` records and (JSON Lines) ``line`` lines come before it, so that
    record indices in errors stay those of the whole file. ``stop`` is another range's ``start``.
    """

    start: int = 0
    stop: int | None = None
    record: int = 0
    line: int = 0


class _RangeFile(io.RawIOBase):
    """The bytes of a :class:`FileRange`, as a raw file for :class:`io.TextIOWrapper`."""

    def __init__(self, path: Path, part: FileRange):
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._file.seek(part.start)
        self._left = None if part.stop is None else part.stop - part.start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        if self._left is not None:
            view = view[: self._left]
        count = self._file.readinto(view) or 0
        if self._left is not None:
            self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_text(path: Path, part: FileRange | None, newline: str | None) -> TextIO:
    if part is None:
        return open(path, encoding="utf-8", newline=newline)
    return io.TextIOWrapper(io.BufferedReader(_RangeFile(path, part)), encoding="utf-8", newline=newline)


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


class _Scanner:
    """A sliding window over one JSON document: the buffer, the read position and the located errors.

    ``spans``: also give each array element's byte span. ``char_mark`` is a character offset in the file
    whose byte offset is ``byte_mark``; between it and the next element there are only whitespace, ','
    and '[' (the BOM is counted when it is skipped), so one byte each.
    """

    def __init__(self, handle: TextIO, path: Path, chunk_chars: int, spans: bool):
        self.handle, self.path, self.chunk_chars, self.spans = handle, path, chunk_chars, spans
        self.buffer, self.pos, self.eof = "", 0, False
        self.base = 0  # character offset in the file of buffer[0]
        self.char_mark = self.byte_mark = 0

    def error(self, message: str, record: int | None = None, field: str | None = None) -> InputError:
        return InputError(message, file=str(self.path), record=record, field=field)

    def truncated(self, what: str, record: int | None, field: str | None) -> InputError:
        return self.error(f"ends before the JSON {what} is closed (truncated file?)", record, field)

    def refill(self) -> None:
        try:
            more = self.handle.read(self.chunk_chars)
        except UnicodeDecodeError as error:
            raise _not_utf8(self.path, error) from None
        self.eof = more == ""
        self.base += self.pos
        self.buffer, self.pos = self.buffer[self.pos :] + more, 0

    def next_char(self) -> str:
        """The next non-whitespace character (``pos`` moves onto it), or ``""`` at the end of the file."""
        while True:
            buffer = self.buffer
            self.pos = pos = _skip(buffer, self.pos, _WHITESPACE)
            if pos < len(buffer):
                return buffer[pos]
            if self.eof:
                return ""
            self.refill()

    def decode(self, record: int | None, field: str | None) -> tuple[Any, int]:
        """The value at ``pos`` and where it ends, reading on while the chunk edge may cut it."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if self.eof or not _needs_more(error, len(self.buffer)):
                    raise self.error(f"malformed JSON ({error.msg})", record, field) from None
                self.refill()
                continue
            if (
                not self.eof
                and end + _EDGE_CHARS >= len(self.buffer)
                and not isinstance(value, (dict, list, str))
            ):
                self.refill()  # a number near the buffer edge may go on in the next chunk
                continue
            return value, end

    def elements(self, field: str | None, part: FileRange | None = None) -> Iterator[Any]:
        """The elements of the array whose '[' is at ``pos``; leaves ``pos`` after its ']'.

        With ``part`` (a range of the file's top-level array): the elements of that range, numbered on
        from ``part.record``; a range that does not start the file starts after an element's ','.
        """
        decode, next_char, spans = self.decode, self.next_char, self.spans  # locals: this is the hot loop
        index = part.record if part is not None else 0
        bounded = part is not None and part.stop is not None
        if part is None or part.start == 0:
            self.pos += 1
            char = next_char()
            if char == "]":
                self.pos += 1
                return
        else:
            char = next_char()
        while True:
            if char == "":
                if bounded:
                    return  # the range ends after an element's ','; the next range goes on from there
                raise self.truncated("array", index, field)
            value, end = decode(index, field)
            if spans:
                pos = self.pos
                text = self.buffer[pos:end]
                length = end - pos if text.isascii() else len(text.encode("utf-8"))
                offset = self.byte_mark + self.base + pos - self.char_mark
                self.char_mark, self.byte_mark = self.base + end, offset + length
                yield value, offset, length
            else:
                yield value
            index += 1
            self.pos = end
            char = next_char()
            if char == "]":
                self.pos += 1
                return
            if char == "":
                raise self.truncated("array", index, field)
            if char != ",":
                raise self.error(
                    f"malformed JSON: expected ',' or ']' after this element, found {char!r}",
                    index - 1,
                    field,
                )
            self.pos += 1
            char = next_char()

    def first_char(self) -> str:
        """The first character of the document, past a byte order mark."""
        char = self.next_char()
        if char == _BOM:
            self.pos, self.byte_mark = self.pos + 1, 2  # one character, three bytes
            char = self.next_char()
        return char

    def array(self, part: FileRange | None = None) -> Iterator[Any]:
        if (part is None or part.start == 0) and self.first_char() != "[":
            raise self.error("is not a JSON array (it must start with '[')")
        yield from self.elements(None, part)

    def object_arrays(self, keys: frozenset[str]) -> Iterator[tuple[str, Any]]:
        """``(key, element)`` for the arrays under ``keys``; other members are skipped (arrays element by
        element, so that memory stays bounded there too)."""
        if self.first_char() != "{":
            raise self.error("is not a JSON object (it must start with '{')")
        self.pos += 1
        found: set[str] = set()
        char = self.next_char()
        while char != "}":
            if char != '"':
                if char == "":
                    raise self.truncated("object", None, None)
                raise self.error(f"malformed JSON: expected a key in the top-level object, found {char!r}")
            key, self.pos = self.decode(None, None)
            if self.next_char() != ":":
                raise self.error("malformed JSON: expected ':' after this key", field=key)
            self.pos += 1
            char = self.next_char()
            if char == "":
                raise self.truncated("object", None, key)
            if key in keys:
                if char != "[":
                    raise self.error("is not a JSON array", field=key)
                found.add(key)
                for value in self.elements(key):
                    yield key, value
            elif char == "[":
                for _ in self.elements(key):
                    pass
            else:
                _, self.pos = self.decode(None, key)
            char = self.next_char()
            if char == ",":
                self.pos += 1
                char = self.next_char()
                if char == "}":
                    raise self.error("malformed JSON: ',' before '}'")
            elif char == "":
                raise self.truncated("object", None, None)
            elif char != "}":
                raise self.error(
                    f"malformed JSON: expected ',' or '}}' after this member, found {char!r}", field=key
                )
        missing = sorted(keys - found)
        if missing:
            raise self.error("no such top-level key", field=missing[0])


def _scan(
    path: Path, chunk_chars: int, keys: frozenset[str] | None, spans: bool, part: FileRange | None = None
) -> Iterator[Any]:
    """The one decoding loop behind the public readers.

    ``keys=None``: the file is an array; yield its elements (those of ``part`` only, when given), or
    ``(element, byte_offset, byte_length)`` with ``spans``. Else the file is an object; yield
    ``(key, element)`` for the arrays under ``keys``.
    """
    # newline="": characters map one to one onto the file's text, which the byte spans rely on
    with _open_text(path, part, "") as handle:
        scanner = _Scanner(handle, path, chunk_chars, spans)
        if part is not None:
            scanner.byte_mark = part.start  # only whitespace before its first element: one byte each
        yield from scanner.array(part) if keys is None else scanner.object_arrays(keys)


def iter_json_array(
    path: str | Path, *, chunk_chars: int = CHUNK_CHARS, part: FileRange | None = None
) -> Iterator[Any]:
    """Yield the elements of a file holding one JSON array (or of one range of it), in order, without
    loading the file."""
    return _scan(Path(path), chunk_chars, None, False, part)


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


def iter_json_lines(path: str | Path, part: FileRange | None = None) -> Iterator[Any]:
    """The values of a JSON Lines file (or of one range of it); a line of JSON whitespace only is skipped
    (only ' ', tab, CR and LF: what :mod:`svit_data.formats.jsonsplit` counts as blank too)."""
    path = Path(path)
    with _open_text(path, part, None) as handle:
        lines = enumerate(handle, part.line if part is not None else 0)
        while True:
            try:
                line_number, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as error:
                raise _not_utf8(path, error) from None
            if not line.strip(_WHITESPACE):
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


def iter_json_records(path: str | Path, part: FileRange | None = None) -> Iterator[Any]:
    """Elements of a JSON array file (``.json``) or the lines of a JSON Lines file (``.jsonl``); with
    ``part``, those of one range of the file."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return iter_json_lines(path, part)
    return iter_json_array(path, part=part)
