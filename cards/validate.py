"""Does a card's YAML metadata agree with the build state? (The card is what the Hub reads.)

A card that drifts from the data makes ``load_dataset`` fail (split sizes are verified on load) or
decode the wrong types (features), so ``check`` and ``push`` compare the two before anything else.
"""

from __future__ import annotations

from typing import Any

from datasets.info import DatasetInfo

from svit_data.cards.metadata import data_files_pattern
from svit_data.folder import config_features
from svit_data.state import BuildState, ConfigState


def _by_name(entries: Any, what: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "config_name" in e for e in entries):
        problems.append(f"card: '{what}' must be a list of entries with a config_name")
        return {}
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry["config_name"] in found:
            problems.append(f"card: config {entry['config_name']!r} appears twice in '{what}'")
        found[entry["config_name"]] = entry
    return found


def _config_problems(name: str, entry: dict[str, Any], state_config: ConfigState) -> list[str]:
    problems = []
    files = entry.get("data_files")
    declared = {f.get("split"): f.get("path") for f in files} if isinstance(files, list) else {}
    for split in state_config.splits:
        if declared.get(split) != data_files_pattern(name, split):
            problems.append(f"card: config {name!r} split {split!r} does not point at its parquet files")
    problems += [
        f"card: config {name!r} declares split {split!r} that was not built"
        for split in declared
        if split not in state_config.splits
    ]
    return problems


def _info_problems(name: str, info: dict[str, Any] | None, state_config: ConfigState) -> list[str]:
    if info is None:
        return [f"card: config {name!r} has no dataset_info (features and split sizes)"]
    try:
        parsed = DatasetInfo._from_yaml_dict(dict(info))
    except (KeyError, TypeError, ValueError) as error:
        return [f"card: dataset_info of config {name!r} cannot be read ({error})"]
    problems = []
    if parsed.features != config_features(state_config):
        problems.append(f"card: features of config {name!r} differ from the data")
    card_counts = {s: parsed.splits[s].num_examples for s in parsed.splits} if parsed.splits else {}
    data_counts = {s: v.num_examples for s, v in state_config.splits.items()}
    if card_counts != data_counts:
        problems.append(f"card: split sizes of config {name!r} are {card_counts}, the data has {data_counts}")
    return problems


def card_problems(meta: dict[str, Any], state: BuildState) -> list[str]:
    """Every disagreement between the card's YAML and the build state, as one sentence each."""
    problems: list[str] = []
    configs = _by_name(meta.get("configs"), "configs", problems)
    infos = _by_name(meta.get("dataset_info"), "dataset_info", problems)
    defaults = [name for name, entry in configs.items() if entry.get("default")]
    if len(defaults) != 1:
        problems.append(f"card: exactly one config must be the default, found {len(defaults)}")
    for name, state_config in sorted(state.configs.items()):
        if name not in configs:
            problems.append(f"card: built config {name!r} is missing from 'configs'")
            continue
        problems += _config_problems(name, configs[name], state_config)
        problems += _info_problems(name, infos.get(name), state_config)
    problems += [f"card: config {name!r} was not built" for name in configs if name not in state.configs]
    for key in ("license", "pretty_name", "task_categories", "size_categories"):
        if not meta.get(key):
            problems.append(f"card: metadata field {key!r} is missing")
    return problems


def rendered_card_problems(card_text: str, state: BuildState, *, where: str = "README.md") -> list[str]:
    """The card must be exactly what the build state renders: a hand edit of the prose is drift too."""
    from svit_data.cards.render import render_card

    expected = render_card(state)
    if card_text == expected:
        return []
    if card_text.split("\n---\n", 1)[-1] == expected.split("\n---\n", 1)[-1]:
        return [f"{where}: the card's YAML header differs from the one the build state renders; rebuild"]
    got, want = card_text.splitlines(), expected.splitlines()
    line = next(
        (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want))
    )
    return [
        f"{where}: line {line + 1} of the card differs from the one the build state renders "
        "(hand-edited or stale); rebuild with 'svit-recipe build' instead of editing it"
    ]
