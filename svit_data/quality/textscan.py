"""Compiled passes over the UTF-8 bytes of a pyarrow string array, for the batch quality checks.

Each kernel reads the bytes once, without building Python strings or intermediate arrays. They only
handle what is defined on bytes alone; callers route texts where Unicode matters (see each kernel) to
the exact pyarrow or Python rule. "Whitespace" here is the ASCII whitespace of both ``str.split()`` and
pyarrow's ``utf8_split_whitespace``: tab to carriage return, 0x1c-0x1f and space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

WHITESPACE = np.zeros(256, np.bool_)
WHITESPACE[[*range(9, 14), *range(28, 33)]] = True
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1).astype(np.uint32)
    return table


CRC = _crc_table()  # zlib's CRC-32 (reflected 0xEDB88320), so a word hashes as zlib.crc32 hashes it


def text_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array and its offsets into them (int64); nulls read as empty."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], width)[values.offset : values.offset + len(values) + 1]
    buffer = values.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _word_counts(data, offsets, whitespace):  # pragma: no cover - compiled
    n = len(offsets) - 1
    counts = np.zeros(n, np.int64)
    for i in range(n):
        inside = False
        count = 0
        for k in range(offsets[i], offsets[i + 1]):
            if whitespace[data[k]]:
                inside = False
            elif not inside:
                inside = True
                count += 1
        counts[i] = count
    return counts


def word_counts(values: pa.Array) -> np.ndarray:
    """Whitespace words per text: ``len(text.split())`` wherever the text holds no non-ASCII whitespace."""
    data, offsets = text_bytes(values)
    return _word_counts(data, offsets, WHITESPACE)


@numba.njit(cache=True, nogil=True)
def _normalized_hashes(data, offsets, whitespace, fnv_offset, fnv_prime):  # pragma: no cover - compiled
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        h = fnv_offset
        inside = False
        words = 0
        for k in range(offsets[i], offsets[i + 1]):
            byte = data[k]
            if whitespace[byte]:
                inside = False
                continue
            if not inside:
                inside = True
                if words:
                    h = (h ^ np.uint64(32)) * fnv_prime
                words += 1
            if 65 <= byte <= 90:
                byte += 32
            h = (h ^ np.uint64(byte)) * fnv_prime
        out[i] = h
    return out


def normalized_hashes(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of ``" ".join(text.lower().split())`` per text, exact for ASCII texts (and for
    texts that are already normalized, whatever their characters)."""
    data, offsets = text_bytes(values)
    return _normalized_hashes(data, offsets, WHITESPACE, _FNV_OFFSET, _FNV_PRIME)


@numba.njit(cache=True, nogil=True)
def _crcs(data, offsets, crc):  # pragma: no cover - compiled
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        value = np.uint32(0xFFFFFFFF)
        for k in range(offsets[i], offsets[i + 1]):
            value = crc[(value ^ np.uint32(data[k])) & np.uint32(0xFF)] ^ (value >> np.uint32(8))
        out[i] = np.uint64(value ^ np.uint32(0xFFFFFFFF))
    return out


def crcs(values: pa.Array) -> np.ndarray:
    """``zlib.crc32`` of each text's UTF-8 bytes."""
    data, offsets = text_bytes(values)
    return _crcs(data, offsets, CRC)


def simple_ascii(values: pa.Array, ascii_: np.ndarray | None = None) -> np.ndarray:
    """Texts that are ASCII, non-empty, and neither start nor end with whitespace: on these pyarrow's
    ``utf8_split_whitespace`` gives exactly ``str.split()`` (elsewhere it yields empty words at the edges).
    ``ascii_``: which texts are ASCII, when a scan already knows."""
    data, offsets = text_bytes(values)
    nonempty = offsets[1:] > offsets[:-1]
    if not nonempty.any():
        return nonempty
    first = data[np.where(nonempty, offsets[:-1], 0)]
    last = data[np.where(nonempty, offsets[1:] - 1, 0)]
    if ascii_ is None:
        ascii_ = pc.string_is_ascii(values).to_numpy(zero_copy_only=False)
    return ascii_ & nonempty & ~WHITESPACE[first] & ~WHITESPACE[last]


@numba.njit(cache=True, nogil=True)
def _scan(data, offsets, whitespace, fnv_offset, fnv_prime):  # pragma: no cover - compiled
    n = len(offsets) - 1
    ascii_ = np.ones(n, np.bool_)
    printable = np.zeros(n, np.bool_)
    brackets = np.zeros(n, np.int64)
    starts = np.zeros(n, np.int64)
    ends = np.zeros(n, np.int64)
    words = np.zeros(n, np.int64)
    hashes = np.empty(n, np.uint64)
    for i in range(n):
        h = fnv_offset
        inside = False
        count = 0
        end = offsets[i + 1]
        for k in range(offsets[i], end):
            byte = data[k]
            if byte >= 128:
                ascii_[i] = False
            elif 33 <= byte <= 126:
                printable[i] = True
                if byte == 91:  # [
                    brackets[i] += 1
                elif byte == 60 and k + 3 < end and data[k + 3] == 62:  # <..>
                    if data[k + 1] == 115 and data[k + 2] == 116:  # st
                        starts[i] += 1
                    elif data[k + 1] == 101 and data[k + 2] == 100:  # ed
                        ends[i] += 1
            if whitespace[byte]:
                inside = False
                continue
            if not inside:
                inside = True
                if count:
                    h = (h ^ np.uint64(32)) * fnv_prime
                count += 1
            if 65 <= byte <= 90:
                byte += 32
            h = (h ^ np.uint64(byte)) * fnv_prime
        words[i] = count
        hashes[i] = h
    return ascii_, printable, brackets, starts, ends, words, hashes


@dataclass
class TurnScan:
    """What one pass over each text finds: ASCII only, any printable ASCII character (``[!-~]``), the
    counts of ``[``, ``<st>`` and ``<ed>``, whitespace words, and the hash of the normalized text
    (exact for ASCII texts; see :func:`normalized_hashes`)."""

    ascii: np.ndarray
    printable: np.ndarray
    brackets: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    words: np.ndarray
    hashes: np.ndarray

    def patch(self, at: np.ndarray, other: TurnScan) -> None:
        """Replace the entries at ``at`` by ``other``'s (texts that changed)."""
        for name in self.__dataclass_fields__:
            getattr(self, name)[at] = getattr(other, name)


def scan(values: pa.Array) -> TurnScan:
    data, offsets = text_bytes(values)
    return TurnScan(*_scan(data, offsets, WHITESPACE, _FNV_OFFSET, _FNV_PRIME))


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
