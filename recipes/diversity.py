"""Diversity: a batched greedy maximization of concept coverage with diminishing returns.

Objective. Let ``P_c`` be the candidates that mention concept ``c``, ``w_c`` its weight and ``S`` the
selection. Diversity maximizes

    F(S) = sum_c w_c * g(|S ∩ P_c|),    g(k) = sum_{j=1..k} j ** -decay        (decay = 1 by default)

subject to the task quotas (``|S ∩ task t| = quota_t``, :mod:`~svit_data.recipes.strata`) with
``task_mix="candidates"``, or ``|S| = size`` with ``"free"``. The ``(k+1)``-th sample of a concept adds
``w_c * (k + 1) ** -decay``: with decay 1, ``g`` is the harmonic number ``H_k ≈ log(k) + 0.58``, i.e.
``log(1 + k)``-like diminishing returns; ``decay -> 0`` removes them (F counts mentions, so samples with
many concepts win), a large decay approaches set cover (only a concept's first sample counts). Why this
``g``: it is concave, so F is monotone submodular and greedy is the classic approximation (``1 - 1/e``
for one size, ``1/2`` under per-task quotas); and ``decay`` keeps its meaning, the exponent of the
per-concept diminishing returns. Counts ``|S ∩ P_c|`` are over the whole selection, across tasks:
coverage is a property of the data the model trains on, the quotas only say how much of each task.

Algorithm (batched greedy, ``rounds`` = R, default 16). In round ``r = 0..R-1`` every unselected
candidate's gain is ``F(S + s) - F(S)``, all at once as one sparse mat-vec
``gain = M @ (w * (k + 1) ** -decay)`` (``M`` the 0/1 sample x concept matrix, ``k`` the per-concept
counts of the selection so far); each task ``t`` then takes its ``ceil(left_t / (R - r))`` unselected
candidates of highest gain (``left_t`` = its quota not yet filled), ties by the seeded permutation, and
the counts are updated. With R >= the largest quota every round takes at most one sample per task: the
exact greedy; larger batches trade that exactness for speed, O(R * nnz + n log n) in all.
Deterministic given the seed (numpy PCG64). Samples of zero gain (no concept, or only concepts whose
weight is 0) come after every sample of positive gain, in the seeded order.

Order. :func:`diversity_order` is the order of picking: round by round, inside a round by gain
descending (ties: seeded permutation); then every candidate not picked, by its gain against the final
selection, descending (ties: seeded permutation). Its first ``quota_t`` samples of each task are the
greedy selection; balance (:func:`~svit_data.recipes.selection.select_core`) walks it further.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from svit_data.recipes import shuffle_kernel
from svit_data.recipes.candidates import Candidates, Ranked, best, random_order
from svit_data.recipes.greedy_kernel import add_counts, by_gain, mentioned, round_top, row_sums
from svit_data.recipes.strata import split_order

log = logging.getLogger(__name__)

# From this many candidates on the greedy's rounds are compiled passes; below, numpy's mat-vec and
# partitions: the first compiled call in a process sets numba up (about 0.6 s), more than it saves there.
COMPILED_FROM = 1_000_000
# Threads for a round's pass over the candidates, from this many candidates on (below, one thread: the
# pass takes well under a millisecond per 10,000 candidates and threads cost more than they save).
WORKERS = max(1, min(2, os.cpu_count() or 1))
PARALLEL_FROM = 200_000
ROUNDS = 16  # batched greedy rounds: 16 mat-vecs over the SVIT matrix (~45M nonzeros) stay well < 15 s


def warm_up() -> threading.Thread:
    """Load the compiled rounds in a background thread (started, and returned).

    numba's first compiled call in a process sets numba up (imports, then each function's cached machine
    code): 0.6-0.9 s. A build about to select among at least :data:`COMPILED_FROM` candidates starts this
    before it loads the matrix, so the set-up overlaps the loading (which releases the GIL) instead of
    delaying the first round. A call of a function still loading waits for numba's compiler lock.
    """
    thread = threading.Thread(target=_tiny_greedy, name="svit-greedy-warm-up", daemon=True)
    thread.start()
    return thread


def _tiny_greedy() -> None:
    """The compiled greedy, the diagnostics' pass and the seeded permutation on a 2 x 2 matrix: the argument
    types of a real build."""
    try:
        matrix = sp.csr_matrix(np.eye(2, dtype=np.uint8))
        _compiled_order(matrix, np.ones(2), np.zeros(2, np.int64), np.array([1]), seed=0, decay=1.0, rounds=1)
        mentioned(matrix.indptr, matrix.indices, np.arange(2), 2)
        shuffle_kernel.permutation(2, 0)
    except Exception:  # only a head start: the build's own calls compile or fail for themselves
        log.debug("warming up the compiled greedy failed", exc_info=True)


def marginal_gain(counts: np.ndarray, decay: float) -> np.ndarray:
    """``g(k + 1) - g(k) = (k + 1) ** -decay`` per concept, for the current counts ``k``."""
    return np.power(counts + 1.0, -decay)


def coverage_objective(matrix: sp.csr_matrix, weights: np.ndarray, rows: np.ndarray, decay: float) -> float:
    """``F(S)`` of the module docstring for the selection ``rows`` (for tests and diagnostics)."""
    counts = np.bincount(matrix[rows].indices, minlength=matrix.shape[1])
    g = np.concatenate([[0.0], np.cumsum(np.power(np.arange(1.0, counts.max(initial=0) + 1), -decay))])
    return float(np.dot(np.asarray(weights, np.float64), g[counts]))


def gains(matrix: sp.csr_matrix, per_concept: np.ndarray) -> np.ndarray:
    """``M @ per_concept`` for the 0/1 structure ``M`` of ``matrix``: scipy's ``csr_matvec`` sums, in the
    same order (so the same floats), without a float64 copy of the structure."""
    rows = np.arange(matrix.shape[0])
    return row_sums(matrix.indptr, matrix.indices, rows, np.asarray(per_concept, np.float64))


def _round(workers: ThreadPoolExecutor, threads: int, args: tuple) -> tuple[np.ndarray, int]:
    """One round's picks (unordered) and the gains computed: each thread scans its share of the candidates
    for every stratum's best ``k`` (the compiled pass releases the GIL), then the best ``k`` of their union.
    The union holds the true best ``k``, so the picks do not depend on the number of threads."""
    n, takes, bound, ranks = len(args[2]), args[7], args[6], args[5]
    cuts = [n * w // threads for w in range(threads + 1)]
    parts = list(workers.map(lambda w: round_top(*args, cuts[w], cuts[w + 1]), range(threads)))
    picks = []
    for t, k in enumerate(takes.tolist()):
        found = np.concatenate([items[t, : size[t]] for items, size, _ in parts])
        if len(found) > k:  # several threads' best: keep the best k, gain descending, ties by rank
            found = found[np.lexsort((ranks[found], -bound[found]))[:k]]
        picks.append(found)
    return np.concatenate(picks), sum(computed for _, _, computed in parts)


def greedy_order(
    matrix: sp.csr_matrix,
    weights: np.ndarray,
    stratum: np.ndarray,
    quotas: np.ndarray,
    *,
    seed: int,
    decay: float = 1.0,
    rounds: int = ROUNDS,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Every candidate in the order of the module docstring: the batched greedy picks, then the rest.

    ``stratum`` gives each candidate's stratum (task) and ``quotas`` each stratum's quota; candidate ``i``
    is row ``rows[i]`` of ``matrix`` (None: every row, in order). From :data:`COMPILED_FROM` candidates
    on, each round is one compiled pass (:func:`~svit_data.recipes.greedy_kernel.round_top`) over
    ``matrix`` through the row map that recomputes only the gains that can still make the round's picks;
    below, a full mat-vec and a partition per round on a copy of the rows. Both give the same order.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    n = matrix.shape[0] if rows is None else len(rows)
    if n < COMPILED_FROM:
        matrix = matrix if rows is None else matrix[rows]
        return _numpy_order(matrix, weights, stratum, quotas, seed=seed, decay=decay, rounds=rounds)
    return _compiled_order(matrix, weights, stratum, quotas, seed=seed, decay=decay, rounds=rounds, rows=rows)


def greedy_ranked(
    matrix: sp.csr_matrix,
    weights: np.ndarray,
    stratum: np.ndarray,
    quotas: np.ndarray,
    *,
    seed: int,
    decay: float = 1.0,
    rounds: int = ROUNDS,
    rows: np.ndarray | None = None,
) -> Ranked:
    """:func:`greedy_order` per stratum, its rest not yet sorted: each stratum's picks (in the order of
    picking) lead, the candidates not picked follow by their final gain (ties: seeded order) once asked
    (:meth:`~svit_data.recipes.candidates.Ranked.following`). Sorting all the rest took 0.4 s at SVIT's
    scale; balance reads a short prefix of it."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    n = matrix.shape[0] if rows is None else len(rows)
    kwargs = {"seed": seed, "decay": decay, "rounds": rounds}
    if n < COMPILED_FROM:
        matrix = matrix if rows is None else matrix[rows]
        picks, rest, gain = _numpy_rounds(matrix, weights, stratum, quotas, **kwargs)
    else:
        picks, rest, gain = _compiled_rounds(matrix, weights, stratum, quotas, rows=rows, **kwargs)
    stratum = np.asarray(stratum)
    return Ranked(split_order(picks, stratum, len(quotas)), split_order(rest, stratum, len(quotas)), gain)


def _seeded_ranks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded order of ``n`` candidates (ties in gain go by it) and each candidate's rank in it."""
    permutation = random_order(n, seed)
    ranks = np.empty(n, np.int64)
    ranks[permutation] = np.arange(n)
    return permutation, ranks


def _numpy_order(matrix: sp.csr_matrix, *args, **kwargs) -> np.ndarray:
    """:func:`greedy_order` by scipy's mat-vec of the 0/1 structure and a partition per round."""
    picks, rest, gain = _numpy_rounds(matrix, *args, **kwargs)
    return np.concatenate([picks, rest[np.argsort(-gain[rest], kind="stable")]])


def _compiled_order(matrix: sp.csr_matrix, *args, **kwargs) -> np.ndarray:
    """:func:`greedy_order` by the compiled rounds (:func:`_compiled_rounds`)."""
    picks, rest, gain = _compiled_rounds(matrix, *args, **kwargs)
    return np.concatenate([picks, by_gain(rest, gain)])  # = rest[np.argsort(-gain[rest], kind="stable")]


Rounds = tuple[np.ndarray, np.ndarray, np.ndarray]  # picks in order, the rest in seeded order, final gains


def _numpy_rounds(
    matrix: sp.csr_matrix,
    weights: np.ndarray,
    stratum: np.ndarray,
    quotas: np.ndarray,
    *,
    seed: int,
    decay: float,
    rounds: int,
) -> Rounds:
    """The rounds by scipy's mat-vec of the 0/1 structure and a partition per round."""
    n, num_concepts = matrix.shape
    structure = sp.csr_matrix(
        (np.ones(matrix.nnz, np.float64), matrix.indices, matrix.indptr), shape=matrix.shape, copy=False
    )
    weights = np.asarray(weights, np.float64)
    permutation, ranks = _seeded_ranks(n, seed)
    members = split_order(permutation, np.asarray(stratum), len(quotas))  # each in seeded order
    left = np.asarray(quotas, np.int64).copy()
    counts = np.zeros(num_concepts, np.float64)
    picked = np.zeros(n, bool)
    order: list[np.ndarray] = []
    for r in range(rounds):
        if not left.any():
            break
        gain = structure @ (weights * marginal_gain(counts, decay))
        batch = []
        for t in np.flatnonzero(left):
            members[t] = members[t][~picked[members[t]]]
            take = min(-(-int(left[t]) // (rounds - r)), len(members[t]))
            batch.append(best(members[t], gain, take))  # ties in seeded order
            left[t] -= take
        batch = np.concatenate(batch)
        picked[batch] = True
        counts += np.bincount(matrix[batch].indices, minlength=num_concepts)
        batch = batch[np.lexsort((ranks[batch], -gain[batch]))]  # gain descending, ties: seeded order
        order.append(batch)
    rest = permutation[~picked[permutation]]
    gain = structure @ (weights * marginal_gain(counts, decay)) if len(rest) else np.zeros(n)
    return (np.concatenate(order) if order else np.zeros(0, np.int64)), rest, gain


def _compiled_rounds(
    matrix: sp.csr_matrix,
    weights: np.ndarray,
    stratum: np.ndarray,
    quotas: np.ndarray,
    *,
    seed: int,
    decay: float,
    rounds: int,
    rows: np.ndarray | None = None,
) -> Rounds:
    """The rounds by compiled passes that skip candidates whose last computed gain (an upper
    bound while no per-concept value grows) cannot win; a round whose values grew (negative weights or
    decay) recomputes every gain. Candidate ``i`` is row ``rows[i]`` of ``matrix`` (None: row ``i``)."""
    rows = np.arange(matrix.shape[0]) if rows is None else rows
    n, num_concepts = len(rows), matrix.shape[1]
    indptr, indices = matrix.indptr, matrix.indices
    weights = np.asarray(weights, np.float64)
    threads = WORKERS if n >= PARALLEL_FROM else 1
    with ThreadPoolExecutor(max_workers=threads) as workers:
        seeded = workers.submit(_seeded_ranks, n, seed)  # numpy's shuffle releases the GIL: overlaps the rest
        num_strata = len(quotas)
        # per candidate its stratum, -1 once picked (one small read per candidate and round)
        stratum = np.asarray(stratum)
        wide = max(num_strata, int(stratum.max(initial=-1)) + 1) > 127
        group = stratum.astype(np.int32 if wide else np.int8)
        live = np.bincount(group, minlength=num_strata)[:num_strata]  # unpicked candidates per stratum
        if num_concepts <= 1 << 16:  # half the bytes to read per entry: about a quarter off each pass
            indices = indices.astype(np.uint16)
        left = np.asarray(quotas, np.int64).copy()
        counts = np.zeros(num_concepts, np.float64)
        bound = np.full(n, np.inf)  # each candidate's last computed gain
        per_concept = None
        order: list[np.ndarray] = []
        permutation, ranks = seeded.result()
        for r in range(rounds):
            if not left.any():
                break
            value = weights * marginal_gain(counts, decay)
            bounded = per_concept is not None and bool(np.all(value <= per_concept))
            per_concept = value
            takes = np.where(left > 0, np.minimum(-(-left // (rounds - r)), live), 0)
            args = (indptr, indices, rows, per_concept, group, ranks, bound, takes, bounded)
            batch, computed = _round(workers, threads, args)
            left -= takes
            live -= takes
            group[batch] = -1
            add_counts(indptr, indices, rows, batch, counts)
            batch = batch[np.lexsort((ranks[batch], -bound[batch]))]  # gain descending, ties: seeded order
            order.append(batch)
            log.debug(
                "diversity round %d: %d picked (%d gains computed), their gains sum to %.4g",
                r,
                len(batch),
                computed,
                float(bound[batch].sum()),
            )
    rest = permutation[group[permutation] >= 0]
    gain = (
        row_sums(indptr, indices, rows, weights * marginal_gain(counts, decay)) if len(rest) else np.zeros(n)
    )
    return (np.concatenate(order) if order else np.zeros(0, np.int64)), rest, gain


def diversity_order(
    candidates: Candidates,
    stratum: np.ndarray,
    quotas: np.ndarray,
    *,
    seed: int,
    decay: float = 1.0,
    rounds: int = ROUNDS,
) -> np.ndarray:
    """:func:`greedy_order` of the candidates for the given strata and quotas."""
    c = candidates
    return greedy_order(
        c.matrix, c.weights, stratum, quotas, seed=seed, decay=decay, rounds=rounds, rows=c.rows
    )


def diversity_ranked(
    candidates: Candidates,
    stratum: np.ndarray,
    quotas: np.ndarray,
    *,
    seed: int,
    decay: float = 1.0,
    rounds: int = ROUNDS,
) -> Ranked:
    """:func:`greedy_ranked` of the candidates for the given strata and quotas."""
    c = candidates
    return greedy_ranked(
        c.matrix, c.weights, stratum, quotas, seed=seed, decay=decay, rounds=rounds, rows=c.rows
    )
