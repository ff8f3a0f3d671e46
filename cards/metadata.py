"""The card's YAML metadata, computed from the build state: the part the Hub and ``datasets`` read.

``configs:`` tells ``load_dataset`` and the viewer which files form which config and split;
``dataset_info:`` declares features (so every ``datasets`` version decodes images and nested lists
with the right types) and split sizes (which ``datasets`` verifies on load, so they come from the data).
"""

from __future__ import annotations

from typing import Any

from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from huggingface_hub import DatasetCardData

from svit_data.folder import config_features
from svit_data.state import BuildState, ConfigState

DEFAULT_CONFIG = "full"
PRETTY_NAME = "SVIT: Scaling up Visual Instruction Tuning"
LICENSE = "cc-by-4.0"
TASK_CATEGORIES = ["visual-question-answering", "image-text-to-text"]
TAGS = ["visual-instruction-tuning", "visual-genome", "coco", "llava", "synthetic"]


def size_category(num_rows: int) -> str:
    """The Hub's size bucket for ``num_rows`` (its ``size_categories`` vocabulary)."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    return next((label for bound, label in bounds if num_rows < bound), "1B<n<10B")


def default_config(configs: dict[str, ConfigState]) -> str:
    """``full`` when built, else the first recipe, else the first config (alphabetically)."""
    if DEFAULT_CONFIG in configs:
        return DEFAULT_CONFIG
    recipes = sorted(name for name, c in configs.items() if c.kind == "recipe")
    return recipes[0] if recipes else sorted(configs)[0]


def config_rows(config: ConfigState) -> int:
    return config.num_rows()


def data_files_pattern(config: str, split: str) -> str:
    return f"data/{config}/{split}-*.parquet"


def _dataset_info(config: ConfigState) -> DatasetInfo:
    splits = SplitDict()
    for name in sorted(config.splits):
        split = config.splits[name]
        splits.add(SplitInfo(name=name, num_bytes=split.num_bytes, num_examples=split.num_examples))
    return DatasetInfo(features=config_features(config), splits=splits)


def dataset_info_entries(configs: dict[str, ConfigState]) -> list[dict[str, Any]]:
    """The ``dataset_info:`` list, one entry per config in name order, written by the public card
    writer that ``push_to_hub`` uses (``DatasetInfosDict.to_dataset_card_data``); it writes a single
    config as a mapping instead of a list, so that case is put back into list form."""
    names = sorted(configs)
    card = DatasetCardData()
    DatasetInfosDict({name: _dataset_info(configs[name]) for name in names}).to_dataset_card_data(card)
    written = card["dataset_info"]
    entries = written if isinstance(written, list) else [written]
    return [
        {"config_name": name, **{k: v for k, v in entry.items() if k != "config_name"}}
        for name, entry in zip(names, entries, strict=True)
    ]


def metadata(state: BuildState) -> dict[str, Any]:
    """The YAML header as a dict: license, tasks, size, configs (one default) and dataset_info."""
    configs = state.configs
    if not configs:
        raise ValueError("a dataset card needs at least one built config")
    default = default_config(configs)
    entries = []
    for name in sorted(configs):
        entry: dict[str, Any] = {
            "config_name": name,
            "data_files": [
                {"split": split, "path": data_files_pattern(name, split)}
                for split in sorted(configs[name].splits)
            ],
        }
        if name == default:
            entry["default"] = True
        entries.append(entry)
    largest = max(config_rows(c) for c in configs.values())
    return {
        "pretty_name": PRETTY_NAME,
        "license": LICENSE,
        "language": ["en"],
        "task_categories": TASK_CATEGORIES,
        "tags": TAGS,
        "size_categories": [size_category(largest)],
        "configs": entries,
        "dataset_info": dataset_info_entries(configs),
    }
