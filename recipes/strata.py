"""Task strata: how many samples of each task a selection keeps, and which ones.

Why: the diversity score rewards samples that mention many concepts, so an unstratified selection
fills up with long detail descriptions and drops the short referring QA (grounding) and conversation
samples SVIT was built for; the paper's core set kept all four tasks. With ``task_mix="candidates"``
a selection keeps the task mix of the train candidates:

    quota_t = floor(size * n_t / N), then the size - sum_t quota_t remaining places go one each to the
    tasks with the largest remainders (size * n_t mod N), ties to the task listed first in
    svit_data.tasks.TASKS

(largest-remainder / Hamilton apportionment; ``n_t`` candidates of task ``t``, ``N`` candidates in all).
The quotas sum to ``size`` exactly and never exceed ``n_t``. Inside a task, samples are taken in the
selection's priority order (diversity score, or the seeded permutation for balance).
``task_mix="sources"`` apportions the same way over sources instead of tasks (a mixed pool keeps the
candidates' source mix; ties to the source listed first). ``task_mix="free"`` is one stratum holding
every candidate: the unstratified selection. Third-party samples have no task: with
``task_mix="candidates"`` they form one more stratum after the four tasks (label ``none``).
"""

from __future__ import annotations

import numpy as np

from svit_data.tasks import TASKS

CANDIDATES, SOURCES, FREE = "candidates", "sources", "free"
TASK_MIXES = (CANDIDATES, SOURCES, FREE)


def task_quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Largest-remainder apportionment of ``size`` places by ``counts`` (see the module docstring)."""
    counts = [int(c) for c in counts]  # Python ints: size * n_t cannot overflow
    total = sum(counts)
    if not 0 <= size <= total:
        raise ValueError(f"cannot apportion {size} places among {total} candidates")
    if total == 0:
        return np.zeros(len(counts), np.int64)
    quotas = [size * c // total for c in counts]
    remainders = [size * c % total for c in counts]
    by_remainder = sorted(range(len(counts)), key=lambda t: (-remainders[t], t))
    for t in by_remainder[: size - sum(quotas)]:
        quotas[t] += 1
    return np.asarray(quotas, np.int64)


def strata_of(
    task: np.ndarray | None, n: int, size: int, task_mix: str, source: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate its stratum index, and per stratum its quota, for ``task_mix``.

    ``task`` is the candidates' task index, ``source`` their source index (None, or ``task_mix ==
    "free"``: one stratum of quota ``size``). Strata are the task indices, so quotas line up with
    ``svit_data.tasks.TASK_LABELS`` (``TASKS`` when every candidate has a task); or the source indices.
    """
    if task_mix not in TASK_MIXES:
        raise ValueError(f"unknown task_mix {task_mix!r}; known: {', '.join(TASK_MIXES)}")
    labels = source if task_mix == SOURCES else task
    if labels is None or task_mix == FREE:
        return np.zeros(n, np.int64), np.array([size], np.int64)
    stratum = np.asarray(labels, np.int64)
    minlength = 1 if task_mix == SOURCES else len(TASKS)
    return stratum, task_quotas(np.bincount(stratum, minlength=minlength), size)


def split_order(order: np.ndarray, stratum: np.ndarray, num_strata: int) -> list[np.ndarray]:
    """``order`` split by stratum, each part keeping the relative order (one mask per stratum, O(n) each:
    strata are few, and this is several times faster than a stable sort of the keys)."""
    keys = stratum[order]
    parts = max(num_strata, int(keys.max()) + 1 if len(keys) else 0)
    return [order[keys == t] for t in range(parts)]
