"""Compiled passes over referring text (``<st>name<ed> [x1, y1, x2, y2]``) for the batch checks and
signals: box order in canonical text, answer words without boxes and markers. Like
:mod:`~svit_data.quality.textscan`, each takes only the texts where bytes alone decide, and leaves the
others to the exact rule."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from svit_data.quality.textscan import WHITESPACE, text_bytes


@numba.njit(cache=True, nogil=True)
def _ordered_boxes(data, offsets, picks, margin):  # pragma: no cover - compiled
    out = np.ones(len(picks), np.bool_)
    corners = np.zeros(4, np.float64)
    for d in range(len(picks)):
        k, end = offsets[picks[d]], offsets[picks[d] + 1]
        while k < end and out[d]:
            if data[k] != 91:  # [
                k += 1
                continue
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
                        if scale < 10**18:  # later digits change the value by less than 1e-18
                            fraction = 10 * fraction + (data[k] - 48)
                            scale *= 10
                        k += 1
                corners[c] = whole + fraction / scale
            if corners[2] - corners[0] < margin or corners[3] - corners[1] < margin:
                out[d] = False
    return out


def ordered_boxes(values: pa.Array, picks: np.ndarray, margin: float) -> np.ndarray:
    """For the texts ``values[picks]``, known to be canonical (every ``[`` opens a box of four plain
    numbers ``0``-``1``: :data:`svit_data.quality.batch.CANONICAL`): True where every box has
    ``x2 - x1`` and ``y2 - y1`` of at least ``margin`` plus 1e-12. The numbers are read to within 1e-15,
    so True implies the same of the numbers as a float parser reads them; near that bound it says False."""
    data, offsets = text_bytes(values)
    return _ordered_boxes(data, offsets, np.asarray(picks, np.int64), margin + 1e-12)


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
                    while k < end and data[k] != 93:  # ]
                        k += 1
                    k += 1
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
