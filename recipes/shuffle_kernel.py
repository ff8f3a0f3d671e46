"""numpy's seeded permutation, compiled: ``np.random.default_rng(seed).permutation(n)``, the same integers.

Why: selection draws two seeded permutations of the candidates (the greedy's ties, the diagnostics'
random reference), 0.25-0.35 s each at 2.4M candidates in numpy, where every step of its Fisher-Yates
loop draws a bounded integer, then swaps at a random place (a cache miss the next draw's rejection
branch keeps from overlapping). Here the draws come first, all of them, then the swaps, which no longer
wait on one another.

The draws replay numpy's: PCG64 (128-bit LCG, XSL-RR output) from the generator's state, 32-bit outputs
taken two per 64-bit output as numpy buffers them, and numpy's ``random_interval`` (mask rejection) for
``i = n-1 .. 1``; the test compares the result with numpy's for many sizes and seeds.
"""

from __future__ import annotations

import numba
import numpy as np

# From this many on, random_order uses the compiled replay (below, numba's set-up in a fresh process,
# about 0.6 s, would cost more than it saves: the compiled greedy starts at the same size).
COMPILED_FROM = 1_000_000
_MULTIPLIER_HI = np.uint64(0x2360ED051FC65DA4)
_MULTIPLIER_LO = np.uint64(0x4385DF649FCCF645)
_LOW32 = np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, nogil=True, inline="always")
def _mulhi(a, b):  # pragma: no cover
    """The high 64 bits of the 128-bit product of two uint64."""
    a_lo, a_hi = a & _LOW32, a >> np.uint64(32)
    b_lo, b_hi = b & _LOW32, b >> np.uint64(32)
    p0, p1, p2, p3 = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (p0 >> np.uint64(32)) + (p1 & _LOW32) + (p2 & _LOW32)
    return p3 + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (mid >> np.uint64(32))


@numba.njit(cache=True, nogil=True)
def draws(state_hi, state_lo, inc_hi, inc_lo, has_uint32, uinteger, n):  # pragma: no cover
    """``j`` of every Fisher-Yates step ``i = n-1 .. 1`` (at index ``i``), as numpy's ``random_interval``."""
    out = np.zeros(max(n, 1), np.int64)
    hi, lo = state_hi, state_lo
    buffered, spare = has_uint32, uinteger
    for i in range(n - 1, 0, -1):
        bound = np.uint64(i)
        mask = bound
        for shift in (1, 2, 4, 8, 16, 32):
            mask |= mask >> np.uint64(shift)
        while True:
            if buffered:
                value = spare
                buffered = False
            else:  # one PCG64 step: state = state * multiplier + increment (mod 2^128), then XSL-RR
                new_hi = hi * _MULTIPLIER_LO + lo * _MULTIPLIER_HI + _mulhi(lo, _MULTIPLIER_LO)
                new_lo = lo * _MULTIPLIER_LO
                lo = new_lo + inc_lo
                hi = new_hi + inc_hi + (np.uint64(1) if lo < new_lo else np.uint64(0))
                rotation = hi >> np.uint64(58)
                mixed = hi ^ lo
                output = (mixed >> rotation) | (mixed << ((np.uint64(64) - rotation) & np.uint64(63)))
                spare = output >> np.uint64(32)
                buffered = True
                value = output & _LOW32
            value &= mask
            if value <= bound:
                break
        out[i] = value
    return out


@numba.njit(cache=True, nogil=True)
def swaps(j):  # pragma: no cover
    """``arange(n)`` shuffled by the Fisher-Yates steps ``j`` (step ``i`` swaps places ``i`` and ``j[i]``)."""
    n = len(j)
    out = np.arange(n)
    for i in range(n - 1, 0, -1):
        k = j[i]
        out[i], out[k] = out[k], out[i]
    return out


def permutation(n: int, seed: int) -> np.ndarray:
    """``np.random.default_rng(seed).permutation(n)``, compiled (module docstring)."""
    state = np.random.default_rng(seed).bit_generator.state
    if state["bit_generator"] != "PCG64" or n >= 1 << 32:  # numpy draws 64-bit intervals from 2^32 on
        return np.random.default_rng(seed).permutation(n)
    s, inc = state["state"]["state"], state["state"]["inc"]
    mask = (1 << 64) - 1
    j = draws(
        np.uint64(s >> 64), np.uint64(s & mask), np.uint64(inc >> 64), np.uint64(inc & mask),
        bool(state["has_uint32"]), np.uint64(state["uinteger"]), n,
    )  # fmt: skip
    return swaps(j[:n])
