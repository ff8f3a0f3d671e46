"""Build a named recipe: vocabulary -> cached matrix -> selection -> manifest + diagnostics -> rows.

Recipes choose among the **train** samples only (images in SVIT's test id list are held out, so a
recipe never trains on the test split); their configs have one split, ``train``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from svit_data.recipes.diagnostics import diagnose, top_concepts
from svit_data.recipes.manifest import make_manifest, write_manifest
from svit_data.recipes.matching import MatchedPool, match_pool
from svit_data.recipes.registry import (
    ALL,
    BALANCE,
    CORE,
    DIVERSITY,
    MIX,
    RANDOM,
    RecipeSpec,
    get_recipe,
    resolve_size,
)
from svit_data.recipes.selection import (
    BalanceReport,
    Candidates,
    select_balance,
    select_core,
    select_diversity,
    select_random,
)
from svit_data.recipes.strata import FREE, TASK_MIXES, strata_of
from svit_data.recipes.vocabulary import load_vocabulary
from svit_data.recipes.yesno import ratio_report

from svit_data.configs import CONFIGS
from svit_data.errors import SvitError
from svit_data.materialize import ConfigRows, select_rows
from svit_data.pool import Pool
from svit_data.schema import FEATURES
from svit_data.splits import TRAIN
from svit_data.tasks import TASKS

log = logging.getLogger(__name__)

Selector = Callable[[Candidates, int, int, RecipeSpec], tuple[np.ndarray, BalanceReport | None]]


def _unbalanced(picked: np.ndarray) -> tuple[np.ndarray, None]:
    return picked, None


SELECTORS: dict[str, Selector] = {
    RANDOM: lambda c, size, seed, spec: _unbalanced(select_random(c, size, seed=seed)),
    DIVERSITY: lambda c, size, seed, spec: _unbalanced(
        select_diversity(c, size, seed=seed, decay=spec.decay, rounds=spec.rounds, task_mix=spec.task_mix)
    ),
    BALANCE: lambda c, size, seed, spec: select_balance(
        c, size, seed=seed, target=spec.target_yes_share, tolerance=spec.tolerance, task_mix=spec.task_mix
    ),
    CORE: lambda c, size, seed, spec: _core(c, size, seed, spec),
    ALL: lambda c, size, seed, spec: _unbalanced(np.arange(c.size)),
    MIX: lambda c, size, seed, spec: _core(c, size, seed, spec),
}


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


TASK_MIX: dict[str, str] = {
    "candidates": "Task mix kept (task_mix=candidates): the selection holds quota_t samples of each task t, "
    "quota_t = floor({size} x n_t / N) plus one place for each of the tasks with the largest remainders "
    "({size} x n_t mod N, ties in the order " + ", ".join(TASKS) + ") until the quotas sum to {size}, "
    "where n_t is the number of train samples of task t and N = {candidates} (quotas: {quotas}). ",
    FREE: "No task quotas (task_mix=free): every train sample counts as one task t, so quota_t = {size}. ",
}
QUOTA_RULE = {
    "candidates": "subject to |S ∩ task t| = quota_t for every task t",
    FREE: "subject to |S| = {size}",
}
DIVERSITY_RULE = (
    "maximize F(S) = sum over concepts c of w_c x g(|S ∩ P_c|), g(k) = sum over j = 1..k of j^-{decay} "
    "(the k-th selected sample mentioning c adds w_c x k^-{decay}: diminishing returns per concept), where "
    "P_c is the set of train samples that mention concept c and w_c its weight, {quota_rule}, by a batched "
    "greedy in {rounds} rounds: each round computes every unselected sample's gain F(S + s) - F(S) = sum over "
    "its concepts c of w_c x (k_c + 1)^-{decay} (k_c: samples of S mentioning c, counted over all tasks) and "
    "each task t takes its ceil(left_t / rounds left) unselected samples of highest gain (left_t: its quota "
    "not yet filled; ties, and samples of zero gain after all others, by a seeded permutation, seed {seed}). "
    "Concepts come from the vocabulary {vocabulary} (hash {vocabulary_hash}); a sample mentions a concept "
    "when a surface form of it occurs in its question or answer text after lowercasing and replacing runs of "
    "characters that are not letters, digits or spaces with a space, with simple plural/singular forms."
)
DIVERSITY_ORDER = (
    "The diversity order is the greedy's picks in the order picked (within a round by gain, descending), then "
    "every other train sample by its gain against the greedy selection (descending, ties by the permutation)."
)
DIAGNOSTICS = (
    " Diagnostics, each next to a random subset of the same size (seed {seed} + 1000003): coverage is the "
    "share of the concepts mentioned by some train sample that the selection mentions at least once; entropy "
    "is the Shannon entropy (nats) of p_c = df_c / sum of df over concepts, df_c the number of selected "
    "samples that mention concept c (the distribution of concept mentions over concepts; unweighted, at most "
    "log of the number of concepts mentioned)."
)
BALANCE_RULE = (
    "take the first quota_t samples of each task in that order; a swap in task t drops its last selected "
    "sample that leans to the over-represented answer and adds its first unselected other sample, so the "
    "quotas hold; the j-th swap of task t comes at j / quota_t (ties in task order), and the first p swaps "
    "are made, p chosen so that yes / (yes + no) over the selection is closest to {target} (tolerance "
    "{tolerance}; ties: fewer swaps). An answer is yes (no) when its first word is 'yes' ('no') followed "
    "by , . ! ; : or the end of the answer."
)
OBJECTIVES: dict[str, str] = {
    RANDOM: "Uniform random selection: the first {size} train samples of a seeded permutation (numpy PCG64, "
    "seed {seed}) of the pool's train samples in pool order.",
    DIVERSITY: "{task_mix}Concept coverage with diminishing returns: " + DIVERSITY_RULE,
    BALANCE: "{task_mix}Yes/no balance by choosing samples, never by editing text: walk the train samples in a "
    "seeded random order (seed {seed}); " + BALANCE_RULE,
    CORE: "{task_mix}Diversity then balance, at {size} samples. Diversity: "
    + DIVERSITY_RULE
    + " "
    + DIVERSITY_ORDER
    + " Then balance: walk the train samples in the diversity order; "
    + BALANCE_RULE,
    ALL: "No selection: every sample whose image is not in SVIT's test image list.",
}
OBJECTIVES = {method: text + DIAGNOSTICS for method, text in OBJECTIVES.items()}
OBJECTIVES[MIX] = (
    "LLaVA-v1.5-mix-665K with its LLaVA-Instruct-150K records replaced by core-150k in LLaVA format. "
    + OBJECTIVES[CORE]
)


@dataclass
class Selection:
    """A recipe's result before materializing: sorted ids plus manifest, diagnostics and objective."""

    spec: RecipeSpec
    ids: list[str]
    info: dict[str, Any]


def candidates_of(matched: MatchedPool) -> tuple[np.ndarray, Candidates]:
    """Pool rows of the train samples, and the selection inputs restricted to them."""
    rows = np.flatnonzero(~matched.test)
    return rows, Candidates(
        matrix=matched.matrix[rows],
        yes=matched.yes[rows],
        no=matched.no[rows],
        weights=matched.weights,
        task=matched.task[rows],
    )


def sorted_ids(matched: MatchedPool, rows: np.ndarray) -> list[str]:
    """Sample ids of pool ``rows``, sorted in plain string (code point) order."""
    ids = matched.ids.take(pa.array(rows, pa.int64()))
    return ids.take(pc.sort_indices(ids)).to_pylist()


def recipe_spec(name: str, task_mix: str | None) -> RecipeSpec:
    """The registered recipe, with ``task_mix`` overridden when given (a user error if unknown)."""
    spec = get_recipe(name)
    if task_mix is None:
        return spec
    if task_mix not in TASK_MIXES:
        raise SvitError(f"unknown task mix {task_mix!r}; known: {', '.join(TASK_MIXES)}")
    return replace(spec, task_mix=task_mix)


def select_recipe(
    name: str,
    pool: Pool,
    *,
    size: int | None = None,
    seed: int = 0,
    concepts: str | None = None,
    task_mix: str | None = None,
    progress: bool = True,
) -> Selection:
    """Compute recipe ``name`` on ``pool``: the pure selection wrapped with caching and bookkeeping.

    ``task_mix`` (None: the recipe's) overrides :attr:`RecipeSpec.task_mix`; it enters the manifest.
    """
    spec = recipe_spec(name, task_mix)
    vocabulary = load_vocabulary(concepts)
    matched = match_pool(pool, vocabulary, progress=progress)
    rows, candidates = candidates_of(matched)
    if candidates.size == 0:
        raise SvitError("the pool has no train samples to select from (every image is in the test list)")
    n, size_rule = resolve_size(spec, size, matched.num_rows, candidates.size)
    picked, balance = SELECTORS[spec.method](candidates, n, seed, spec)
    if balance is None:
        ratio = ratio_report(candidates.yes[picked].sum(), candidates.no[picked].sum())
        balance = BalanceReport(ratio, ratio, True)
    ids = sorted_ids(matched, rows[picked])
    parameters = {**spec.parameters(), "size": n, "size_rule": size_rule, "vocabulary": vocabulary.name}
    diagnostics = diagnose(
        candidates.matrix, matched.task[rows], matched.answer_words[rows], picked, balance, seed=seed
    )
    stratified = spec.method in (DIVERSITY, BALANCE, CORE, MIX) and spec.task_mix != FREE
    if stratified:
        quotas = strata_of(candidates.task, candidates.size, n, spec.task_mix)[1]
        diagnostics["task_quotas"] = {t: int(q) for t, q in zip(TASKS, quotas, strict=True) if q}
    if spec.method in (BALANCE, CORE, MIX):
        diagnostics["balance"] = {
            "target_yes_share": spec.target_yes_share,
            "tolerance": spec.tolerance,
            "reached": balance.reached,
            "note": balance.note,
        }
    diagnostics["top_concepts"] = top_concepts(candidates.matrix, picked, matched.concepts)
    counts = {
        "pool": matched.num_rows,
        "candidates": candidates.size,
        "held_out_test": int(matched.test.sum()),
        "selected": len(ids),
        "concepts": len(matched.concepts),
        "candidate_yes_no": ratio_report(candidates.yes.sum(), candidates.no.sum()),
    }
    manifest = make_manifest(
        pool_fingerprint=pool.fingerprint,
        vocabulary_hash=vocabulary.hash,
        parameters=parameters,
        seed=seed,
        ids=ids,
        counts=counts,
    )
    mix_rule = TASK_MIX[spec.task_mix].format(
        size=f"{n:,}",
        candidates=f"{candidates.size:,}",
        quotas=", ".join(f"{t} {q:,}" for t, q in diagnostics.get("task_quotas", {}).items()),
    )
    objective = OBJECTIVES[spec.method].format(
        task_mix=mix_rule,
        quota_rule=QUOTA_RULE[spec.task_mix].format(size=f"{n:,}"),
        rounds=spec.rounds,
        size=f"{n:,}",
        seed=seed,
        decay=spec.decay,
        target=spec.target_yes_share,
        tolerance=spec.tolerance,
        vocabulary=vocabulary.name,
        vocabulary_hash=vocabulary.hash,
    )
    info = {
        "kind": "recipe",
        "recipe": name,
        "manifest": manifest,
        "diagnostics": diagnostics,
        "objective": " ".join(objective.split()),
    }
    before, after = diagnostics["yes_no"]["before"], diagnostics["yes_no"]["after"]
    log.info(
        "recipe %s: %s of %s train samples (%s); coverage %.3f vs random %.3f, entropy %.3f vs %.3f; "
        "yes share %.3f -> %.3f",
        name,
        f"{n:,}",
        f"{candidates.size:,}",
        size_rule,
        diagnostics["coverage"]["selected"],
        diagnostics["coverage"]["random"],
        diagnostics["entropy"]["selected"],
        diagnostics["entropy"]["random"],
        before["yes_share"],
        after["yes_share"],
    )
    return Selection(spec, ids, info)


def build_recipe(
    name: str,
    pool: Pool,
    *,
    size: int | None = None,
    seed: int = 0,
    concepts: str | None = None,
    task_mix: str | None = None,
    out_name: str | None = None,
    llava_mix: str | None = None,
    progress: bool = True,
) -> ConfigRows:
    """The rows of recipe ``name`` for the dataset folder (called by ``svit-recipe build``).

    ``task_mix`` None means the recipe's default (``RecipeSpec.task_mix``).
    """
    spec = recipe_spec(name, task_mix)
    if spec.method == MIX and not llava_mix:
        raise SvitError("mix-665k needs --llava-mix: the LLaVA-v1.5-mix-665K JSON to rebuild")
    parts = None
    if spec.method == MIX:  # check the user's file before the selection work
        from svit_data.recipes.mix import scan_mix

        parts = scan_mix(llava_mix, progress=progress)
    selection = select_recipe(
        name, pool, size=size, seed=seed, concepts=concepts, task_mix=task_mix, progress=progress
    )
    config = out_name or name
    folder = write_manifest(config, selection.info["manifest"], selection.ids)
    log.info("manifest and ids of %s in %s", config, folder)
    description = CONFIGS[name].description
    if out_name:
        m = selection.info["manifest"]
        description = (
            f"{description} Custom build of recipe {name}: {len(selection.ids):,} samples, seed {m['seed']}."
        )
    if spec.method == MIX:
        from svit_data.recipes.mix import mix_rows

        return mix_rows(config, description, pool, selection, llava_mix, parts, seed=seed)
    ids = None if spec.method == ALL else selection.ids
    return ConfigRows(
        name=config,
        description=description,
        features=FEATURES,
        splits={TRAIN: select_rows(pool, ids=ids, split=TRAIN)},
        info=selection.info,
    )


__all__ = ["build_recipe", "select_recipe", "Selection"]
