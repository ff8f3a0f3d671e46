"""The MinHash signature of one document from its word hashes, and the signature constants: the compiled
core of :mod:`svit_data.quality.near_duplicates`, whose docstring states the rule."""

from __future__ import annotations

import numba
import numpy as np

BINS = 128
BANDS = 16  # 8 one-byte values per band: a band is one uint64
THRESHOLD = 0.8
_EMPTY = np.uint64(2**64 - 1)
_LOW_BITS = np.uint64(0x0101010101010101)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_P1, _P2, _GOLD = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)


@numba.njit(cache=True, nogil=True)
def _mix_one(x):  # pragma: no cover - compiled
    """splitmix64's finalizer: a fixed 64-bit mixer (deterministic across runs and machines)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@numba.njit(inline="always")
def _top_byte(x):  # pragma: no cover - compiled
    """The top 8 bits of :func:`_mix_one` (its last step does not change them)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    return np.uint8((x * _M2) >> np.uint64(56))


@numba.njit(cache=True, nogil=True)
def _minhash(words, start, end, out, bins, shingles, p1, p2, gold):  # pragma: no cover - compiled
    """The signature of the document with word hashes ``words[start:end]``, written into ``out``;
    ``bins`` (``BINS`` values) and ``shingles`` (``end - start`` values at least) are scratch space, one
    per caller. The mixes of all shingles, and of all bins at the end, are loops of their own, which the
    compiler vectorizes."""
    low = np.uint64(2**57 - 1)
    bins[:] = _EMPTY
    count = end - start - 2
    for k in range(count):
        shingles[k] = _mix_one(words[start + k] * p1 + words[start + k + 1] * p2 + words[start + k + 2])
    for k in range(count):
        shingle = shingles[k]
        b = shingle >> np.uint64(57)
        bins[b] = min(bins[b], shingle & low)
    first = -1
    for b in range(BINS):
        if bins[b] != _EMPTY:
            first = b
            break
    if first < 0:  # no shingle at all: every bin borrows the empty value from afar
        for b in range(BINS):
            out[b] = np.uint8(_mix_one(_EMPTY + np.uint64(3 * BINS - 1 - b) * gold) >> np.uint64(56))
        return
    # right to left, without branches: each bin becomes its source value (its own, or that of the next
    # non-empty bin to the right, circularly) plus its distance to it times gold, counted up one gold
    # per empty bin from the first non-empty bin's distance to the end
    source = bins[first]
    offset = np.uint64(first) * gold
    for b in range(BINS - 1, -1, -1):
        value = bins[b]
        full = value != _EMPTY
        source = value if full else source
        offset = np.uint64(0) if full else offset + gold
        bins[b] = source + offset
    for b in range(BINS):
        out[b] = _top_byte(bins[b])
