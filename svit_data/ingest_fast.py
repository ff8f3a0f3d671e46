"""The compiled path of ingest: a task file's JSON array read in chunks by :func:`svitscan.parse_records`.

The file (or a range of it) is read 16 MB at a time into a byte buffer; the kernel appends the records it
knows to the batch's arrays and stops at anything else. An element outside the compiled shape is
decoded by the standard library alone and goes through the checked per-record path; JSON the kernel
finds malformed ends the compiled path there: the caller reads on from that element with
:func:`svit_data.formats.jsonstream.iter_json_records`, whose located errors (file, record, position) stay
exactly what they were. Only ``.json`` arrays take this path; JSON Lines keep the standard reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from svit_data.formats import jsonbytes, svitscan
from svit_data.formats.jsonsplit import range_stop
from svit_data.formats.jsonstream import FileRange
from svit_data.ingest_columns import Batch

CHUNK_BYTES = 16 << 20
_BOM = b"\xef\xbb\xbf"
_KEYS = svitscan.key_codes()
_WHITESPACE = b" \t\r\n"


def size_table(sizes: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sizes`` as sorted image ids, widths and heights (the kernel's lookup)."""
    ids = np.array(sorted(sizes), np.int64)
    widths = np.array([sizes[i][0] for i in ids.tolist()], np.int64)
    heights = np.array([sizes[i][1] for i in ids.tolist()], np.int64)
    return ids, widths, heights


class _Reader:
    """The bytes of a file range in one buffer that is read into directly (the rest of the previous chunk
    moved to its front), with the offset of its first byte in the file."""

    def __init__(self, handle, stop: int | None):
        self.handle, self.stop = handle, stop
        self.base = handle.tell()
        self.data = np.empty(CHUNK_BYTES, np.uint8)
        self.size = 0
        self.final = False
        self.more()

    @property
    def buf(self) -> np.ndarray:
        return self.data[: self.size]

    def more(self, pos: int = 0) -> None:
        """Drop the bytes before ``pos`` and read the next chunk after the rest."""
        left = self.size - pos
        want = CHUNK_BYTES
        if self.stop is not None:
            want = max(0, min(want, self.stop - self.handle.tell()))
        if left + want > len(self.data):  # a record longer than a chunk: a bigger buffer
            bigger = np.empty(max(2 * len(self.data), left + want), np.uint8)
            bigger[:left] = self.data[pos : self.size]
            self.data = bigger
        elif pos:
            self.data[:left] = self.data[pos : self.size]
        view, got = memoryview(self.data)[left : left + want], 0
        while got < want and (count := self.handle.readinto(view[got:])):  # a raw read may return less
            got += count
        self.base += pos
        self.size = left + got
        self.final = got < want or (self.stop is not None and self.handle.tell() >= self.stop)


def read_fast(
    path: Path,
    part: FileRange | None,
    until: int | None,
    batch: Batch,
    *,
    per_qa: bool,
    sizes: tuple[np.ndarray, np.ndarray, np.ndarray],
    batch_rows: int,
    flush: Callable[[], None],
    add: Callable[[int, Any], None],
) -> FileRange | None:
    """Read the records of ``path`` (or of ``part``) into ``batch``, calling ``flush`` whenever it holds
    ``batch_rows`` samples and ``add(index, record)`` for a record decoded by the standard library.
    ``until``: the range ends at the first record boundary after this byte (:func:`open_range`). Returns
    None when done, or the range left to the standard reader."""
    part = part or FileRange()
    record = part.record
    bounded = part.stop is not None
    end_at = until if until is not None else 1 << 62

    def rest(pos: int) -> FileRange:
        """The range from ``pos`` of the buffer on, for the standard reader."""
        stop = part.stop if until is None else range_stop(path, until)
        return FileRange(reader.base + pos, stop, record)

    with open(path, "rb", buffering=0) as handle:
        handle.seek(part.start)
        reader = _Reader(handle, part.stop)
        pos = 0
        if part.start == 0:  # the document's start: a BOM, whitespace, '['
            head = bytes(reader.buf[:4096])
            body = head.removeprefix(_BOM)
            document = body.lstrip(_WHITESPACE)
            inside = document[1:].lstrip(_WHITESPACE)
            if not document.startswith(b"[") or not inside:  # the standard reader says what is wrong
                return part
            if inside.startswith(b"]"):
                return None
            pos = len(head) - len(document) + 1
        while True:
            fast = batch.fast()
            limit = batch_rows - (len(batch) - len(fast))
            status, pos, record = svitscan.parse_records(
                reader.buf, pos, len(reader.buf), reader.final, bounded, end_at - reader.base, per_qa, limit, _KEYS,
                sizes, record,
                fast.out, fast.rows, fast.state,
            )  # fmt: skip
            if status == svitscan.NEED_MORE:
                reader.more(pos)
                pos = 0
            elif status == svitscan.BATCH_FULL:
                flush()
            elif status == svitscan.OUT_FULL:
                fast.grow()
            elif status == svitscan.END:
                return None
            elif status == svitscan.BROKEN:
                return rest(pos)
            else:  # OTHER: the standard library decodes this element
                end = jsonbytes.element_end(reader.buf, pos, len(reader.buf))
                after = _separator(reader.buf, end)
                if after == -1 and not reader.final:
                    reader.more(pos)
                    pos = 0
                    continue
                if after < 0:
                    return rest(pos)
                try:
                    value = json.loads(reader.buf[pos:end].tobytes().decode("utf-8"))
                except ValueError:  # UnicodeDecodeError too: the standard reader says where
                    return rest(pos)
                add(record, value)
                record += 1
                if reader.buf[after] == 93 or reader.base + after >= end_at:  # ']', or the range's end
                    return None
                pos = after + 1
                if len(batch) >= batch_rows:
                    flush()


def _separator(buf: np.ndarray, end: int) -> int:
    """Where the ',' or ']' after an element ending at ``end`` is: -1 when the buffer ends first, -2 when
    something else is there (or the element was not one)."""
    if end < 0:
        return end
    i = end
    while i < len(buf) and buf[i] in _WHITESPACE:
        i += 1
    if i == len(buf):
        return -1
    return i if buf[i] in (44, 93) else -2
