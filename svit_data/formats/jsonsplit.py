"""Split one large JSON array or JSON Lines file into ranges at record boundaries, for parallel ingest.

A compiled structural scan reads the file's bytes in fixed-size chunks (memory stays at one chunk) and
tracks only what decides where a top-level element ends: whether it is inside a string (and after a
backslash there), and the depth of '[' and '{'. A ',' outside strings at depth 1 ends an element of the
top-level array, so the byte after it is a record boundary, and the number of such commas before it is the
number of records before it: exact, with no guess from the text around a byte. For JSON Lines the
boundary is the byte after a newline; lines end as Python's text files end them (LF, CRLF or CR), and a
line of only spaces, tabs and CRs holds no record (:func:`svit_data.formats.jsonstream.iter_json_lines`
skips the same lines).

Each process of a parallel ingest finds its own range (:func:`file_range`): the boundaries at or after
``k/n`` and ``(k+1)/n`` of the file's size. The scan only has to be right for valid JSON: on a malformed
file, the range holding the first error still starts at a true boundary (everything before it is valid),
so it reports that error with its index in the whole file, and errors of later ranges are not reported.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from svit_data.formats.jsonstream import FileRange

SCAN_CHUNK_BYTES = 8 << 20
_BOM = b"\xef\xbb\xbf"
# The scan state carried from chunk to chunk is one int64 array the kernels update in place: for an
# array (in string, after a backslash, depth, records, next target, array closed), for JSON Lines
# (after a CR, line not blank, lines, records, next target).
_TARGET, _CLOSED = 4, 5


@numba.njit(cache=True, nogil=True)
def _scan_array(buf, base, state, targets, found):  # pragma: no cover - compiled
    """Advance the array scan over ``buf`` (the file's bytes from ``base``); for each target in turn, fill
    ``found[t]`` with (byte after the first depth-1 ',' at or after it, records before that byte)."""
    in_string, depth, count, t, closed = state[0], state[2], state[3], state[4], state[5]
    n, wanted = buf.shape[0], targets.shape[0]
    i = 0
    if state[1]:  # the chunk before ended on a backslash in a string: this byte is escaped
        i = 1
    while i < n and t < wanted and not closed:
        if in_string:  # the tight loop: most bytes are in strings
            while i < n:
                c = buf[i]
                if c == 92:  # backslash: skip the escaped byte
                    i += 2
                elif c == 34:  # quote
                    in_string = 0
                    i += 1
                    break
                else:
                    i += 1
            continue
        c = buf[i]
        i += 1
        if c == 34:
            in_string = 1
        elif c == 91 or c == 123:  # [ {
            depth += 1
        elif c == 93 or c == 125:  # ] }
            depth -= 1
            closed = depth == 0  # the top-level array is closed: no record boundary after it
        elif c == 44 and depth == 1:  # ,
            count += 1
            while t < wanted and base + i - 1 >= targets[t]:
                found[t, 0] = base + i
                found[t, 1] = count
                t += 1
    state[0], state[1], state[2], state[3], state[4], state[5] = in_string, i > n, depth, count, t, closed


@numba.njit(cache=True, nogil=True)
def _scan_lines(buf, base, state, targets, found):  # pragma: no cover - compiled
    """Advance the JSON Lines scan over ``buf``; for each target in turn, fill ``found[t]`` with (byte after
    the first LF at or after it, non-blank lines before that byte, lines before that byte)."""
    after_cr, nonblank, lines, count, t = state[0], state[1], state[2], state[3], state[4]
    n = buf.shape[0]
    i = 0
    while i < n and t < targets.shape[0]:
        c = buf[i]
        if c == 10 or c == 13:  # LF ends a line unless it follows a CR (CRLF); CR always does
            if not (c == 10 and after_cr):
                lines += 1
                count += nonblank
                nonblank = 0
            after_cr = 1 if c == 13 else 0
            if c == 10:
                while t < targets.shape[0] and base + i >= targets[t]:
                    found[t, 0] = base + i + 1
                    found[t, 1] = count
                    found[t, 2] = lines
                    t += 1
        else:
            after_cr = 0
            if c != 32 and c != 9:
                nonblank = 1
        i += 1
    state[0], state[1], state[2], state[3], state[4] = after_cr, nonblank, lines, count, t


def is_splittable(path: Path) -> bool:
    """Whether ``path`` can be split: JSON Lines, or a JSON file whose document is an array. Anything else
    is read whole, by the reader that reports what is wrong with it."""
    if path.suffix == ".jsonl":
        return True
    if path.suffix != ".json":
        return False
    with open(path, "rb") as handle:
        head = handle.read(4096)
    head = head.removeprefix(_BOM).lstrip(b" \t\r\n")
    return head.startswith(b"[")


def boundaries(path: Path, targets: list[int]) -> list[FileRange | None]:
    """For each byte offset in ``targets`` (ascending), the first record boundary at or after it, as the
    start of a :class:`FileRange` (``stop`` unset), or None when no record starts after it."""
    lines = path.suffix == ".jsonl"
    scan = _scan_lines if lines else _scan_array
    wanted = np.array(targets, np.int64)
    found = np.full((len(targets), 3), -1, np.int64)
    state = np.zeros(6, np.int64)
    chunk = np.empty(SCAN_CHUNK_BYTES, np.uint8)
    base = 0
    with open(path, "rb", buffering=0) as handle:
        while state[_TARGET] < len(targets) and (size := handle.readinto(chunk)):
            scan(chunk[:size], base, state, wanted, found)
            base += size
            if not lines and state[_CLOSED]:
                break
    return [
        FileRange(int(offset), None, int(count), int(line) if lines else 0) if offset >= 0 else None
        for offset, count, line in found
    ]


def file_range(path: Path, part: int, parts: int) -> FileRange | None:
    """Range ``part`` of ``parts`` of a splittable file: from the first record boundary at or after
    ``part/parts`` of its size up to that of the next range; None when it holds no record boundary (the
    ranges before it then cover the file). The ranges of ``0..parts-1`` cover the file once, in order."""
    size = path.stat().st_size
    targets = [size * k // parts for k in (part, part + 1) if 0 < k < parts]
    found = boundaries(path, targets)
    start = FileRange() if part == 0 else found.pop(0)
    stop = found[0] if part < parts - 1 else None
    if start is None or (stop is not None and stop.start <= start.start):
        return None
    return FileRange(start.start, stop.start if stop is not None else None, start.record, start.line)


def open_range(path: Path, part: int, parts: int) -> tuple[FileRange, int | None] | None:
    """Range ``part`` of ``parts`` of a JSON array file, for a reader that finds its own end: its start
    (``stop`` unset) and the byte target its end is the first record boundary after (None: the end of
    the file), so only the start is scanned for. None when the range holds no record boundary. The
    ranges are those of :func:`file_range`: the first ',' at depth 1 at or after the target ends this
    range and starts the next."""
    size = path.stat().st_size
    until = size * (part + 1) // parts if part < parts - 1 else None
    start = FileRange() if part == 0 else boundaries(path, [size * part // parts])[0]
    if start is None or (part and until is not None and start.start - 1 >= until):
        return None
    return start, until


def range_stop(path: Path, until: int | None) -> int | None:
    """The byte where a range found by :func:`open_range` with target ``until`` ends."""
    if until is None:
        return None
    found = boundaries(path, [until])[0]
    return found.start if found is not None else None
