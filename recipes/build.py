"""Build a named recipe: vocabulary -> cached matrix -> selection -> manifest + diagnostics -> rows.

Recipes choose among the **train** samples only (images in SVIT's test id list are held out, so a
recipe never trains on the test split); their configs have one split, ``train``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.configs import CONFIGS, RECIPE
from svit_data.errors import SvitError
from svit_data.materialize import ConfigRows, check_ids, select_rows
from svit_data.pool import Pool
from svit_data.recipes.diagnostics import diagnose, reference_order, top_concepts
from svit_data.recipes.diversity import COMPILED_FROM, warm_up
from svit_data.recipes.manifest import load_ids, make_manifest, write_manifest
from svit_data.recipes.matching import MatchedPool, match_pool
from svit_data.recipes.methods import METHODS
from svit_data.recipes.objectives import objective
from svit_data.recipes.pool_rows import candidates_of, capped_rows, excluded_rows, sorted_ids, source_codes
from svit_data.recipes.quality_filter import eligibility, parse_where, signal_distributions
from svit_data.recipes.recipe_file import SHIPPED
from svit_data.recipes.registry import (
    ALL,
    RecipeSpec,
    get_recipe,
    resolve_size,
)
from svit_data.recipes.selection import (
    BalanceReport,
    Candidates,
)
from svit_data.recipes.strata import FREE, SOURCES, TASK_MIXES, strata_of
from svit_data.recipes.vocabulary import load_vocabulary
from svit_data.recipes.yesno import ratio_report
from svit_data.schema import FEATURES
from svit_data.splits import TRAIN
from svit_data.state import (
    BalanceState,
    Diagnostics,
    RecipeState,
    SelectedVsRandom,
    YesNo,
    YesNoChange,
)
from svit_data.tasks import TASK_LABELS

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """A recipe's result before materializing: sorted ids plus its recipe state (manifest, diagnostics)."""

    spec: RecipeSpec
    ids: list[str]
    recipe: RecipeState


def recipe_spec(name: str, task_mix: str | None) -> RecipeSpec:
    """The registered recipe, with ``task_mix`` overridden when given (a user error if unknown)."""
    spec = get_recipe(name)
    if task_mix is None:
        return spec
    if task_mix not in TASK_MIXES:
        raise SvitError(f"unknown task mix {task_mix!r}; known: {', '.join(TASK_MIXES)}")
    return replace(spec, task_mix=task_mix)


@dataclass
class _Picked:
    """What the selection step hands the report: candidates, the picked ones and the balance report."""

    matched: MatchedPool
    rows: np.ndarray  # pool rows of the candidates
    candidates: Candidates
    picked: np.ndarray  # candidate indices
    balance: BalanceReport
    size: int
    size_rule: str
    reference: Future | None = None  # the diagnostics' reference permutation, drawn while selecting


def _soon(fn: Callable, *args: Any) -> Future:
    """``fn(*args)`` on a worker thread of its own: for work that releases the GIL (numpy's shuffle)."""
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        return executor.submit(fn, *args)
    finally:
        executor.shutdown(wait=False)


def _select(
    spec: RecipeSpec,
    matched: MatchedPool,
    size: int | None,
    seed: int,
    ids_file: str | None = None,
    excluded: np.ndarray | None = None,
    source: np.ndarray | None = None,
) -> _Picked:
    """The pure selection: the train candidates (less ``excluded`` pool rows) and the ones the recipe's
    method picks (or ``ids_file`` lists)."""
    rows, candidates = candidates_of(matched, excluded, source)
    if candidates.size == 0:
        raise SvitError("the pool has no train samples to select from (every image is in the test list)")
    reference = _soon(reference_order, candidates.size, seed)
    if ids_file is not None:
        picked = _given(ids_file, matched, rows)
        n, size_rule = len(picked), f"--ids {Path(ids_file).name}"
        balance = None
    else:
        n, size_rule = resolve_size(spec, size, matched.num_rows, candidates.size)
        picked, balance = METHODS[spec.method].select(candidates, n, seed, spec)
    if balance is None:
        ratio = ratio_report(candidates.yes[picked].sum(), candidates.no[picked].sum())
        reached = abs(ratio["yes_share"] - spec.target_yes_share) <= spec.tolerance or ids_file is None
        balance = BalanceReport(ratio, ratio, reached)
    return _Picked(matched, rows, candidates, picked, balance, n, size_rule, reference)


def _given(ids_file: str, matched: MatchedPool, rows: np.ndarray) -> np.ndarray:
    """Candidate indices of the ids in ``ids_file``, in candidate order; every id must be a train sample."""
    ids = load_ids(ids_file)
    if not ids:
        raise SvitError(f"{ids_file}: the id list is empty")
    where = pc.index_in(pa.array(ids, pa.string()), value_set=matched.ids.take(pa.array(rows, pa.int64())))
    if where.null_count:
        first = ids[where.is_null().to_pylist().index(True)]
        raise SvitError(
            f"{ids_file}: {where.null_count:,} ids are not train samples of this pool (first: {first!r}); "
            "rebuild from the pool the list was made from"
        )
    return np.sort(where.to_numpy())


def _report(spec: RecipeSpec, p: _Picked, seed: int, source_names: list[str] | None = None) -> Diagnostics:
    """Diagnostics of the selection next to a random subset, with quotas and balance where they apply."""
    c = p.candidates
    raw = diagnose(
        c.matrix,
        p.matched.task[p.rows],
        p.matched.answer_words[p.rows],
        p.picked,
        p.balance,
        seed=seed,
        rows=c.rows,
        permutation=p.reference.result() if p.reference is not None else None,
    )
    diagnostics = Diagnostics(
        coverage=SelectedVsRandom(**raw["coverage"]),
        entropy=SelectedVsRandom(**raw["entropy"]),
        yes_no=YesNoChange(before=YesNo(**raw["yes_no"]["before"]), after=YesNo(**raw["yes_no"]["after"])),
        task_mix=raw["task_mix"],
        answer_length_quantiles=raw["answer_length_quantiles"],
        top_concepts=top_concepts(c.matrix, c.matrix_rows(p.picked), p.matched.concepts),
    )
    method = METHODS[spec.method]
    if method.stratified and spec.task_mix != FREE:
        quotas = strata_of(c.task, c.size, p.size, spec.task_mix, c.source)[1]
        labels = source_names if spec.task_mix == SOURCES and source_names else TASK_LABELS
        diagnostics.task_quotas = {t: int(q) for t, q in zip(labels, quotas, strict=False) if q}
    if method.balances:
        diagnostics.balance = BalanceState(
            target_yes_share=spec.target_yes_share,
            tolerance=spec.tolerance,
            reached=p.balance.reached,
            note=p.balance.note,
        )
    return diagnostics


def _describe(
    name: str,
    spec: RecipeSpec,
    p: _Picked,
    diagnostics: Diagnostics,
    ids: list[str],
    pool: Pool,
    seed: int,
    vocabulary: Any,
) -> RecipeState:
    """The manifest (inputs and a hash of the output) and the objective text for the card."""
    c = p.candidates
    manifest = make_manifest(
        pool_fingerprint=pool.fingerprint,
        vocabulary_hash=vocabulary.hash,
        parameters={
            **spec.parameters(),
            "size": p.size,
            "size_rule": p.size_rule,
            "vocabulary": vocabulary.name,
        },
        seed=seed,
        ids=ids,
        counts={
            "pool": p.matched.num_rows,
            "candidates": c.size,
            "held_out_test": int(p.matched.test.sum()),
            "selected": len(ids),
            "concepts": len(p.matched.concepts),
            "candidate_yes_no": ratio_report(c.yes.sum(), c.no.sum()),
        },
    )
    text = objective(
        METHODS[spec.method].objective,
        spec,
        size=p.size,
        candidates=c.size,
        quotas=diagnostics.task_quotas or {},
        seed=seed,
        vocabulary=vocabulary.name,
        vocabulary_hash=vocabulary.hash,
    )
    return RecipeState(name=name, manifest=manifest, diagnostics=diagnostics, objective=text)


def select_recipe(
    name: str,
    pool: Pool,
    *,
    size: int | None = None,
    seed: int = 0,
    concepts: str | None = None,
    task_mix: str | None = None,
    progress: bool = True,
    ids_file: str | None = None,
    include_flagged: bool = False,
    where: tuple[str, ...] = (),
    exclude_images: Collection[int] | None = None,
    source_cap: int | None = None,
) -> Selection:
    """Compute recipe ``name`` on ``pool``: select, then report diagnostics, then describe (manifest, objective).

    ``task_mix`` (None: the recipe's) overrides :attr:`RecipeSpec.task_mix`; it enters the manifest.
    ``ids_file`` (a sorted id list, e.g. a dataset folder's ``data/<config>/ids.txt.gz``) replaces the
    selection: the config is rebuilt from exactly those ids, with fresh diagnostics.
    Samples of ``exclude_images`` (``build --exclude-images``) are no candidates; a hash of those image ids
    is a manifest parameter and their count a manifest count. ``source_cap``: at most this many train
    candidates per source (a seeded random subset of bigger sources, before selecting; Cambrian-1 found
    capping each source beat using everything).
    """
    spec = recipe_spec(name, task_mix)
    if pool.num_rows >= COMPILED_FROM:  # the greedy and the diagnostics run compiled passes
        warm_up()
    vocabulary = load_vocabulary(concepts)
    matched = match_pool(pool, vocabulary, progress=progress)
    conditions = tuple(parse_where(text) for text in where)
    eligible = eligibility(pool, matched, ~matched.test, include_flagged=include_flagged, where=conditions)
    excluded = excluded_rows(pool, exclude_images)
    left_out = ~eligible.keep if excluded is None else excluded | ~eligible.keep
    source, source_names = source_codes(pool) if spec.task_mix == SOURCES or source_cap else (None, None)
    capped = None
    if source_cap is not None and source is not None:  # the cap counts the candidates left after the rest
        capped = capped_rows(source, ~matched.test & ~left_out, source_cap, seed)
        left_out = left_out | capped
    picked = _select(spec, matched, size, seed, ids_file, left_out, source)
    selected = picked.rows[picked.picked]
    # the signals' read and quantiles release the GIL: on a thread of their own while the report runs
    signals = _soon(signal_distributions, pool, matched, selected)
    ids = sorted_ids(matched, selected)
    diagnostics = _report(spec, picked, seed, source_names)
    diagnostics.quality = eligible.report(np.flatnonzero(~matched.test))
    diagnostics.signals = signals.result()
    recipe = _describe(name, spec, picked, diagnostics, ids, pool, seed, vocabulary)
    recipe.manifest.parameters.update(include_flagged=include_flagged, where=[str(c) for c in conditions])
    recipe.manifest.counts["excluded_by_quality"] = diagnostics.quality["excluded"]
    if capped is not None:
        recipe.manifest.parameters["source_cap"] = source_cap
        recipe.manifest.counts["capped_candidates"] = int(capped.sum())
    if excluded is not None:
        listed = ",".join(map(str, sorted(set(exclude_images or ()))))
        recipe.manifest.parameters["exclude_images_sha256"] = hashlib.sha256(listed.encode()).hexdigest()
        recipe.manifest.counts["excluded_candidates"] = int((excluded & ~matched.test).sum())
    if ids_file is not None:
        recipe.objective = (
            f"Rebuilt from the id list {Path(ids_file).name} ({len(ids):,} ids, sha256 "
            f"{recipe.manifest.ids_sha256[:16]}), made by recipe {name}: {recipe.objective}"
        )
    before, after = diagnostics.yes_no.before, diagnostics.yes_no.after
    log.info(
        "recipe %s: %s of %s train samples (%s); coverage %.3f vs random %.3f, entropy %.3f vs %.3f; "
        "yes share %.3f -> %.3f",
        name,
        f"{picked.size:,}",
        f"{picked.candidates.size:,}",
        picked.size_rule,
        diagnostics.coverage.selected,
        diagnostics.coverage.random,
        diagnostics.entropy.selected,
        diagnostics.entropy.random,
        before.yes_share,
        after.yes_share,
    )
    return Selection(spec, ids, recipe)


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
    include_flagged: bool = False,
    where: tuple[str, ...] = (),
    ids_file: str | None = None,
    exclude_images: Collection[int] | None = None,
    source_cap: int | None = None,
) -> ConfigRows:
    """The rows of recipe ``name`` for the dataset folder (called by ``svit-recipe build``).

    ``task_mix`` None means the recipe's default (``RecipeSpec.task_mix``); ``ids_file`` rebuilds the
    config from a sorted id list instead of selecting (see :func:`select_recipe`).
    """
    if name in SHIPPED:  # recipes svit ships as recipe files (mix-665k)
        from svit_data.recipes.recipe_file_build import build_shipped

        return build_shipped(
            name, pool, out_name=out_name, progress=progress, where=where, exclude_images=exclude_images,
            ids_file=ids_file, seed=seed, size=size, task_mix=task_mix, concepts=concepts,
            include_flagged=include_flagged or None, cap=source_cap, llava_mix=llava_mix,
        )  # fmt: skip
    spec = recipe_spec(name, task_mix)
    selection = select_recipe(
        name,
        pool,
        size=size,
        seed=seed,
        concepts=concepts,
        task_mix=task_mix,
        progress=progress,
        ids_file=ids_file,
        include_flagged=include_flagged,
        where=where,
        exclude_images=exclude_images,
        source_cap=source_cap,
    )
    config = out_name or name
    folder = write_manifest(config, selection.recipe.manifest, selection.ids)
    log.info("manifest and ids of %s in %s", config, folder)
    description = CONFIGS[name].description
    size_rule = selection.recipe.manifest.parameters["size_rule"]
    if out_name:
        description = (
            f"{description} Custom build of recipe {name}: {len(selection.ids):,} samples, seed {seed}."
        )
    elif size_rule not in ("recipe default", "every candidate"):  # say the size this build really has
        description = f"{description} This build: {len(selection.ids):,} samples ({size_rule})."
    rows = check_ids(pool, selection.ids)  # the selection contract: sorted, unique, every id in the pool
    everything = (
        spec.method == ALL
        and exclude_images is None
        and not (selection.recipe.diagnostics.quality or {}).get("excluded")
    )
    return ConfigRows(
        name=config,
        description=description,
        features=FEATURES,
        splits={TRAIN: select_rows(pool, rows=None if everything else rows, split=TRAIN)},
        kind=RECIPE,
        pool_fingerprint=pool.fingerprint,
        task_mix=selection.recipe.diagnostics.task_mix,
        recipe=selection.recipe,
        ids=selection.ids,
    )


__all__ = ["build_recipe", "select_recipe", "Selection"]
