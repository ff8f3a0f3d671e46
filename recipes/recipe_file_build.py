"""Build a recipe file (:mod:`.recipe_file`): mixed pool -> per-source selections -> union -> global balance."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from svit_data.configs import RECIPE
from svit_data.materialize import ConfigRows, check_ids, select_rows
from svit_data.pool import HUB_PREFIX, Pool
from svit_data.recipes.build import (
    _describe,
    _Picked,
    _report,
    candidates_of,
    capped_rows,
    sorted_ids,
    source_codes,
)
from svit_data.recipes.manifest import write_manifest
from svit_data.recipes.matching import match_pool
from svit_data.recipes.methods import ALL, METHODS
from svit_data.recipes.quality_filter import eligibility
from svit_data.recipes.recipe_file import RECIPE_FILE_NAME, RecipeFile, pick
from svit_data.recipes.registry import RecipeSpec
from svit_data.recipes.selection import BalanceReport
from svit_data.recipes.strata import FREE
from svit_data.recipes.vocabulary import load_vocabulary
from svit_data.recipes.yesno import ratio_report
from svit_data.schema import FEATURES
from svit_data.sources import SourceSpec
from svit_data.splits import TRAIN

log = logging.getLogger(__name__)


def resolve_path(path: str, recipe: RecipeFile) -> str:
    """A relative source path is relative to the recipe file's folder ('sample' and hf:// as they are)."""
    if path == "sample" or path.startswith(HUB_PREFIX) or Path(path).is_absolute():
        return path
    return str(recipe.path.parent / path)


def source_specs(recipe: RecipeFile) -> list[SourceSpec]:
    return [
        SourceSpec(name, resolve_path(s["path"], recipe), s.get("format"), s.get("box_frame"))
        for name, s in recipe.sources.items()
    ]


def _objective(recipe: RecipeFile, picked: dict[str, int]) -> str:
    parts = []
    for name, selection in recipe.select.items():
        kind = selection.kind if selection.size is None else f"{selection.kind} {selection.size:,}"
        parts.append(f"{name}: {kind} ({picked[name]:,} selected)")
    text = f"Recipe file {recipe.path.name} (sha256 {recipe.sha256[:16]}), seed {recipe.seed}. "
    text += "Per source, among its train candidates: " + "; ".join(parts) + ". "
    if recipe.cap:
        text += f"Each source is capped at {recipe.cap:,} candidates first (a seeded random subset). "
    if recipe.balance:
        text += (
            f"The union is then balanced to {recipe.balance.size:,} samples with a yes share of "
            f"{recipe.balance.target_yes_share} (tolerance {recipe.balance.tolerance}). "
        )
    return text + "Methods are those of the named recipes (see their objectives)."


def build_recipe_file(recipe: RecipeFile, config: str, pool: Pool, *, progress: bool = True) -> ConfigRows:
    """The rows of ``config`` built from ``recipe`` on ``pool`` (the mixed pool of its :func:`source_specs`;
    called by ``svit-recipe build --recipe``)."""
    vocabulary = load_vocabulary(recipe.concepts)
    matched = match_pool(pool, vocabulary, progress=progress)
    source, names = source_codes(pool)
    train = ~matched.test
    eligible = eligibility(pool, matched, train, include_flagged=recipe.include_flagged)
    left_out = ~eligible.keep
    capped = capped_rows(source, train & ~left_out, recipe.cap, recipe.seed) if recipe.cap else None
    if capped is not None:
        left_out = left_out | capped
    chosen: list[np.ndarray] = []
    per_source: dict[str, int] = {}
    for name, selection in recipe.select.items():
        code = names.index(name) if name in names else -1
        rows, candidates = candidates_of(matched, left_out | (source != code), source)
        picked = pick(selection, candidates, recipe.seed, name)
        per_source[name] = len(picked)
        chosen.append(rows[picked])
        log.info(
            "source %s: %s of %s candidates (%s)", name, f"{len(picked):,}", f"{len(rows):,}", selection.kind
        )
    union = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    rows, candidates = candidates_of(matched, left_out, source)  # every candidate, for the diagnostics
    picked = np.searchsorted(rows, union)
    before = ratio_report(candidates.yes[picked].sum(), candidates.no[picked].sum())
    balance = BalanceReport(before, before, True)
    if recipe.balance is not None:
        outside = ~np.isin(np.arange(len(source)), union)
        union_rows, union_candidates = candidates_of(matched, outside, source)
        size = min(recipe.balance.size or len(union_rows), len(union_rows))
        inner, balance = METHODS[recipe.balance.method].select(
            union_candidates, size, recipe.seed, recipe.balance
        )
        picked = np.searchsorted(rows, union_rows[np.sort(inner)])
    ids = sorted_ids(matched, rows[picked])
    spec = RecipeSpec(name=config, method=ALL, help="recipe file", task_mix=FREE)
    p = _Picked(matched, rows, candidates, picked, balance, len(ids), f"recipe file {recipe.path.name}")
    diagnostics = _report(spec, p, recipe.seed, names)
    state = _describe(config, spec, p, diagnostics, ids, pool, recipe.seed, vocabulary)
    state.manifest.parameters = {
        "recipe_file": recipe.path.name,
        "recipe_sha256": recipe.sha256,
        "recipe": recipe.content,
        "vocabulary": vocabulary.name,
    }
    state.manifest.counts.update(selected_per_source=per_source)
    if capped is not None:
        state.manifest.counts["capped_candidates"] = int(capped.sum())
    state.objective = _objective(recipe, per_source)
    state.recipe_file = RECIPE_FILE_NAME
    check_ids(pool, ids)
    write_manifest(config, state.manifest, ids)
    description = recipe.description or f"Mixed selection from the recipe file {recipe.path.name}."
    return ConfigRows(
        name=config,
        description=description,
        features=FEATURES,
        splits={TRAIN: select_rows(pool, ids=ids, split=TRAIN)},
        kind=RECIPE,
        pool_fingerprint=pool.fingerprint,
        task_mix=diagnostics.task_mix,
        recipe=state,
        ids=ids,
        extra_files={RECIPE_FILE_NAME: recipe.text},
    )
