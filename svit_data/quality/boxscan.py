"""Compiled passes over referring text (``<st>name<ed> [x1, y1, x2, y2]``) for the batch checks and
signals: box order in canonical text, answer words without boxes and markers. Like
:mod:`~svit_data.quality.textscan`, each takes only the texts where bytes alone decide, and leaves the
others to the exact rule."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from svit_data.quality.swar import HIGH, at_least, equal, lanes, load8, load_text, trailing_zeros
from svit_data.quality.textscan import WHITESPACE, text_bytes


@numba.njit(cache=True, nogil=True, inline="always")
def _re2_space(byte):  # pragma: no cover - compiled
    return byte == 32 or byte == 9 or byte == 10 or byte == 12 or byte == 13  # RE2's \s


@numba.njit(cache=True, nogil=True)
def _number(data, k, end):  # pragma: no cover - compiled
    """The end of a box number ``0``, ``0.d*``, ``1``, ``1.0*`` or ``.d+`` at ``k``, or -1."""
    if k >= end:
        return -1
    first = data[k]
    if first == 48 or first == 49:  # 0 or 1, then an optional fraction (of zeros after 1)
        k += 1
        if k < end and data[k] == 46:
            k += 1
            while k < end and (48 <= data[k] <= 57 if first == 48 else data[k] == 48):
                k += 1
        return k
    if first != 46:
        return -1
    k += 1
    if k >= end or not 48 <= data[k] <= 57:
        return -1
    while k < end and 48 <= data[k] <= 57:
        k += 1
    return k


@numba.njit(cache=True, nogil=True)
def _box(data, k, end):  # pragma: no cover - compiled
    """The end of a box ``[ n , n , n , n ]`` (RE2 spaces around each number) starting at ``k``, or -1."""
    k += 1  # [
    for c in range(4):
        while k < end and _re2_space(data[k]):
            k += 1
        k = _number(data, k, end)
        if k < 0:
            return -1
        while k < end and _re2_space(data[k]):
            k += 1
        if k >= end or data[k] != (93 if c == 3 else 44):  # ] after the last number, else ,
            return -1
        k += 1
    return k


@numba.njit(cache=True, nogil=True, inline="always")
def _marker(data, k, end, second, third):  # pragma: no cover - compiled
    return k + 3 < end and data[k + 1] == second and data[k + 2] == third and data[k + 3] == 62


@numba.njit(cache=True, nogil=True, inline="always")
def _next_special(data, k, end):  # pragma: no cover - compiled
    """The index of the first ``<`` or ``[`` in ``data[k:end]``, or ``end``; eight bytes at a time."""
    while k < end:
        word, live = load_text(data, k, end)
        hit = (equal(word, 60) | equal(word, 91)) & live
        if hit:
            return k + (np.int64(trailing_zeros(hit)) >> 3)
        k += 8
    return end


@numba.njit(cache=True, nogil=True, inline="always")
def _next_byte(data, k, end, byte):  # pragma: no cover - compiled
    """The index of the first ``byte`` in ``data[k:end]``, or ``end``; eight bytes at a time."""
    while k < end:
        word, live = load_text(data, k, end)
        hit = equal(word, byte) & live
        if hit:
            return k + (np.int64(trailing_zeros(hit)) >> 3)
        k += 8
    return end


@numba.njit(cache=True, nogil=True)
def _ordered(data, k, end, margin):  # pragma: no cover - compiled
    """Whether the box ``[n, n, n, n]`` of plain numbers at ``k`` has ``x2 - x1`` and ``y2 - y1`` of at
    least ``margin``, each number read to within 1e-15 (later digits change it by less than 1e-18)."""
    x1 = y1 = 0.0
    for c in range(4):
        while k < end and not (48 <= data[k] <= 57 or data[k] == 46):  # to a digit or "."
            k += 1
        whole, fraction, scale = 0.0, 0, 1
        while k < end and 48 <= data[k] <= 57:
            whole = 10 * whole + (data[k] - 48)
            k += 1
        if k < end and data[k] == 46:
            k += 1
            while k < end and 48 <= data[k] <= 57:
                if scale < 10**18:
                    fraction = 10 * fraction + (data[k] - 48)
                    scale *= 10
                k += 1
        value = whole + fraction / scale
        if c == 0:
            x1 = value
        elif c == 1:
            y1 = value
        elif c == 2 and value - x1 < margin:
            return False
        elif c == 3 and value - y1 < margin:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _canonical(data, offsets, picks, order, margin):  # pragma: no cover - compiled
    out = np.zeros(len(picks), np.bool_)
    for d in range(len(picks)):
        k, end = offsets[picks[d]], offsets[picks[d] + 1]
        ok = True
        while ok:
            k = _next_special(data, k, end)  # bytes other than < and [ need no look
            if k >= end:
                break
            if data[k] == 91 or not _marker(data, k, end, 115, 116):  # a [ outside boxes, a < not <st>
                ok = False
                break
            k = _next_special(data, k + 4, end)
            if k >= end or not _marker(data, k, end, 101, 100):  # <ed>
                ok = False
                break
            k += 4
            first = True
            while True:  # boxes: " [..]" after <ed>, then ", [..]" each
                j = k
                while j < end and _re2_space(data[j]):
                    j += 1
                if not first:
                    if j >= end or data[j] != 44:
                        break
                    j += 1
                    while j < end and _re2_space(data[j]):
                        j += 1
                if j >= end or data[j] != 91:
                    break
                box = j
                j = _box(data, j, end)
                if j < 0 or (order and not _ordered(data, box, j, margin)):  # a [ that opens no box
                    ok = False
                    break
                k, first = j, False
        out[d] = ok
    return out


def canonical_texts(values: pa.Array, picks: np.ndarray, margin: float | None = None) -> np.ndarray:
    """Per pick: whether ``values[pick]`` matches :data:`svit_data.quality.batch.CANONICAL` (as RE2
    reads it: ``\\s`` is tab, newline, form feed, carriage return or space). Every ``[`` must open a box
    right after ``<ed>`` or after a box and a comma, and every ``<`` must open ``<st>`` or, after it,
    ``<ed>``, so the text is read left to right without going back.

    With a ``margin``, also whether every box has ``x2 - x1`` and ``y2 - y1`` of at least ``margin``
    plus 1e-12. The numbers are read to within 1e-15, so True implies the same of the numbers as a float
    parser reads them; near that bound it says False."""
    data, offsets = text_bytes(values)
    order = margin is not None
    return _canonical(data, offsets, np.asarray(picks, np.int64), order, (margin or 0.0) + 1e-12)


@numba.njit(cache=True, nogil=True)
def _skip_space(data, k, end):  # pragma: no cover - compiled
    while k < end and (data[k] == 32 or 9 <= data[k] <= 10 or data[k] == 13):
        k += 1
    return k


@numba.njit(cache=True, nogil=True)
def _marked_words(data, offsets, picks, canonical, whitespace):  # pragma: no cover - compiled
    out = np.full(len(picks), -1, np.int64)
    for d in range(len(picks)):
        k, end = offsets[picks[d]], offsets[picks[d] + 1]
        count, inside, taken = 0, False, True
        while k < end:
            if k + 8 <= end:  # eight plain bytes without < or [ whose last is no space: counted at once
                word = load8(data, k)
                space = equal(word, 32) | equal(word, 9) | equal(word, 10) | equal(word, 13)
                if (
                    not word & HIGH
                    and not (~at_least(word, 32) & HIGH & ~space)  # control bytes other than spaces
                    and not (equal(word, 127) | equal(word, 60) | equal(word, 91) | space >> np.uint64(56))
                ):
                    after_space = (space << np.uint64(8)) | (np.uint64(0) if inside else np.uint64(0x80))
                    count += lanes(HIGH & ~space & after_space)
                    inside = True
                    k += 8
                    continue
            byte = data[k]
            if not (32 <= byte <= 126 or 9 <= byte <= 10 or byte == 13):
                taken = False  # not plain ASCII
                break
            if byte == 60:  # <: a marker, removed, or a text this pass does not take
                if (
                    k + 3 < end
                    and data[k + 3] == 62
                    and (
                        (data[k + 1] == 115 and data[k + 2] == 116)
                        or (data[k + 1] == 101 and data[k + 2] == 100)
                    )
                ):
                    k += 4
                    continue
                taken = False
                break
            after = _skip_space(data, k, end) if whitespace[byte] else k
            if after < end and data[after] == 91:  # [: a box list and the spaces before it are removed
                if not canonical[d]:
                    taken = False
                    break
                k = after
                while True:
                    k = _next_byte(data, k, end, 93) + 1  # past the ]
                    j = _skip_space(data, k, end)
                    if j < end and data[j] == 44:  # ,
                        j = _skip_space(data, j + 1, end)
                        if j < end and data[j] == 91:
                            k = j
                            continue
                    break
                continue
            if whitespace[byte]:
                inside = False
                k = after
                continue
            if not inside:
                inside = True
                count += 1
            k += 1
        if taken:
            out[d] = count
    return out


def marked_answer_words(values: pa.Array, picks: np.ndarray, canonical: np.ndarray) -> np.ndarray:
    """:func:`svit_data.quality.signals.answer_words` of ``values[picks]`` (boxes and ``<st>``/``<ed>``
    markers are not words) for the texts of printable ASCII, tab and newlines whose every ``<`` opens a
    marker and whose ``[`` (if any) are all boxes of canonical text (``canonical``, per pick: known to
    match :data:`svit_data.quality.batch.CANONICAL`); -1 for the others. On these texts removing the
    markers while reading gives what the rule's removal one marker after the other gives."""
    data, offsets = text_bytes(values)
    picks = np.asarray(picks, np.int64)
    return _marked_words(data, offsets, picks, np.asarray(canonical, np.bool_), WHITESPACE)
