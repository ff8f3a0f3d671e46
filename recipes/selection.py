"""Selection: pure functions from the candidates' matrix and columns to sorted candidate indices.

Every function is deterministic given its inputs and ``seed`` (numpy PCG64), costs O(n log n + nnz)
(diversity: O(rounds * nnz + n log n)), and never edits text. Indices refer to rows of :class:`Candidates`; the build maps them to sample ids.

task mix (``task_mix``, diversity / balance / core)
    ``"candidates"`` (the default): the selection keeps the task mix of the candidates, ``quota_t``
    samples of task ``t`` by largest-remainder apportionment of ``size`` (exact rule in
    :mod:`~svit_data.recipes.strata`); ``"free"``: no quotas (one stratum). Why: samples mentioning many
    concepts have the largest coverage gains, so without quotas long detail descriptions crowd out the
    short referring QA and conversation samples.

random
    ``size`` candidates uniformly at random: the first ``size`` of a seeded permutation (no quotas:
    it already keeps the task mix in expectation, and it is the ablation baseline).

diversity
    Maximize the coverage objective ``F(S) = sum_c w_c * g(|S ∩ P_c|)``, ``g(k) = sum_{j=1..k} j ** -decay``,
    under the quotas by a batched greedy in ``rounds`` rounds: the exact objective, algorithm, tie rule
    and the order it defines are in :mod:`~svit_data.recipes.diversity`.

balance
    Walk a priority order (random for ``balance``, the diversity order for ``core``) and take the first
    ``quota_t`` samples of each task (``size`` for ``"free"``); call a sample *excess* when it leans
    toward the side of the target yes share that this selection overshoots (``yes * (1 - t) > no * t``
    when there are too many yes answers). A *swap* in task ``t`` drops the task's lowest-priority
    selected excess sample and adds its highest-priority unselected other sample, so the quotas hold;
    the ``j``-th swap of task ``t`` is ordered by ``j / quota_t`` (ties: task order), which spreads the
    swaps over tasks in proportion to their quotas. The first ``p`` swaps of that sequence are made,
    ``p`` chosen so that the yes share is closest to the target ``t`` (ties: fewer swaps). Every swap
    lowers the surplus ``yes * (1 - t) - no * t`` of the selection, so when the range from no swap to
    every swap spans the target, the share ends within one swap of it (as without quotas, only excess
    samples are dropped and others added in priority order; the note says when it falls short).
    Only whole samples are chosen or dropped; with one stratum this is exactly the unstratified rule.

core
    The diversity order, then balance, at the target size, with the same quotas.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from svit_data.recipes.candidates import Candidates, Ranked, descending, random_order, tie_rank
from svit_data.recipes.diversity import ROUNDS, diversity_order, diversity_ranked
from svit_data.recipes.strata import CANDIDATES, split_order, strata_of
from svit_data.recipes.yesno import ratio_report, yes_share

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BalanceReport:
    before: dict[str, float | int]  # the same-size selection without balancing
    after: dict[str, float | int]
    reached: bool  # |share - target| <= tolerance
    note: str = ""


def select_random(candidates: Candidates, size: int, *, seed: int) -> np.ndarray:
    return np.sort(random_order(candidates.size, seed)[:size])


def select_diversity(
    candidates: Candidates,
    size: int,
    *,
    seed: int,
    decay: float = 1.0,
    rounds: int = ROUNDS,
    task_mix: str = CANDIDATES,
) -> np.ndarray:
    stratum, quotas = strata_of(candidates.task, candidates.size, size, task_mix, candidates.source)
    ranked = diversity_ranked(candidates, stratum, quotas, seed=seed, decay=decay, rounds=rounds)
    return np.sort(np.concatenate(ranked.heads))  # each stratum's picks: its quota


def balance_order(
    order: np.ndarray | Ranked,
    yes: np.ndarray,
    no: np.ndarray,
    size: int,
    *,
    target: float = 0.5,
    tolerance: float = 0.02,
    stratum: np.ndarray | None = None,
    quotas: np.ndarray | None = None,
) -> tuple[np.ndarray, BalanceReport]:
    """``size`` indices from ``order`` (priority first) with a yes share closest to ``target``.

    With ``stratum`` and ``quotas`` (summing to ``size``), exactly ``quotas[t]`` of stratum ``t``.
    ``order`` may come per stratum (:class:`~svit_data.recipes.candidates.Ranked`, each stratum's first
    ``quotas[t]`` as its heads): the rest is then read only as far as the swaps need.
    """
    if stratum is None or quotas is None:
        stratum, quotas = np.zeros(len(yes), np.int64), np.array([size], np.int64)
    if int(quotas.sum()) != size:
        raise ValueError(f"quotas sum to {int(quotas.sum())}, not the size {size}")
    if not isinstance(order, Ranked):
        parts = split_order(order, stratum, len(quotas))
        order = Ranked(
            [part[:q] for part, q in zip(parts, quotas, strict=True)],
            [part[q:] for part, q in zip(parts, quotas, strict=True)],
        )
    if len(order.heads) != len(quotas) or len(order.rest) > len(quotas):
        raise ValueError(f"{len(order.heads)} strata in the order, {len(quotas)} quotas")
    top = np.concatenate(order.heads)
    before = ratio_report(yes[top].sum(), no[top].sum())
    everyone = np.concatenate([top, *order.rest])
    total_yes, total_no = int(yes[everyone].sum()), int(no[everyone].sum())
    if total_yes + total_no == 0:
        note = (
            f"no yes/no answers among {len(everyone):,} candidates: nothing to balance, selection left as is"
        )
        log.warning("balance: %s", note)
        return np.sort(top), BalanceReport(before, before, False, note)
    share = yes_share(before["yes"], before["no"])
    too_many_yes = share > target
    y, n = yes.astype(np.int64), no.astype(np.int64)
    excess = (y * (1 - target) > n * target) if too_many_yes else (n * target > y * (1 - target))
    # per stratum: its excess heads, in order (the swaps drop them from the end), and its other samples:
    # the other heads, then the first other samples of the rest (the swaps add them in order)
    split = []
    for t, head in enumerate(order.heads):
        lean = excess[head]
        k0 = int(lean.sum())
        split.append((head[lean], np.concatenate([head[~lean], order.following(t, ~excess, k0)]), k0))
    keys, strata, dy, dn = [], [], [], []
    for t, ((ex, other, k0), q) in enumerate(zip(split, quotas, strict=True)):
        j = np.arange(1, k0 - max(0, int(q) - len(other)) + 1)  # the j-th swap of stratum t
        removed, added = ex[k0 - j], other[q - k0 + j - 1]
        keys.append(j / max(int(q), 1))
        strata.append(np.full(len(j), t))
        dy.append(y[added] - y[removed])
        dn.append(n[added] - n[removed])
    strata_all = np.concatenate(strata)
    merged = np.lexsort((strata_all, np.concatenate(keys)))
    cum = lambda start, a: start + np.concatenate([[0], np.cumsum(a[merged])])  # noqa: E731
    yes_p, no_p = cum(before["yes"], np.concatenate(dy)), cum(before["no"], np.concatenate(dn))
    with np.errstate(invalid="ignore", divide="ignore"):
        share_p = np.where(yes_p + no_p > 0, yes_p / np.maximum(yes_p + no_p, 1), np.nan)
    distance = np.where(np.isnan(share_p), np.inf, np.abs(share_p - target))
    best = int(np.argmin(distance))  # closest; ties: fewer swaps
    done = np.bincount(strata_all[merged[:best]], minlength=len(quotas))
    picked = np.sort(
        np.concatenate(
            [
                np.concatenate([ex[: k0 - d], other[: q - k0 + d]])
                for (ex, other, k0), q, d in zip(split, quotas, done.tolist(), strict=True)
            ]
        )
    )
    after = ratio_report(int(yes_p[best]), int(no_p[best]))
    reached = bool(abs(after["yes_share"] - target) <= tolerance)
    note = ""
    if not reached and after["yes"] + after["no"] == 0:
        note = f"the {size:,} samples selected hold no yes/no answers: nothing to balance at this size"
        log.warning("balance: %s", note)
    elif not reached:
        note = (
            f"could reach a yes share of {after['yes_share']:.3f} only (target {target} +- {tolerance}): "
            f"the {len(everyone):,} candidates have {total_yes:,} yes and {total_no:,} no answers"
        )
        if len(quotas) > 1:
            note += " and the task quotas are kept (task_mix='free' drops them)"
        log.warning("balance: %s", note)
    return picked, BalanceReport(before, after, reached, note)


def _balance(
    candidates: Candidates,
    order: np.ndarray | Ranked,
    size: int,
    stratum: np.ndarray,
    quotas: np.ndarray,
    target: float,
    tolerance: float,
) -> tuple[np.ndarray, BalanceReport]:
    """Balance the candidates' yes/no answers along a priority ``order`` under the task quotas."""
    return balance_order(
        order,
        candidates.yes,
        candidates.no,
        size,
        target=target,
        tolerance=tolerance,
        stratum=stratum,
        quotas=quotas,
    )


def select_balance(
    candidates: Candidates,
    size: int,
    *,
    seed: int,
    target: float = 0.5,
    tolerance: float = 0.02,
    task_mix: str = CANDIDATES,
) -> tuple[np.ndarray, BalanceReport]:
    stratum, quotas = strata_of(candidates.task, candidates.size, size, task_mix, candidates.source)
    order = random_order(candidates.size, seed)
    return _balance(candidates, order, size, stratum, quotas, target, tolerance)


def select_core(
    candidates: Candidates,
    size: int,
    *,
    seed: int,
    decay: float = 1.0,
    rounds: int = ROUNDS,
    target: float = 0.5,
    tolerance: float = 0.02,
    task_mix: str = CANDIDATES,
) -> tuple[np.ndarray, BalanceReport]:
    stratum, quotas = strata_of(candidates.task, candidates.size, size, task_mix, candidates.source)
    ranked = diversity_ranked(candidates, stratum, quotas, seed=seed, decay=decay, rounds=rounds)
    return _balance(candidates, ranked, size, stratum, quotas, target, tolerance)


__all__ = [
    "BalanceReport",
    "Candidates",
    "balance_order",
    "descending",
    "diversity_order",
    "random_order",
    "select_balance",
    "select_core",
    "select_diversity",
    "select_random",
    "tie_rank",
]
