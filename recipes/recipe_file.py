"""Recipes as YAML files: named sources, a selection per source, a per-source cap, a seed, a global balance.

```yaml
seed: 0                      # optional (default 0)
cap: 350000                  # optional: at most this many train candidates per source (seeded random)
sources:                     # name -> path, or {path, format, box_frame}
  svit: sample
  inst: {path: llava_instruct_150k.json, format: llava, box_frame: square}
select:                      # per source; a source not listed is taken whole (all)
  svit: {method: core, size: 1000, target_yes_share: 0.5}   # diversity | balance | core, + parameters
  inst: {first: 500}         # or all, or {random: N}
balance: {size: 1200, target_yes_share: 0.5}               # optional: balance the union to this size
include_flagged: false       # optional: also select quality-flagged samples
llava_mix: {file: llava_v1_5_mix665k.json, image_prefix: vg/}   # optional: see below
```

A method selection may say ``scaled: true``: its ``size`` is then meant for the full SVIT pool (about 3.0M
samples) and scales down on a pool under 1M samples by ``pool samples / 3M``, as the named recipes do.
``llava_mix`` writes the selection in LLaVA format into a LLaVA-v1.5-mix-665K file in place of that
file's LLaVA-Instruct-150K part (the rule of :mod:`.mix`); ``file`` may be left out and given with
``--llava-mix``. The shipped ``mix-665k`` recipe (``recipes/data/mix-665k.yaml``, see :data:`SHIPPED`)
is such a file: ``svit-recipe build mix-665k --llava-mix FILE`` builds it.

The build: one mixed pool over the sources; the train candidates of each source (held-out test images,
flagged samples and capped samples left out); each source's selection on its own candidates, in the
order of ``select`` (``first`` takes pool order, ``random`` a seeded permutation, a method runs as the
named recipes do); the union; then the optional global balance over the union. The file's sha256 and its
parsed content go into the manifest; the file itself is copied beside the config's ids.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from svit_data.errors import InputError
from svit_data.formats.sources import SOURCE_FORMATS
from svit_data.frames import FRAMES
from svit_data.recipes.methods import ALL, BALANCE, CORE, DIVERSITY, METHODS
from svit_data.recipes.registry import RecipeSpec

log = logging.getLogger(__name__)

TOP_KEYS = (
    "seed",
    "cap",
    "sources",
    "select",
    "balance",
    "include_flagged",
    "concepts",
    "description",
    "llava_mix",
)
SOURCE_KEYS = ("path", "format", "box_frame")
LLAVA_MIX_KEYS = ("file", "image_prefix")
SHIPPED = {"mix-665k": "mix-665k.yaml"}  # config name -> recipe file in svit_data/recipes/data
SELECT_METHODS = (DIVERSITY, BALANCE, CORE)
PLAIN_SELECTIONS = ("all", "first", "random")
BALANCE_KEYS = ("size", "target_yes_share", "tolerance")
RECIPE_FILE_NAME = "recipe.yaml"  # the copy beside the config's ids


@dataclass(frozen=True)
class SourceSelection:
    """How one source's candidates are chosen: ``all``, ``first``/``random`` N, or a method with a spec."""

    kind: str  # "all", "first", "random" or a method name
    size: int | None = None
    spec: RecipeSpec | None = None
    size_rule: str = "recipe file"  # "scaled" (scaled: true) or "--size" (the CLI's, checked like it)


@dataclass
class RecipeFile:
    path: Path
    sha256: str
    text: bytes
    content: dict[str, Any]
    sources: dict[str, dict[str, Any]]
    select: dict[str, SourceSelection]
    seed: int = 0
    cap: int | None = None
    balance: RecipeSpec | None = None
    include_flagged: bool = False
    concepts: str | None = None
    description: str = ""
    llava_mix: LlavaMix | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # CLI flags that replaced file values


@dataclass(frozen=True)
class LlavaMix:
    """``llava_mix``: the selection replaces the LLaVA-Instruct part of this LLaVA-v1.5-mix-665K file."""

    file: str | None = None  # None: --llava-mix gives it
    image_prefix: str = "vg/"  # prefix of SVIT image paths in the LLaVA records


def _unknown(file: str, where: str, key: Any, known: tuple[str, ...]) -> InputError:
    return InputError(f"unknown key {key!r}; known: {', '.join(known)}", file=file, field=where)


def _positive_int(value: Any, file: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"must be a positive integer, got {value!r}", file=file, field=where)
    return value


def _selection(value: Any, name: str, file: str) -> SourceSelection:
    where = f"select.{name}"
    if value == "all":
        return SourceSelection("all")
    if not isinstance(value, dict):
        raise InputError(
            "must be 'all', {first: N}, {random: N} or {method: diversity|balance|core, size: N, ...}",
            file=file,
            field=where,
        )
    for plain in ("first", "random"):
        if plain in value:
            if len(value) != 1:
                raise InputError(f"{plain} takes no other keys", file=file, field=where)
            return SourceSelection(plain, _positive_int(value[plain], file, f"{where}.{plain}"))
    method = value.get("method")
    if method not in SELECT_METHODS:
        raise InputError(
            f"unknown selection {method!r}; known: all, first, random, {', '.join(SELECT_METHODS)}",
            file=file,
            field=f"{where}.method",
        )
    known = ("method", "size", "scaled", *METHODS[method].parameters)
    for key in value:
        if key not in known:
            raise _unknown(file, where, key, known)
    scaled = value.get("scaled", False)
    if not isinstance(scaled, bool):
        raise InputError(f"must be true or false, got {scaled!r}", file=file, field=f"{where}.scaled")
    if scaled and "size" not in value:
        raise InputError("scaled needs a size", file=file, field=f"{where}.scaled")
    params = {k: v for k, v in value.items() if k not in ("method", "scaled")}
    if "size" in params:
        _positive_int(params["size"], file, f"{where}.size")
    try:
        spec = RecipeSpec(name=f"{path_stem(file)}:{name}", method=method, help="recipe file", **params)
    except (TypeError, ValueError) as error:
        raise InputError(str(error), file=file, field=where) from None
    return SourceSelection(method, spec.size, spec, "scaled" if scaled else "recipe file")


def path_stem(file: str) -> str:
    return Path(file).stem


def _source(value: Any, name: str, file: str) -> dict[str, Any]:
    where = f"sources.{name}"
    if isinstance(value, str):
        return {"path": value}
    if not isinstance(value, dict) or "path" not in value:
        raise InputError("must be a path or {path, format, box_frame}", file=file, field=where)
    for key in value:
        if key not in SOURCE_KEYS:
            raise _unknown(file, where, key, SOURCE_KEYS)
    if value.get("format") is not None and value["format"] not in SOURCE_FORMATS:
        known = ", ".join(SOURCE_FORMATS)
        raise InputError(
            f"unknown format {value['format']!r}; known: {known}", file=file, field=f"{where}.format"
        )
    if value.get("box_frame") is not None and value["box_frame"] not in FRAMES:
        known = ", ".join(FRAMES)
        raise InputError(
            f"unknown box frame {value['box_frame']!r}; known: {known}", file=file, field=f"{where}.box_frame"
        )
    return dict(value)


def _llava_mix(value: Any, file: str) -> LlavaMix:
    if not isinstance(value, dict):
        raise InputError("must be {file, image_prefix}", file=file, field="llava_mix")
    for key in value:
        if key not in LLAVA_MIX_KEYS:
            raise _unknown(file, "llava_mix", key, LLAVA_MIX_KEYS)
    for key in LLAVA_MIX_KEYS:
        if key in value and not isinstance(value[key], str):
            raise InputError(f"must be a string, got {value[key]!r}", file=file, field=f"llava_mix.{key}")
    return LlavaMix(**value)


def shipped_recipe(name: str) -> Path:
    """The recipe file svit ships for config ``name`` (package data)."""
    from importlib import resources

    return Path(str(resources.files("svit_data.recipes").joinpath(f"data/{SHIPPED[name]}")))


def read_recipe_file(path: str | Path) -> RecipeFile:
    """Parse and check a recipe file; one located sentence for any unknown key, method or source."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot be read ({error.strerror})", file=file) from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InputError(f"is not valid YAML ({str(error).splitlines()[0]})", file=file) from None
    if not isinstance(content, dict):
        raise InputError("must be a YAML mapping with at least 'sources'", file=file)
    for key in content:
        if key not in TOP_KEYS:
            raise _unknown(file, "(top level)", key, TOP_KEYS)
    raw_sources = content.get("sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise InputError("must map source names to paths", file=file, field="sources")
    sources = {str(name): _source(value, str(name), file) for name, value in raw_sources.items()}
    raw_select = content.get("select") or {}
    if not isinstance(raw_select, dict):
        raise InputError("must map source names to selections", file=file, field="select")
    for name in raw_select:
        if name not in sources:
            raise InputError(
                f"names no source {name!r}; sources: {', '.join(sources)}", file=file, field=f"select.{name}"
            )
    select = {name: _selection(raw_select.get(name, "all"), name, file) for name in sources}
    balance = None
    if content.get("balance") is not None:
        raw = content["balance"]
        if not isinstance(raw, dict) or "size" not in raw:
            raise InputError("must be {size: N, target_yes_share, tolerance}", file=file, field="balance")
        for key in raw:
            if key not in BALANCE_KEYS:
                raise _unknown(file, "balance", key, BALANCE_KEYS)
        _positive_int(raw["size"], file, "balance.size")
        try:
            balance = RecipeSpec(name=f"{path.stem}:balance", method=BALANCE, help="global balance", **raw)
        except (TypeError, ValueError) as error:
            raise InputError(str(error), file=file, field="balance") from None
    seed = content.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InputError(f"must be an integer, got {seed!r}", file=file, field="seed")
    cap = content.get("cap")
    return RecipeFile(
        path=path,
        sha256=hashlib.sha256(text).hexdigest(),
        text=text,
        content=content,
        sources=sources,
        select=select,
        seed=seed,
        cap=None if cap is None else _positive_int(cap, file, "cap"),
        balance=balance,
        include_flagged=bool(content.get("include_flagged", False)),
        concepts=content.get("concepts"),
        description=str(content.get("description", "")),
        llava_mix=None if content.get("llava_mix") is None else _llava_mix(content["llava_mix"], file),
    )


def pick(
    selection: SourceSelection, candidates: Any, seed: int, name: str, pool_samples: int = 0
) -> tuple[np.ndarray, Any]:
    """Candidate indices one source's selection picks, and the method's balance report (or None); pure,
    ``candidates`` are that source's; ``pool_samples`` scales a ``scaled`` size (see the module doc)."""
    from svit_data.recipes.candidates import random_order
    from svit_data.recipes.registry import resolve_size

    n = candidates.size
    if selection.kind == ALL or selection.kind == "all":
        return np.arange(n), None
    if selection.size_rule != "recipe file":
        assert selection.spec is not None
        given = selection.size if selection.size_rule == "--size" else None
        size = resolve_size(selection.spec, given, pool_samples, n)[0]
    else:
        size = min(selection.size or n, n)
    if selection.size_rule == "recipe file" and selection.size is not None and selection.size > n:
        log.warning(
            "source %s: %s asked, %s candidates: all of them taken", name, f"{selection.size:,}", f"{n:,}"
        )
    if selection.kind == "first":
        return np.arange(size), None
    if selection.kind == "random":
        return np.sort(random_order(n, seed)[:size]), None
    assert selection.spec is not None
    picked, report = METHODS[selection.kind].select(candidates, size, seed, selection.spec)
    return np.sort(picked), report


def with_overrides(
    recipe: RecipeFile,
    *,
    seed: int | None = None,
    size: int | None = None,
    task_mix: str | None = None,
    concepts: str | None = None,
    include_flagged: bool | None = None,
    cap: int | None = None,
    llava_mix: str | None = None,
) -> RecipeFile:
    """``recipe`` with CLI flags in place of file values (None: keep the file's); ``size`` and ``task_mix``
    apply to the file's one method selection. The flags given are kept in ``overrides`` (the manifest's)."""
    given = {
        "seed": seed,
        "size": size,
        "task_mix": task_mix,
        "concepts": concepts,
        "include_flagged": include_flagged,
        "cap": cap,
        "llava_mix": llava_mix,
    }
    given = {k: v for k, v in given.items() if v is not None and not (k == "seed" and v == recipe.seed)}
    if llava_mix is not None:
        given["llava_mix"] = Path(llava_mix).name  # the manifest names the file, not a local path
    select = dict(recipe.select)
    if size is not None or task_mix is not None:
        methods = [name for name, s in select.items() if s.spec is not None]
        if len(methods) != 1:
            flag = "--size" if size is not None else "--task-mix"
            raise InputError(
                f"{flag} needs exactly one method selection in the file, it has {len(methods)}",
                file=str(recipe.path),
                field="select",
            )
        name = methods[0]
        spec = select[name].spec
        assert spec is not None
        changes: dict[str, Any] = {}
        if task_mix is not None:
            changes["task_mix"] = task_mix
        if size is not None:
            changes["size"] = size
        try:
            spec = replace(spec, **changes)
        except ValueError as error:
            raise InputError(str(error), file=str(recipe.path), field=f"select.{name}") from None
        rule = "--size" if size is not None else select[name].size_rule
        select[name] = SourceSelection(select[name].kind, spec.size, spec, rule)
    mix = recipe.llava_mix
    if llava_mix is not None:
        mix = replace(mix or LlavaMix(), file=str(Path(llava_mix).absolute()))  # the CLI's: cwd-relative
    return replace(
        recipe,
        select=select,
        seed=recipe.seed if seed is None else seed,
        concepts=recipe.concepts if concepts is None else concepts,
        include_flagged=recipe.include_flagged if include_flagged is None else include_flagged,
        cap=recipe.cap if cap is None else cap,
        llava_mix=mix,
        overrides={**recipe.overrides, **given},
    )
