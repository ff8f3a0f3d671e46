"""Diagnostics of a selection, each next to a random subset of the same size from the same candidates.

- coverage: the share of concepts mentioned anywhere among the candidates that the subset mentions at
  least once;
- entropy: the Shannon entropy (nats) of ``p_c = df_c / sum_c df_c``, where ``df_c`` is the number of
  subset samples that mention concept ``c``: higher means mentions spread over more concepts, more evenly;
- yes/no before and after balancing; task mix; quantiles of answer length (words in the answers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from svit_data.recipes.candidates import random_order
from svit_data.recipes.diversity import COMPILED_FROM
from svit_data.recipes.greedy_kernel import mentioned
from svit_data.recipes.selection import BalanceReport
from svit_data.tasks import TASK_LABELS

RANDOM_SEED_OFFSET = 1_000_003  # the reference subset's seed differs from the recipe's own


def document_frequency(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Per concept, the number of ``rows`` whose samples mention it."""
    sub = matrix[rows]
    return np.bincount(sub.indices, minlength=matrix.shape[1])


def coverage(df: np.ndarray, available: np.ndarray) -> float:
    return float((df[available] > 0).sum() / max(1, available.sum()))


def entropy(df: np.ndarray) -> float:
    total = df.sum()
    if total == 0:
        return 0.0
    p = df[df > 0] / total
    return float(-(p * np.log(p)).sum())


def quantiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"p10": 0.0, "p50": 0.0, "p90": 0.0}
    p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9])
    return {"p10": float(p10), "p50": float(p50), "p90": float(p90)}


def reference_order(n: int, seed: int) -> np.ndarray:
    """The seeded permutation of ``n`` candidates whose first ones are the random reference subset."""
    return random_order(n, seed + RANDOM_SEED_OFFSET)


def diagnose(
    matrix: sp.csr_matrix,
    task: np.ndarray,
    answer_words: np.ndarray,
    picked: np.ndarray,
    balance: BalanceReport,
    *,
    seed: int,
    rows: np.ndarray | None = None,
    permutation: np.ndarray | None = None,
) -> dict[str, Any]:
    """Diagnostics of ``picked`` (candidate indices) against a seeded random subset of the same size;
    candidate ``i`` is row ``rows[i]`` of ``matrix`` (None: row ``i``). The subset is the first of
    ``permutation``, :func:`reference_order` of the candidates (None: drawn here)."""
    n = matrix.shape[0] if rows is None else len(rows)
    permutation = reference_order(n, seed) if permutation is None else permutation
    reference = np.sort(permutation[: len(picked)])
    if n >= COMPILED_FROM:  # a compiled loop: no copy of the rows, no int64 copy of the indices
        every = np.arange(n) if rows is None else rows
        available = mentioned(matrix.indptr, matrix.indices, every, matrix.shape[1])
    else:  # below, numba's setup in a fresh process would cost more
        own = matrix if rows is None else matrix[rows]
        available = np.bincount(own.indices, minlength=matrix.shape[1]) > 0
    chosen, drawn = (picked, reference) if rows is None else (rows[picked], rows[reference])
    df_selected = document_frequency(matrix, chosen)
    df_random = document_frequency(matrix, drawn)
    task_counts = np.bincount(task[picked].astype(np.int64), minlength=len(TASK_LABELS))
    return {
        "coverage": {
            "selected": round(coverage(df_selected, available), 4),
            "random": round(coverage(df_random, available), 4),
        },
        "entropy": {"selected": round(entropy(df_selected), 4), "random": round(entropy(df_random), 4)},
        "yes_no": {"before": balance.before, "after": balance.after},
        "task_mix": {t: int(c) for t, c in zip(TASK_LABELS, task_counts, strict=True) if c},
        "answer_length_quantiles": quantiles(answer_words[picked]),
    }


def top_concepts(matrix: sp.csr_matrix, picked: np.ndarray, names: list[str], k: int = 10) -> list[str]:
    """The ``k`` concepts most often mentioned by ``picked`` (for logs and stats)."""
    df = document_frequency(matrix, picked)
    return [names[i] for i in np.argsort(-df, kind="stable")[:k] if df[i]]
