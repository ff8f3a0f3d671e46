"""Selection: pure functions from the candidates' matrix and columns to sorted candidate indices.

Every function is deterministic given its inputs and ``seed`` (numpy PCG64), costs O(n log n + nnz),
and never edits text. Indices refer to rows of :class:`Candidates`; the build maps them to sample ids.

random
    ``size`` candidates uniformly at random: the first ``size`` of a seeded permutation.

diversity
    Let ``C(s)`` be the concepts sample ``s`` mentions, ``w_c`` the concept weights and
    ``b(s) = sum_{c in C(s)} w_c`` its overlap with the concept set. Order the samples that mention
    concept ``c`` by ``b`` descending, ties by the seeded permutation, and let ``r_c(s)`` (0, 1, 2, ...)
    be the position of ``s`` in that order. The score is

        score(s) = sum_{c in C(s)} w_c / (1 + r_c(s)) ** decay        (decay = 1 by default)

    and the ``size`` samples of highest score are selected (ties by the seeded permutation; samples
    mentioning no concept score 0 and come last). Why: a concept's first samples earn its full weight and
    later ones ever less (diminishing returns, harmonic for decay 1), so a sample mentioning a rare
    concept outranks one repeating common concepts, and coverage spreads over all concepts instead of
    piling onto common ones. It is the greedy order of the coverage objective
    ``F(S) = sum_c w_c * sum_{k=1..|S ∩ P_c|} k ** -decay`` under the approximation that each concept's
    samples are taken in rank order; unlike a lazy greedy it is closed-form: one sort of the samples, one
    CSC conversion of the matrix, one sort of the scores.

balance
    Walk a priority order (random for ``balance``, the diversity order for ``core``) and take the first
    ``size`` samples; call a sample *excess* when it leans toward the side of the target yes share that
    this selection overshoots (``yes * (1 - t) > no * t`` when there are too many yes answers). Keep the
    ``k`` highest-priority excess samples and fill the other ``size - k`` places with the highest-priority
    other samples, choosing ``k`` so that the yes share is closest to the target ``t`` (ties: larger
    ``k``). Only whole samples are chosen or dropped.

core
    The diversity order, then balance, at the target size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from svit_data.recipes.yesno import ratio_report, yes_share

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidates:
    """What selection sees: the candidates' concept matrix and yes/no counts, in pool order."""

    matrix: sp.csr_matrix  # candidates x concepts (any nonzero value means "mentions")
    yes: np.ndarray
    no: np.ndarray
    weights: np.ndarray  # w_c per concept

    @property
    def size(self) -> int:
        return self.matrix.shape[0]


@dataclass(frozen=True)
class BalanceReport:
    before: dict[str, float | int]  # the same-size selection without balancing
    after: dict[str, float | int]
    reached: bool  # |share - target| <= tolerance
    note: str = ""


def random_order(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)``."""
    return np.random.default_rng(seed).permutation(n)


def _tie_rank(n: int, seed: int) -> np.ndarray:
    """Position of each index in the seeded permutation (used to break ties)."""
    rank = np.empty(n, np.int64)
    rank[random_order(n, seed)] = np.arange(n)
    return rank


CHUNK_ENTRIES = 1 << 23  # matrix entries per step when summing gains (bounds temporary memory)


def diversity_scores(candidates: Candidates, *, seed: int, decay: float = 1.0) -> np.ndarray:
    """``score(s)`` of the module docstring for every candidate.

    Only the matrix structure matters. Rows are gathered in priority order and converted to CSC, a
    counting sort that keeps that order inside each concept column, so an entry's rank in its concept
    is its offset in the column; gains are summed per row in chunks of columns.
    """
    m = candidates.matrix
    n, num_concepts = m.shape
    weights = np.asarray(candidates.weights, np.float64)
    if np.all(weights == weights[0]):
        overlap = np.diff(m.indptr) * weights[0]
    else:
        overlap = np.zeros(n)
        for lo in range(0, n, 1 << 18):
            hi = min(n, lo + (1 << 18))
            part = m.indices[m.indptr[lo] : m.indptr[hi]]
            rows = np.repeat(np.arange(hi - lo), np.diff(m.indptr[lo : hi + 1]))
            overlap[lo:hi] = np.bincount(rows, weights=weights[part], minlength=hi - lo)
    order = np.lexsort((_tie_rank(n, seed), -overlap))  # overlap descending, ties by the permutation
    structure = sp.csr_matrix((np.ones(m.nnz, np.uint8), m.indices, m.indptr), shape=m.shape)
    by_priority = structure[order].tocsc()  # rows ascend within each column = priority order
    del structure
    indptr, rows = by_priority.indptr, by_priority.indices
    score_by_priority = np.zeros(n, np.float64)
    first = 0
    while first < num_concepts:
        last = first + 1
        while last < num_concepts and indptr[last + 1] - indptr[first] <= CHUNK_ENTRIES:
            last += 1
        lengths = np.diff(indptr[first : last + 1])
        rank = np.arange(indptr[first], indptr[last]) - np.repeat(indptr[first:last], lengths)
        gain = np.repeat(weights[first:last], lengths) / np.power(1.0 + rank, decay)
        score_by_priority += np.bincount(rows[indptr[first] : indptr[last]], weights=gain, minlength=n)
        first = last
    score = np.empty(n, np.float64)
    score[order] = score_by_priority
    return score


def diversity_order(candidates: Candidates, *, seed: int, decay: float = 1.0) -> np.ndarray:
    """Candidates by diversity score descending, ties by the seeded permutation."""
    score = diversity_scores(candidates, seed=seed, decay=decay)
    return np.lexsort((_tie_rank(candidates.size, seed), -score))


def select_random(candidates: Candidates, size: int, *, seed: int) -> np.ndarray:
    return np.sort(random_order(candidates.size, seed)[:size])


def select_diversity(candidates: Candidates, size: int, *, seed: int, decay: float = 1.0) -> np.ndarray:
    return np.sort(diversity_order(candidates, seed=seed, decay=decay)[:size])


def balance_order(
    order: np.ndarray,
    yes: np.ndarray,
    no: np.ndarray,
    size: int,
    *,
    target: float = 0.5,
    tolerance: float = 0.02,
) -> tuple[np.ndarray, BalanceReport]:
    """``size`` indices from ``order`` (priority first) with a yes share closest to ``target``."""
    top = order[:size]
    before = ratio_report(yes[top].sum(), no[top].sum())
    total_yes, total_no = int(yes[order].sum()), int(no[order].sum())
    if total_yes + total_no == 0:
        note = f"no yes/no answers among {len(order):,} candidates: nothing to balance, selection left as is"
        log.warning("balance: %s", note)
        return np.sort(top), BalanceReport(before, before, False, note)
    share = yes_share(before["yes"], before["no"])
    too_many_yes = share > target
    y, n = yes[order].astype(np.int64), no[order].astype(np.int64)
    excess = (y * (1 - target) > n * target) if too_many_yes else (n * target > y * (1 - target))
    ex, other = order[excess], order[~excess]
    ey, en, oy, on = y[excess], n[excess], y[~excess], n[~excess]
    k0 = int(excess[:size].sum())
    k = np.arange(max(0, size - len(other)), k0 + 1)
    cum = lambda a: np.concatenate([[0], np.cumsum(a)])  # noqa: E731
    yes_k = cum(ey)[k] + cum(oy)[size - k]
    no_k = cum(en)[k] + cum(on)[size - k]
    with np.errstate(invalid="ignore", divide="ignore"):
        share_k = np.where(yes_k + no_k > 0, yes_k / np.maximum(yes_k + no_k, 1), np.nan)
    distance = np.where(np.isnan(share_k), np.inf, np.abs(share_k - target))
    best = len(k) - 1 - int(np.argmin(distance[::-1]))  # closest; ties: larger k
    kb = int(k[best])
    picked = np.sort(np.concatenate([ex[:kb], other[: size - kb]]))
    after = ratio_report(int(yes_k[best]), int(no_k[best]))
    reached = bool(abs(after["yes_share"] - target) <= tolerance)
    note = ""
    if not reached and after["yes"] + after["no"] == 0:
        note = f"the {size:,} samples selected hold no yes/no answers: nothing to balance at this size"
        log.warning("balance: %s", note)
    elif not reached:
        note = (
            f"could reach a yes share of {after['yes_share']:.3f} only (target {target} +- {tolerance}): "
            f"the {len(order):,} candidates have {total_yes:,} yes and {total_no:,} no answers"
        )
        log.warning("balance: %s", note)
    return picked, BalanceReport(before, after, reached, note)


def select_balance(
    candidates: Candidates, size: int, *, seed: int, target: float = 0.5, tolerance: float = 0.02
) -> tuple[np.ndarray, BalanceReport]:
    order = random_order(candidates.size, seed)
    return balance_order(order, candidates.yes, candidates.no, size, target=target, tolerance=tolerance)


def select_core(
    candidates: Candidates,
    size: int,
    *,
    seed: int,
    decay: float = 1.0,
    target: float = 0.5,
    tolerance: float = 0.02,
) -> tuple[np.ndarray, BalanceReport]:
    order = diversity_order(candidates, seed=seed, decay=decay)
    return balance_order(order, candidates.yes, candidates.no, size, target=target, tolerance=tolerance)
