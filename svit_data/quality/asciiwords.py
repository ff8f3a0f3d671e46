"""The word hashes of an ASCII text, 8 bytes at a time: the compiled front of the near-duplicate signatures.

A word is a run of bytes that are not whitespace (:data:`svit_data.quality.textscan.WHITESPACE`: 9-13
and 28-32, where ``str.split()`` splits ASCII text); its hash is ``zlib.crc32`` of its lowercased bytes.
A byte at a time, that is a lookup, a branch and a table CRC-32 step per byte, each step waiting for the
last. Here instead:

* :func:`_nonspace_bits` compares 8 bytes at once (for bytes below 128, ``x + (128 - c)`` has its top bit
  set exactly when ``x >= c``, with no carry into the next byte) and packs the result into one bit per
  byte, 64 bytes per uint64;
* :func:`word_hashes` walks the bits where a word starts, takes the word's length from the bits, reads
  its first 8 bytes as one uint64 and lowercases them at once. Those bytes (the whole word for nearly
  all words) are looked up in a small cache of CRC-32 registers; a miss, and the rest of a longer word,
  take a slicing-by-8 CRC-32 step (8 independent table lookups per 8 bytes instead of a chain of 8).

The CRC-32 register is linear: the register after bytes ``d`` from register ``s`` is the register after
``d`` from 0, XOR the register after as many zero bytes from ``s``; and zero bytes in front of a
message leave the register 0 at 0. So a chunk of ``c`` bytes (1-8) is one slicing-by-8 step over the
chunk XOR ``s``, shifted to the top of 8 bytes, plus the bytes of ``s`` that the chunk does not reach
(``c < 4``). The values are those of ``zlib.crc32``, checked against it in the tests.
"""

from __future__ import annotations

import numba
import numpy as np

from svit_data.quality.swar import load8, trailing_zeros
from svit_data.quality.textscan import CRC

_TOPS = np.uint64(0x8080808080808080)
# (top bits >> 7) * _PACK gathers the 8 byte flags into the top byte, bit j from byte j (no carries)
_PACK = np.uint64(0x0102040810204080)
_AT_LEAST = {c: np.uint64((128 - c) * 0x0101010101010101) for c in (9, 14, 28, 33, 65, 91)}
_GE9, _GE14, _GE28, _GE33 = (_AT_LEAST[c] for c in (9, 14, 28, 33))
_GE65, _GE91 = _AT_LEAST[65], _AT_LEAST[91]
_FULL = np.uint64(0xFFFFFFFF)
# the word cache: 2**_CACHE_BITS slots of (key, CRC register after the word's first 8 bytes at most)
_CACHE_BITS = 12
_CACHE_MUL = np.uint64(0x9E3779B97F4A7C15)


def _slicing_tables() -> np.ndarray:
    """Table ``j`` (of 8, flattened): the register after byte ``x`` and then ``j`` zero bytes, from 0."""
    tables = np.empty((8, 256), np.uint32)
    tables[0] = CRC
    for j in range(1, 8):
        tables[j] = (tables[j - 1] >> np.uint32(8)) ^ CRC[tables[j - 1] & np.uint32(0xFF)]
    return tables.reshape(-1)


SLICES = _slicing_tables()


@numba.njit(cache=True, nogil=True)
def word_cache():  # pragma: no cover - compiled
    """Scratch space for :func:`word_hashes` (one per caller; empty slots hold key 0, never a word's)."""
    return np.zeros(2 << _CACHE_BITS, np.uint64)


@numba.njit(inline="always")
def _load(data, at, inside):  # pragma: no cover - compiled
    """8 bytes from ``at`` (zeros past the end of ``data``); ``inside``: the caller knows they are in it."""
    if inside or at + 8 <= len(data):
        return load8(data, at)
    value = np.uint64(0)
    for j in range(len(data) - at):
        value |= np.uint64(data[at + j]) << np.uint64(8 * j)
    return value


@numba.njit(inline="always")
def _lower(x):  # pragma: no cover - compiled
    """ASCII bytes lowercased: 0x20 added to each byte of 65-90 (carries only reach higher bytes)."""
    return x | ((((x + _GE65) & ~(x + _GE91)) & _TOPS) >> np.uint64(2))


@numba.njit(inline="always")
def _crc_step(register, x, c, tables):  # pragma: no cover - compiled
    """The CRC-32 register after the ``c`` (1-8) low bytes of ``x``, from ``register``."""
    x = (x ^ register) << np.uint64(8 * (8 - c))
    sliced = (
        tables[7 * 256 + (x & np.uint64(0xFF))]
        ^ tables[6 * 256 + ((x >> np.uint64(8)) & np.uint64(0xFF))]
        ^ tables[5 * 256 + ((x >> np.uint64(16)) & np.uint64(0xFF))]
        ^ tables[4 * 256 + ((x >> np.uint64(24)) & np.uint64(0xFF))]
        ^ tables[3 * 256 + ((x >> np.uint64(32)) & np.uint64(0xFF))]
        ^ tables[2 * 256 + ((x >> np.uint64(40)) & np.uint64(0xFF))]
        ^ tables[256 + ((x >> np.uint64(48)) & np.uint64(0xFF))]
        ^ tables[x >> np.uint64(56)]
    )
    return np.uint64(sliced) ^ ((register >> np.uint64(8 * c - 1)) >> np.uint64(1))


@numba.njit(inline="always")
def _nonspace_bits(data, start, end, bits, inside):  # pragma: no cover - compiled
    """Bit ``i`` of ``bits`` (uint64, at least ``(end - start) // 64 + 2`` of them) set when byte
    ``start + i`` of the ASCII ``data`` is not whitespace; 0 from ``end`` on. Returns the words used.
    ``inside``: ``data`` has 7 bytes at least after ``end`` (no 8-byte read needs a bounds check)."""
    size = end - start
    used = (size + 63) // 64
    for w in range(used):
        acc = np.uint64(0)
        base = start + 64 * w
        for j in range(min(8, (size - 64 * w + 7) // 8)):
            x = _load(data, base + 8 * j, inside)
            space = ((x + _GE9) & ~(x + _GE14)) | ((x + _GE28) & ~(x + _GE33))
            acc |= ((((~space & _TOPS) >> np.uint64(7)) * _PACK) >> np.uint64(56)) << np.uint64(8 * j)
        bits[w] = acc
    if size % 64:
        bits[used - 1] &= (np.uint64(1) << np.uint64(size % 64)) - np.uint64(1)
    bits[used] = 0
    return used


@numba.njit(inline="always")
def _word_hashes(data, start, end, bits, out, cache, tables, inside):  # pragma: no cover - compiled
    """:func:`word_hashes`; ``inside``: ``data`` has 7 bytes at least after ``end``."""
    used = _nonspace_bits(data, start, end, bits, inside)
    count = np.uint64(0)  # unsigned: an index that needs no check for negative values
    previous = np.uint64(0)
    for w in range(used):
        word = bits[w]
        starts = word & ~((word << np.uint64(1)) | (previous >> np.uint64(63)))
        previous = word
        spaces = ~word
        following = ~bits[w + 1]
        while starts:
            bit = trailing_zeros(starts)
            starts &= starts - np.uint64(1)
            # the first whitespace bit at or after the start, within this word and the next one
            ahead = (spaces >> bit) | ((following << np.uint64(1)) << (np.uint64(63) - bit))
            if ahead:
                length = np.int64(trailing_zeros(ahead))
            else:  # 64 bytes or more: count on word by word
                length = np.int64(64) - np.int64(bit)
                k = w + 1
                while bits[k] == np.uint64(0xFFFFFFFFFFFFFFFF):
                    length += 64
                    k += 1
                length += np.int64(trailing_zeros(~bits[k]))
            at = start + 64 * w + np.int64(bit)
            c = min(length, 8)
            x = _lower(_load(data, at, inside))
            # the key: the word's bytes (all below 128) moved to the top, the top bit of its first byte
            # set: the lowest byte with its top bit set says where the word starts, so no two words
            # (NUL bytes included) share a key, and no key is 0
            key = (x | np.uint64(0x80)) << np.uint64(64 - 8 * c)
            slot = ((key * _CACHE_MUL) >> np.uint64(64 - _CACHE_BITS)) * np.uint64(2)
            if cache[slot] == key:
                register = cache[slot + np.uint64(1)]
            else:
                register = _crc_step(_FULL, x, c, tables)
                cache[slot] = key
                cache[slot + np.uint64(1)] = register
            while length > 8:
                at += 8
                length -= 8
                register = _crc_step(register, _lower(_load(data, at, inside)), min(length, 8), tables)
            out[count] = register ^ _FULL
            count += np.uint64(1)
    return np.int64(count)


@numba.njit(cache=True, nogil=True)
def word_hashes(data, start, end, bits, out, cache, tables):  # pragma: no cover - compiled
    """``zlib.crc32`` of each lowercased word of the ASCII ``data[start:end]``, in order, into ``out``
    (at least ``(end - start + 1) // 2`` long); returns how many. ``bits``: scratch of
    ``(end - start) // 64 + 2`` uint64; ``cache``: :func:`word_cache`; ``tables``: :data:`SLICES`."""
    if end + 7 <= len(data):  # all but the last texts of a buffer: 8-byte reads need no bounds
        return _word_hashes(data, start, end, bits, out, cache, tables, True)
    return _word_hashes(data, start, end, bits, out, cache, tables, False)
