"""Compiled loops of the diversity greedy (:mod:`~svit_data.recipes.diversity`): gains over the CSR, one
pass per round that keeps each stratum's best ``k`` and skips candidates whose bound cannot win, and the
sort of the candidates left by gain (plus the diagnostics' pass over the CSR).

Every numba function of the greedy is in this file: numba caches a compiled function per source file and
does not notice edits to the functions it inlined from another file.

Bounds. A candidate's gain is ``sum_c p_c`` over its concepts, ``p`` the round's per-concept value.
When no ``p_c`` grew since a candidate's gain was last computed, that old gain bounds the new one from
above, float for float: the sum runs over the same entries in the same order, and rounded addition is
monotone in each operand. A round scans the candidates in pool order, keeping per stratum the best
``k`` seen so far (a heap whose root is the worst of them, by gain, ties by seeded rank); once ``k`` are
kept, a candidate whose bound is below the root's gain cannot enter and its gain is not recomputed.
The result is exactly the ``k`` of highest gain, ties by seeded rank, that a full mat-vec and a sort
give.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def row_sums(indptr, indices, rows, values):  # pragma: no cover
    """``(M @ values)[rows]`` for the 0/1 structure ``M`` (scipy's ``csr_matvec`` order: the same floats)."""
    out = np.empty(len(rows), np.float64)
    for i in range(len(rows)):
        total = 0.0
        for j in range(indptr[rows[i]], indptr[rows[i] + 1]):
            total += values[indices[j]]
        out[i] = total
    return out


@numba.njit(cache=True, nogil=True)
def add_counts(indptr, indices, rows, picked, counts):  # pragma: no cover
    """``counts += np.bincount(M[rows[picked]].indices)``: a round's picks added to the per-concept counts."""
    for i in picked:
        for j in range(indptr[rows[i]], indptr[rows[i] + 1]):
            counts[indices[j]] += 1.0


@numba.njit(cache=True, nogil=True, inline="always")
def _after(gain_a, rank_a, gain_b, rank_b):  # pragma: no cover
    """A candidate of (``gain_a``, ``rank_a``) comes after one of (``gain_b``, ``rank_b``)."""
    return gain_a < gain_b or (gain_a == gain_b and rank_a > rank_b)


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_down(gains, ranks, items, size):  # pragma: no cover
    """Restore the heap (root: the candidate that comes last) after its root was replaced. The keys live
    in the heap's own arrays: no reads scattered over the candidates."""
    gain, rank, item = gains[0], ranks[0], items[0]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _after(gains[child + 1], ranks[child + 1], gains[child], ranks[child]):
            child += 1
        if not _after(gains[child], ranks[child], gain, rank):
            break
        gains[pos], ranks[pos], items[pos] = gains[child], ranks[child], items[child]
        pos = child
    gains[pos], ranks[pos], items[pos] = gain, rank, item


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_up(gains, ranks, items, pos):  # pragma: no cover
    """Restore the heap after a candidate was put at ``pos`` (the last place)."""
    gain, rank, item = gains[pos], ranks[pos], items[pos]
    while pos > 0:
        parent = (pos - 1) // 2
        if not _after(gain, rank, gains[parent], ranks[parent]):
            break
        gains[pos], ranks[pos], items[pos] = gains[parent], ranks[parent], items[parent]
        pos = parent
    gains[pos], ranks[pos], items[pos] = gain, rank, item


@numba.njit(cache=True, nogil=True)
def round_top(
    indptr, indices, rows, values, group, rank, bound, takes, bounded, start, stop
):  # pragma: no cover
    """Per stratum ``t`` the ``takes[t]`` candidates of highest gain against ``values`` (ties: lower
    ``rank``) among candidates ``start..stop-1`` with ``group == t`` (picked ones have group -1), as rows
    of a ``(strata, max take)`` array with their counts, and the number of gains computed. Candidate ``i``
    is row ``rows[i]`` of the CSR. ``bound`` holds each candidate's last computed gain (updated in place);
    with ``bounded`` False every candidate of a stratum that takes is recomputed."""
    strata = len(takes)
    width = max(1, takes.max())
    gains = np.empty((strata, width), np.float64)
    ranks = np.empty((strata, width), np.int64)
    items = np.empty((strata, width), np.int64)
    size = np.zeros(strata, np.int64)
    floor = np.full(strata, -np.inf)  # once a stratum keeps its k: the gain of the worst of them
    computed = 0
    for i in range(start, stop):
        t = group[i]
        if t < 0 or t >= strata:  # picked, or in no stratum with a quota
            continue
        k = takes[t]
        if k == 0 or (bounded and bound[i] < floor[t]):
            continue
        total = 0.0
        for j in range(indptr[rows[i]], indptr[rows[i] + 1]):
            total += values[indices[j]]
        bound[i] = total
        computed += 1
        if size[t] < k:
            at = size[t]
            gains[t, at], ranks[t, at], items[t, at] = total, rank[i], i
            size[t] += 1
            _sift_up(gains[t], ranks[t], items[t], at)
        elif _after(gains[t, 0], ranks[t, 0], total, rank[i]):
            gains[t, 0], ranks[t, 0], items[t, 0] = total, rank[i], i
            _sift_down(gains[t], ranks[t], items[t], k)
        else:
            continue
        if size[t] == k:
            floor[t] = gains[t, 0]
    return items, size, computed


@numba.njit(cache=True, nogil=True)
def by_gain(items, gain):  # pragma: no cover
    """``items`` by ``gain`` descending, ties in their given order: ``items[np.argsort(-gain[items],
    kind="stable")]`` by a stable LSD radix sort on the floats' bits (four 16-bit digits; a digit that
    every key shares is skipped), several times faster than numpy's stable sort of float64."""
    n = len(items)
    negated = np.empty(n, np.float64)
    for i in range(n):
        x = -gain[items[i]]
        if x == 0.0:
            x = 0.0  # -0.0 and 0.0 are equal keys
        elif x != x:
            x = np.nan  # one NaN, after everything, as numpy sorts it
        negated[i] = x
    keys = negated.view(np.uint64)
    sign = np.uint64(1) << np.uint64(63)
    for i in range(n):  # order-preserving map of the floats to unsigned integers
        keys[i] = ~keys[i] if keys[i] & sign else keys[i] | sign
    src_keys, src_items = keys, items.copy()
    dst_keys, dst_items = np.empty_like(keys), np.empty_like(src_items)
    mask = np.uint64(0xFFFF)
    for shift in range(0, 64, 16):
        at = np.zeros(65536, np.int64)
        for i in range(n):
            at[(src_keys[i] >> np.uint64(shift)) & mask] += 1
        if at.max() == n:
            continue
        total = 0
        for d in range(65536):
            total, at[d] = total + at[d], total
        for i in range(n):
            d = (src_keys[i] >> np.uint64(shift)) & mask
            dst_keys[at[d]] = src_keys[i]
            dst_items[at[d]] = src_items[i]
            at[d] += 1
        src_keys, dst_keys = dst_keys, src_keys
        src_items, dst_items = dst_items, src_items
    return src_items


@numba.njit(cache=True, nogil=True)
def mentioned(indptr, indices, rows, num_concepts):  # pragma: no cover
    """Per concept, whether any of the CSR's ``rows`` names it (``np.bincount(M[rows].indices) > 0``
    without copying the rows or numpy's int64 copy of the indices; for the diagnostics' coverage)."""
    out = np.zeros(num_concepts, np.bool_)
    for row in rows:
        for j in range(indptr[row], indptr[row + 1]):
            out[indices[j]] = True
    return out
