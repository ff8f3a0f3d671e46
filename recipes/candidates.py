"""What selection sees (:class:`Candidates`) and the seeded orders every selection breaks ties with.

Why a module of its own: diversity, balance and the ``select_*`` entry points all need these, and
keeping them apart avoids an import cycle between :mod:`.diversity` and :mod:`.selection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from svit_data.recipes import shuffle_kernel


@dataclass(frozen=True)
class Candidates:
    """What selection sees: the candidates' concept matrix and yes/no counts, in pool order.

    With ``rows`` set, ``matrix`` is a larger matrix (the pool's) and candidate ``i`` is its row
    ``rows[i]``: selection reads the pool's matrix through the row map instead of a copy of its rows
    (45M entries at SVIT's scale). :meth:`own_matrix` gives the candidates' rows either way.
    """

    matrix: (
        sp.csr_matrix
    )  # candidates x concepts, or with rows: the matrix they are rows of (nonzero: "mentions")
    yes: np.ndarray
    no: np.ndarray
    weights: np.ndarray  # w_c per concept
    task: np.ndarray | None = None  # task index per candidate (svit_data.tasks.TASK_LABELS); None: one task
    source: np.ndarray | None = None  # source index per candidate (task_mix="sources"); None: one source
    rows: np.ndarray | None = None  # the candidates' rows of matrix, increasing (None: every row, in order)

    @property
    def size(self) -> int:
        return self.matrix.shape[0] if self.rows is None else len(self.rows)

    def own_matrix(self) -> sp.csr_matrix:
        """The candidates x concepts matrix (a copy of their rows when ``rows`` is set)."""
        return self.matrix if self.rows is None else self.matrix[self.rows]

    def matrix_rows(self, candidates: np.ndarray) -> np.ndarray:
        """Rows of :attr:`matrix` of the given candidate indices."""
        return candidates if self.rows is None else self.rows[candidates]


@dataclass(frozen=True)
class Ranked:
    """A priority order given per stratum: ``heads[t]`` leads stratum ``t``, in order; ``rest[t]`` follows,
    by ``key`` descending with ties in its given order (``key`` None: in its given order).

    Balance reads only the heads and a short prefix of the rest: the diversity order hands it its picks
    and leaves the rest (millions of candidates at SVIT's scale) unsorted until asked.
    """

    heads: list[np.ndarray]
    rest: list[np.ndarray]
    key: np.ndarray | None = None

    def following(self, t: int, keep: np.ndarray, k: int) -> np.ndarray:
        """The first ``k`` of stratum ``t``'s rest that ``keep`` (a mask over candidates) holds, in order."""
        members = self.rest[t][keep[self.rest[t]]] if t < len(self.rest) else np.zeros(0, np.int64)
        return members[:k] if self.key is None else best(members, self.key, k)


def best(members: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` of ``members`` of highest ``key``, by key descending, ties in the members' order: the
    first ``k`` of ``members[np.argsort(-key[members], kind="stable")]``.

    O(len(members)) by a partition around the k-th largest key, then a sort of the k taken.
    """
    if k <= 0:
        return members[:0]
    values = key[members]
    if np.isnan(values).any():  # NaN sorts last, but compares unequal to a partition's threshold
        return members[np.argsort(-values, kind="stable")[:k]]
    if k < len(members):
        threshold = np.partition(values, len(values) - k)[len(values) - k]
        above = np.flatnonzero(values > threshold)
        level = np.flatnonzero(values == threshold)[: k - len(above)]
        keep = np.sort(np.concatenate([above, level]))
    else:
        keep = np.arange(len(members))
    keep = keep[np.argsort(-values[keep], kind="stable")]
    return members[keep]


def random_order(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)``: ``np.random.default_rng(seed).permutation(n)`` (PCG64); from
    :data:`~svit_data.recipes.shuffle_kernel.COMPILED_FROM` on by its compiled replay, the same integers
    in a third of the time."""
    if n >= shuffle_kernel.COMPILED_FROM:
        return shuffle_kernel.permutation(n, seed)
    return np.random.default_rng(seed).permutation(n)


def tie_rank(n: int, seed: int) -> np.ndarray:
    """Position of each index in the seeded permutation (used to break ties)."""
    rank = np.empty(n, np.int64)
    rank[random_order(n, seed)] = np.arange(n)
    return rank


def descending(key: np.ndarray, seed: int) -> np.ndarray:
    """Indices by ``key`` descending, ties by the seeded permutation.

    Equal to ``np.lexsort((tie_rank(n, seed), -key))``, but a stable sort of the permuted keys is
    2-3x faster than a two-key lexsort on millions of rows (fewer passes over memory).
    """
    permutation = random_order(len(key), seed)
    return permutation[np.argsort(-key[permutation], kind="stable")]
