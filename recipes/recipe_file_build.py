"""Build a recipe file (:mod:`.recipe_file`): mixed pool -> per-source selections -> union -> global balance."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from svit_data.configs import RECIPE
from svit_data.errors import SvitError
from svit_data.materialize import ConfigRows, check_ids, select_rows
from svit_data.pool import HUB_PREFIX, Pool
from svit_data.recipes.build import _describe, _given, _Picked, _report
from svit_data.recipes.manifest import write_manifest
from svit_data.recipes.matching import match_pool
from svit_data.recipes.methods import ALL, METHODS
from svit_data.recipes.pool_rows import candidates_of, capped_rows, excluded_rows, sorted_ids, source_codes
from svit_data.recipes.quality_filter import eligibility, parse_where, signal_distributions
from svit_data.recipes.recipe_file import (
    RECIPE_FILE_NAME,
    RecipeFile,
    pick,
    read_recipe_file,
    shipped_recipe,
    with_overrides,
)
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


def _pick_all(
    recipe: RecipeFile, matched, left_out: np.ndarray, source: np.ndarray, names: list[str]
) -> tuple[np.ndarray, dict[str, int], BalanceReport | None]:
    """Pool rows each source's selection picks (their union, sorted), the count per source, and the balance
    report of a file with one method selection (what the diagnostics then show)."""
    chosen: list[np.ndarray] = []
    per_source: dict[str, int] = {}
    report = None
    for name, selection in recipe.select.items():
        code = names.index(name) if name in names else -1
        rows, candidates = candidates_of(matched, left_out | (source != code), source)
        picked, report = pick(selection, candidates, recipe.seed, name, matched.num_rows)
        per_source[name] = len(picked)
        chosen.append(rows[picked])
        log.info(
            "source %s: %s of %s candidates (%s)", name, f"{len(picked):,}", f"{len(rows):,}", selection.kind
        )
    union = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return union, per_source, report if len(recipe.select) == 1 else None


def build_recipe_file(
    recipe: RecipeFile,
    config: str,
    pool: Pool,
    *,
    progress: bool = True,
    where: tuple[str, ...] = (),
    exclude_images: Collection[int] | None = None,
    ids_file: str | None = None,
) -> ConfigRows:
    """The rows of ``config`` built from ``recipe`` on ``pool`` (the mixed pool of its :func:`source_specs`;
    called by ``svit-recipe build --recipe`` and for the shipped recipes, :func:`build_shipped`).
    ``where``, ``exclude_images`` and ``ids_file`` act as for the named recipes (``select_recipe``)."""
    parts = check_llava_mix(recipe, progress=progress)  # the user's mix file is checked before selecting
    vocabulary = load_vocabulary(recipe.concepts)
    matched = match_pool(pool, vocabulary, progress=progress)
    source, names = source_codes(pool)
    train = ~matched.test
    conditions = tuple(parse_where(text) for text in where)
    eligible = eligibility(pool, matched, train, include_flagged=recipe.include_flagged, where=conditions)
    left_out = ~eligible.keep
    excluded = excluded_rows(pool, exclude_images)
    if excluded is not None:
        left_out = left_out | excluded
    capped = capped_rows(source, train & ~left_out, recipe.cap, recipe.seed) if recipe.cap else None
    if capped is not None:
        left_out = left_out | capped
    union, per_source, report = _pick_all(recipe, matched, left_out, source, names)
    rows, candidates = candidates_of(matched, left_out, source)  # every candidate, for the diagnostics
    if candidates.size == 0:
        raise SvitError("the pool has no train samples to select from (every image is in the test list)")
    picked = np.searchsorted(rows, union)
    before = ratio_report(candidates.yes[picked].sum(), candidates.no[picked].sum())
    balance = report or BalanceReport(before, before, True)
    (only,) = recipe.select.values() if len(recipe.select) == 1 else (None,)
    spec = RecipeSpec(name=config, method=ALL, help="recipe file", task_mix=FREE)
    if only is not None and only.spec is not None and recipe.balance is None:
        spec = only.spec  # one method over the pool: its quotas and balance are the config's
    if recipe.balance is not None:
        outside = ~np.isin(np.arange(len(source)), union)
        union_rows, union_candidates = candidates_of(matched, outside | left_out, source)
        size = min(recipe.balance.size or len(union_rows), len(union_rows))
        inner, balance = METHODS[recipe.balance.method].select(
            union_candidates, size, recipe.seed, recipe.balance
        )
        picked = np.searchsorted(rows, union_rows[np.sort(inner)])
    if ids_file is not None:
        picked = _given(ids_file, matched, rows)
    ids = sorted_ids(matched, rows[picked])
    p = _Picked(matched, rows, candidates, picked, balance, len(ids), f"recipe file {recipe.path.name}")
    diagnostics = _report(spec, p, recipe.seed, names)
    diagnostics.quality = eligible.report(np.flatnonzero(train))
    diagnostics.signals = signal_distributions(pool, matched, rows[picked])
    state = _describe(config, spec, p, diagnostics, ids, pool, recipe.seed, vocabulary)
    state.manifest.parameters = {
        "recipe_file": recipe.path.name,
        "recipe_sha256": recipe.sha256,
        "recipe": recipe.content,
        "vocabulary": vocabulary.name,
        **({"overrides": recipe.overrides} if recipe.overrides else {}),
        **({"where": [str(c) for c in conditions]} if conditions else {}),
    }
    state.manifest.counts.update(selected_per_source=per_source)
    state.manifest.counts["excluded_by_quality"] = diagnostics.quality["excluded"]
    if capped is not None:
        state.manifest.counts["capped_candidates"] = int(capped.sum())
    if excluded is not None:
        state.manifest.counts["excluded_candidates"] = int((excluded & train).sum())
    method_text = state.objective if spec.method != ALL else ""  # one method over the pool: its prose
    state.objective = f"{_objective(recipe, per_source)} {method_text}".rstrip()
    if ids_file is not None:
        state.objective = (
            f"Rebuilt from the id list {Path(ids_file).name} ({len(ids):,} ids). " + state.objective
        )
    state.recipe_file = RECIPE_FILE_NAME
    rows = check_ids(pool, ids)
    write_manifest(config, state.manifest, ids)
    description = recipe.description or f"Mixed selection from the recipe file {recipe.path.name}."
    if recipe.llava_mix is not None and parts is not None:
        from svit_data.recipes.mix import mix_rows

        mix = recipe.llava_mix
        rows_out = mix_rows(
            config,
            description,
            pool,
            ids,
            state,
            mix_path(recipe),
            parts,
            seed=recipe.seed,
            image_prefix=mix.image_prefix,
        )
        rows_out.extra_files = {RECIPE_FILE_NAME: recipe.text}
        return rows_out
    return ConfigRows(
        name=config,
        description=description,
        features=FEATURES,
        splits={TRAIN: select_rows(pool, rows=rows, split=TRAIN)},
        kind=RECIPE,
        pool_fingerprint=pool.fingerprint,
        task_mix=diagnostics.task_mix,
        recipe=state,
        ids=ids,
        extra_files={RECIPE_FILE_NAME: recipe.text},
    )


def check_llava_mix(recipe: RecipeFile, *, progress: bool = True) -> Counter | None:
    """The parts of the recipe's LLaVA mix file (checked before any selection work), or None without one."""
    if recipe.llava_mix is None:
        return None
    if recipe.llava_mix.file is None:
        raise SvitError(
            f"{recipe.path.name} writes into a LLaVA-v1.5-mix-665K file: give it with --llava-mix "
            "(the LLaVA-v1.5-mix-665K JSON to rebuild)"
        )
    from svit_data.recipes.mix import scan_mix

    return scan_mix(mix_path(recipe), progress=progress)


def mix_path(recipe: RecipeFile) -> str:
    assert recipe.llava_mix is not None and recipe.llava_mix.file is not None
    return resolve_path(recipe.llava_mix.file, recipe)


def build_shipped(
    name: str,
    pool: Pool,
    *,
    out_name: str | None = None,
    progress: bool = True,
    where: tuple[str, ...] = (),
    exclude_images: Collection[int] | None = None,
    ids_file: str | None = None,
    **overrides: Any,
) -> ConfigRows:
    """A recipe svit ships as a file (``SHIPPED``, e.g. ``mix-665k``) built on ``pool`` (the CLI's sources,
    which take the place of the file's one source); ``overrides`` are :func:`with_overrides`' flags."""
    recipe = with_overrides(read_recipe_file(shipped_recipe(name)), **overrides)
    names = source_codes(pool)[1]
    if len(recipe.sources) != 1 or len(names) != 1:
        raise SvitError(
            f"{name} selects from one source (the SVIT pool) and this build has {len(names)} "
            f"({', '.join(names)}); for a mix over several sources write a recipe file (build --recipe)"
        )
    ((file_name, selection),) = recipe.select.items()
    recipe = replace(recipe, select={names[0]: selection})
    return build_recipe_file(
        recipe,
        out_name or name,
        pool,
        progress=progress,
        where=where,
        exclude_images=exclude_images,
        ids_file=ids_file,
    )
