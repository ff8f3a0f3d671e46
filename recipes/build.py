"""Build a named recipe: vocabulary -> cached matrix -> selection -> manifest + diagnostics -> rows.

Recipes choose among the **train** samples only (images in SVIT's test id list are held out, so a
recipe never trains on the test split); their configs have one split, ``train``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
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
from svit_data.recipes.vocabulary import load_vocabulary
from svit_data.recipes.yesno import ratio_report

from svit_data.configs import CONFIGS
from svit_data.errors import SvitError
from svit_data.materialize import ConfigRows, select_rows
from svit_data.pool import Pool
from svit_data.schema import FEATURES
from svit_data.splits import TRAIN

log = logging.getLogger(__name__)

Selector = Callable[[Candidates, int, int, RecipeSpec], tuple[np.ndarray, BalanceReport | None]]


def _unbalanced(picked: np.ndarray) -> tuple[np.ndarray, None]:
    return picked, None


SELECTORS: dict[str, Selector] = {
    RANDOM: lambda c, size, seed, spec: _unbalanced(select_random(c, size, seed=seed)),
    DIVERSITY: lambda c, size, seed, spec: _unbalanced(
        select_diversity(c, size, seed=seed, decay=spec.decay)
    ),
    BALANCE: lambda c, size, seed, spec: select_balance(
        c, size, seed=seed, target=spec.target_yes_share, tolerance=spec.tolerance
    ),
    CORE: lambda c, size, seed, spec: select_core(
        c, size, seed=seed, decay=spec.decay, target=spec.target_yes_share, tolerance=spec.tolerance
    ),
    ALL: lambda c, size, seed, spec: _unbalanced(np.arange(c.size)),
    MIX: lambda c, size, seed, spec: select_core(
        c, size, seed=seed, decay=spec.decay, target=spec.target_yes_share, tolerance=spec.tolerance
    ),
}

SCORE = (
    "score(s) = sum over the concepts c that sample s mentions of w_c / (1 + r_c(s))^{decay}, where r_c(s) is "
    "the 0-based rank of s among the train samples mentioning c, ordered by their overlap b(s) = sum of w_c "
    "over their concepts (descending, ties by a seeded permutation, seed {seed}). Concepts come from the "
    "vocabulary {vocabulary} (hash {vocabulary_hash}); a sample mentions a concept when a surface form of it "
    "occurs in its question or answer text after lowercasing and replacing runs of characters that are not "
    "letters, digits or spaces with a space, with simple plural/singular forms."
)
BALANCE_RULE = (
    "keep the k first samples that lean to the over-represented answer and fill the other {size} - k places "
    "with the first other samples, k chosen so that yes / (yes + no) over the selection is closest to "
    "{target} (tolerance {tolerance}). An answer is yes (no) when its first word is 'yes' ('no') followed by "
    ", . ! ; : or the end of the answer."
)
OBJECTIVES: dict[str, str] = {
    RANDOM: "Uniform random selection: the first {size} train samples of a seeded permutation (numpy PCG64, "
    "seed {seed}) of the pool's train samples in pool order.",
    DIVERSITY: "Concept diversity with diminishing returns: the {size} train samples of highest score are "
    "kept (ties by the seeded permutation), " + SCORE,
    BALANCE: "Yes/no balance by choosing samples, never by editing text: walk the train samples in a seeded "
    "random order (seed {seed}); " + BALANCE_RULE,
    CORE: "Diversity then balance, at {size} samples: walk the train samples in descending diversity score, "
    + SCORE
    + " Then balance: "
    + BALANCE_RULE,
    ALL: "No selection: every sample whose image is not in SVIT's test image list.",
}
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
        matrix=matched.matrix[rows], yes=matched.yes[rows], no=matched.no[rows], weights=matched.weights
    )


def sorted_ids(matched: MatchedPool, rows: np.ndarray) -> list[str]:
    """Sample ids of pool ``rows``, sorted in plain string (code point) order."""
    ids = matched.ids.take(pa.array(rows, pa.int64()))
    return ids.take(pc.sort_indices(ids)).to_pylist()


def select_recipe(
    name: str,
    pool: Pool,
    *,
    size: int | None = None,
    seed: int = 0,
    concepts: str | None = None,
    progress: bool = True,
) -> Selection:
    """Compute recipe ``name`` on ``pool``: the pure selection wrapped with caching and bookkeeping."""
    spec = get_recipe(name)
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
    objective = OBJECTIVES[spec.method].format(
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
    out_name: str | None = None,
    llava_mix: str | None = None,
    progress: bool = True,
) -> ConfigRows:
    """The rows of recipe ``name`` for the dataset folder (called by ``svit-recipe build``)."""
    spec = get_recipe(name)
    if spec.method == MIX and not llava_mix:
        raise SvitError("mix-665k needs --llava-mix: the LLaVA-v1.5-mix-665K JSON to rebuild")
    parts = None
    if spec.method == MIX:  # check the user's file before the selection work
        from svit_data.recipes.mix import scan_mix

        parts = scan_mix(llava_mix, progress=progress)
    selection = select_recipe(name, pool, size=size, seed=seed, concepts=concepts, progress=progress)
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
