"""Every selection method as one record: its selector, the parameters it reads, its card objective, its flags.

``METHODS`` is the one place a method is declared. A recipe (``registry.RECIPES``) names a method and
sets its parameters; the build looks everything else up here. Adding a method: write the pure selector
in ``selection.py``, its objective text in ``objectives.py``, and one ``Method`` entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from svit_data.recipes import objectives
from svit_data.recipes.selection import (
    BalanceReport,
    Candidates,
    select_balance,
    select_core,
    select_diversity,
    select_random,
)

if TYPE_CHECKING:
    from svit_data.recipes.registry import RecipeSpec

RANDOM, DIVERSITY, BALANCE, CORE, ALL = "random", "diversity", "balance", "core", "all"

# (candidates, size, seed, spec) -> (picked candidate indices, balance report or None when not balanced)
Selector = Callable[[Candidates, int, int, "RecipeSpec"], tuple[np.ndarray, BalanceReport | None]]


@dataclass(frozen=True)
class Method:
    select: Selector
    parameters: tuple[str, ...]  # RecipeSpec fields it reads (written to the manifest with method and size)
    objective: str  # card prose, a template filled by objectives.objective()
    stratified: bool = False  # per-task quotas apply (unless task_mix=free)
    balances: bool = False  # yes/no balancing acts; the diagnostics carry a BalanceState


def _random(c: Candidates, size: int, seed: int, spec: RecipeSpec) -> tuple[np.ndarray, None]:
    return select_random(c, size, seed=seed), None


def _diversity(c: Candidates, size: int, seed: int, spec: RecipeSpec) -> tuple[np.ndarray, None]:
    return select_diversity(
        c, size, seed=seed, decay=spec.decay, rounds=spec.rounds, task_mix=spec.task_mix
    ), None


def _balance(c: Candidates, size: int, seed: int, spec: RecipeSpec) -> tuple[np.ndarray, BalanceReport]:
    return select_balance(
        c, size, seed=seed, target=spec.target_yes_share, tolerance=spec.tolerance, task_mix=spec.task_mix
    )


def _core(c: Candidates, size: int, seed: int, spec: RecipeSpec) -> tuple[np.ndarray, BalanceReport]:
    return select_core(
        c,
        size,
        seed=seed,
        decay=spec.decay,
        rounds=spec.rounds,
        target=spec.target_yes_share,
        tolerance=spec.tolerance,
        task_mix=spec.task_mix,
    )


def _all(c: Candidates, size: int, seed: int, spec: RecipeSpec) -> tuple[np.ndarray, None]:
    return np.arange(c.size), None


_DIVERSE = ("decay", "rounds")
_BALANCED = ("target_yes_share", "tolerance")

METHODS: dict[str, Method] = {
    RANDOM: Method(_random, (), objectives.RANDOM_OBJECTIVE),
    DIVERSITY: Method(_diversity, (*_DIVERSE, "task_mix"), objectives.DIVERSITY_OBJECTIVE, stratified=True),
    BALANCE: Method(
        _balance, (*_BALANCED, "task_mix"), objectives.BALANCE_OBJECTIVE, stratified=True, balances=True
    ),
    CORE: Method(
        _core, (*_DIVERSE, *_BALANCED, "task_mix"), objectives.CORE_OBJECTIVE, stratified=True, balances=True
    ),
    ALL: Method(_all, (), objectives.ALL_OBJECTIVE),
}
