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
