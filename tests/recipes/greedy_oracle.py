"""The diversity greedy as it was before the lazy heap: a full scipy mat-vec and a partition per round.

Kept as the oracle :func:`svit_data.recipes.diversity.greedy_order` must equal, order for order.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from svit_data.recipes.candidates import random_order
from svit_data.recipes.diversity import marginal_gain
from svit_data.recipes.strata import split_order


def _top(members: np.ndarray, gain: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` of ``members`` (in seeded order) of highest gain, by gain descending, ties in that order."""
    if k <= 0:
        return members[:0]
    values = gain[members]
    if k < len(members):
        threshold = np.partition(values, len(values) - k)[len(values) - k]
        above = np.flatnonzero(values > threshold)
        level = np.flatnonzero(values == threshold)[: k - len(above)]
        keep = np.sort(np.concatenate([above, level]))
    else:
        keep = np.arange(len(members))
    keep = keep[np.argsort(-values[keep], kind="stable")]
    return members[keep]


def oracle_greedy_order(
    matrix: sp.csr_matrix,
    weights: np.ndarray,
    stratum: np.ndarray,
    quotas: np.ndarray,
    *,
    seed: int,
    decay: float = 1.0,
    rounds: int = 16,
) -> np.ndarray:
    n, num_concepts = matrix.shape
    structure = sp.csr_matrix(
        (np.ones(matrix.nnz, np.float64), matrix.indices, matrix.indptr), shape=matrix.shape, copy=False
    )
    weights = np.asarray(weights, np.float64)
    permutation = random_order(n, seed)
    ranks = np.empty(n, np.int64)
    ranks[permutation] = np.arange(n)
    members = split_order(permutation, np.asarray(stratum), len(quotas))
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
            take = min(math.ceil(int(left[t]) / (rounds - r)), len(members[t]))
            batch.append(_top(members[t], gain, take))
            left[t] -= take
        batch = np.concatenate(batch)
        picked[batch] = True
        counts += np.bincount(matrix[batch].indices, minlength=num_concepts)
        batch = batch[np.lexsort((ranks[batch], -gain[batch]))]
        order.append(batch)
    rest = permutation[~picked[permutation]]
    if len(rest):
        gain = structure @ (weights * marginal_gain(counts, decay))
        order.append(rest[np.argsort(-gain[rest], kind="stable")])
    return np.concatenate(order) if order else np.zeros(0, np.int64)
