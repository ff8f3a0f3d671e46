"""The build state of a dataset folder (``svit_build.json``) as typed records, with a schema version.

One record per built config (:class:`ConfigState`), one for the folder (:class:`BuildState`). The
folder writer is the only writer; cards and CLIs read these types, never raw dicts. Reading is strict:
a missing required key or an unknown key is a :class:`SvitError` naming the file, config and field, so
a renamed field fails in tests instead of silently degrading the card.

Adding a field: give it a default (``None`` for an optional sub-record, typed as a dataclass of its
own, e.g. ``quality: QualityState | None = None``), fill it in the builder's :class:`ConfigRows`
(``svit_data.materialize``) and read it where it is shown. Older state files lack the field and read
as the default, so :data:`STATE_VERSION` changes only when an existing field changes meaning or shape;
then add a step to :func:`_upgrade`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svit_data.errors import SvitError

STATE_FILE = "svit_build.json"
# 1: the untyped dict of svit before the typed state (no "version" key); 2: this module.
STATE_VERSION = 2


@dataclass
class SplitState:
    num_examples: int
    num_bytes: int
    files: list[str]


@dataclass
class Manifest:
    """What went into a recipe selection and a hash of what came out (see ``recipes/manifest.py``)."""

    pool_fingerprint: str
    vocabulary_hash: str
    parameters: dict[str, Any]
    seed: int
    ids_sha256: str
    counts: dict[str, Any]


@dataclass
class SelectedVsRandom:
    selected: float
    random: float


@dataclass
class YesNo:
    yes: int
    no: int
    yes_share: float


@dataclass
class YesNoChange:
    before: YesNo  # the same-size selection before balancing (equal to ``after`` when nothing balanced)
    after: YesNo


@dataclass
class BalanceState:
    target_yes_share: float
    tolerance: float
    reached: bool
    note: str


@dataclass
class Diagnostics:
    """What a selection changed, each next to a random subset of the same size (``recipes/diagnostics.py``)."""

    coverage: SelectedVsRandom
    entropy: SelectedVsRandom
    yes_no: YesNoChange
    task_mix: dict[str, int]
    answer_length_quantiles: dict[str, float]
    top_concepts: list[str] = field(default_factory=list)
    task_quotas: dict[str, int] | None = None  # None: no per-task quotas (task_mix=free or no selection)
    balance: BalanceState | None = None  # None: the method does not balance yes/no
    quality: dict[str, Any] | None = None  # excluded train samples, per reason and --where condition
    signals: dict[str, Any] | None = None  # complexity signals: selected vs pool (mean, p10/p50/p90)


@dataclass
class MixState:
    """How mix-665k replaced the LLaVA-Instruct part of the user's LLaVA-v1.5-mix-665K file."""

    file: str
    records_in: int
    parts_in: dict[str, int]
    llava_instruct_found: int
    llava_instruct_expected: int
    replaced_by_core: int
    records_out: int
    rule: str


@dataclass
class RecipeState:
    """The recipe part of a config: which recipe, its manifest, diagnostics and objective text."""

    name: str
    manifest: Manifest
    diagnostics: Diagnostics
    objective: str
    mix: MixState | None = None
    ids_file: str | None = None  # the sorted id list, relative to the dataset folder
    recipe_file: str | None = None  # a recipe file's copy, beside the ids (build --recipe)


@dataclass
class ProbeState:
    """A probe config (``pope-*``): how its probes were drawn and what came out (``builders/probes.py``)."""

    sampler: str
    source: str  # "coco-instances" or "sample"
    annotation_files: list[str]
    parameters: dict[str, int]
    counts: dict[str, int]
    images: list[int]  # the probe images (VG ids), ascending: no train split may hold one
    rules: str


@dataclass
class ExclusionState:
    """Samples an exclude list (``build --exclude-images``) kept out of a config's train split."""

    file: str
    sha256: str
    listed: int  # distinct entries in the file
    images: int  # Visual Genome images they name
    unmatched_coco: int  # COCO ids without a Visual Genome image
    samples_removed: int  # rows dropped from the written train split
    reason: str
    before_selection: int | None = None  # a recipe's candidates left out before it selected


@dataclass
class GenerationSelection:
    """``generate --select``: the images a generated source was made from (``builders/select.py``)."""

    ids_file: str  # the sorted ids, beside the generation summary in the generated folder
    ids_sha256: str
    n: int
    of: int  # images there were to choose from
    seed: int
    vocabulary: str
    vocabulary_hash: str
    concepts: int
    selected: dict[str, float]  # coverage, entropy_bits, objective of the chosen images
    random: dict[str, float]  # the same for a random draw of n


@dataclass
class ConfigState:
    """One built config: what was written (features, splits) and what the card says about it."""

    description: str
    schema: str
    kind: str
    source: str
    features: dict[str, Any]  # ``datasets.Features.to_dict()``
    columns: list[str]  # column order (the state file sorts keys)
    splits: dict[str, SplitState]
    tasks: list[str] = field(default_factory=list)
    pool_fingerprint: str | None = None
    task_mix: dict[str, int] | None = None
    recipe: RecipeState | None = None
    probe: ProbeState | None = None
    exclusion: ExclusionState | None = None
    pool_quality: dict[str, Any] | None = None  # the pool's flags per task and reason, example ids
    image_overlap: dict[str, Any] | None = None  # images per source and shared per pair (image_overlap.py)
    # per generation summary of a generated source ("<folder>/summary.json"): its --select record
    generation: dict[str, GenerationSelection] | None = None

    def num_rows(self) -> int:
        return sum(split.num_examples for split in self.splits.values())


@dataclass
class BuildState:
    configs: dict[str, ConfigState] = field(default_factory=dict)
    version: int = STATE_VERSION

    def to_json(self) -> str:
        """The state file's text: sorted keys, so an unchanged build gives the same bytes."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=_plain)

    @classmethod
    def from_json(cls, text: str, *, where: str = STATE_FILE) -> BuildState:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SvitError(f"{where}: not valid JSON ({error.msg} at line {error.lineno})") from None
        if not isinstance(data, dict):
            raise SvitError(f"{where}: the build state must be a JSON object")
        return _decode(cls, _upgrade(data, where), where)

    def normalized(self) -> BuildState:
        """This state as it reads back from its file (plain numbers, dict order of the file)."""
        return BuildState.from_json(self.to_json())


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} into {STATE_FILE}")


def read_state_file(path: str | Path) -> BuildState:
    path = Path(path)
    return BuildState.from_json(path.read_text(encoding="utf-8"), where=str(path))


def _upgrade(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Bring an older state file to :data:`STATE_VERSION` (version 1: svit's untyped dict)."""
    version = data.get("version", 1)
    if not isinstance(version, int) or version > STATE_VERSION:
        raise SvitError(
            f"{where}: build state version {version!r} is newer than this svit reads ({STATE_VERSION}); "
            "upgrade svit or rebuild the folder"
        )
    if version == 1:
        configs = data.get("configs")
        if not isinstance(configs, dict):
            raise SvitError(f"{where}: field 'configs' is missing; rebuild the folder with svit-recipe build")
        data = {"version": 2, "configs": {name: _config_v1(c) for name, c in configs.items()}}
    return data


def _config_v1(config: Any) -> Any:
    """A version-1 config: recipe fields lived at the top level; recipes had no pool fingerprint."""
    if not isinstance(config, dict):
        return config
    config = dict(config)
    config.setdefault("kind", "subset")
    config.setdefault("source", "unknown")
    if isinstance(config.get("features"), dict):  # builds before the column order was recorded
        config.setdefault("columns", list(config["features"]))
    if "manifest" not in config:
        config.pop("recipe", None)
    else:
        recipe = {
            key: config.pop(key) for key in ("manifest", "diagnostics", "objective", "mix") if key in config
        }
        recipe["name"] = config.pop("recipe", None)
        config["recipe"] = recipe
        if isinstance(recipe["manifest"], dict):
            config.setdefault("pool_fingerprint", recipe["manifest"].get("pool_fingerprint"))
            if isinstance(recipe.get("diagnostics"), dict):
                config.setdefault("task_mix", recipe["diagnostics"].get("task_mix"))
    return config


def _decode(cls: type, data: Any, where: str) -> Any:
    """``cls`` from ``data``, strictly: every required field present, no unknown field."""
    if not isinstance(data, dict):
        raise SvitError(f"{where}: expected an object, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SvitError(f"{where}: unknown field {unknown[0]!r} (this svit reads {', '.join(fields)})")
    values = {}
    for name, spec in fields.items():
        if name not in data:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise SvitError(
                    f"{where}: field {name!r} is missing; rebuild the folder with svit-recipe build"
                )
            continue
        values[name] = _value(hints[name], data[name], f"{where}: {_step(cls, name)}")
    return cls(**values)


def _step(cls: type, name: str) -> str:
    return f"{cls.__name__}.{name}"


def _value(hint: Any, value: Any, where: str) -> Any:
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return _decode(hint, value, where)
    if origin is dict and dataclasses.is_dataclass(args[1]):
        if not isinstance(value, dict):
            raise SvitError(f"{where}: expected an object, found {type(value).__name__}")
        return {key: _decode(args[1], item, f"{where}[{key!r}]") for key, item in value.items()}
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is not Any and not isinstance(value, expected):
        raise SvitError(
            f"{where}: expected {getattr(expected, '__name__', expected)}, found {type(value).__name__}"
        )
    return value
