"""Stream the items of a top-level JSON array with bounded memory, and index them by byte offset.

Visual Genome files are single JSON arrays of hundreds of MB. :func:`iter_array` decodes one item at a
time from a sliding buffer; each item comes with its byte span so a reader can later ``seek`` to it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path

from svit_data.errors import InputError

CHUNK = 1 << 20
_WS = " \t\r\n"


def iter_array(path: str | Path, chunk_size: int = CHUNK) -> Iterator[tuple[object, int, int]]:
    """Yield ``(item, byte_offset, byte_length)`` for every item of the top-level array in ``path``."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=str(path))
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    buf, pos, index = "", 0, 0
    mark, mark_byte = 0, 0  # buf[mark] sits at byte offset mark_byte of the file
    started = finished = False
    with open(path, "rb") as handle:
        eof = False
        while True:
            if not eof and len(buf) - pos < chunk_size:
                data = handle.read(chunk_size)
                eof = not data
                mark_byte += len(buf[mark:pos].encode("utf-8"))
                buf = buf[pos:] + utf8.decode(data, final=eof)
                pos = mark = 0
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos >= len(buf):
                if eof:
                    break
                continue
            if not started:
                if buf[pos] != "[":
                    raise InputError("expected a JSON array at the top level", file=str(path))
                started, pos = True, pos + 1
                continue
            if buf[pos] == "]":
                finished = True
                break
            if buf[pos] == ",":
                pos += 1
                continue
            try:
                item, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not eof:  # the item may continue in the next chunk
                    chunk_size *= 2
                    continue
                raise InputError(f"malformed JSON ({exc.msg})", file=str(path), record=index) from exc
            offset = mark_byte + len(buf[mark:pos].encode("utf-8"))
            length = len(buf[pos:end].encode("utf-8"))
            yield item, offset, length
            pos, mark, mark_byte, index = end, end, offset + length, index + 1
    if not finished:
        raise InputError("truncated JSON array (no closing ']')", file=str(path), record=index)


def read_span(path: str | Path, offset: int, length: int) -> object:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return json.loads(handle.read(length))
