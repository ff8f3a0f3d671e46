"""Render the dataset card (YAML metadata + prose) from a folder's build state, never by hand."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from datasets import Features
from datasets.info import DatasetInfo
from datasets.splits import SplitDict, SplitInfo

DEFAULT_CONFIG = "full"


def size_category(num_rows: int) -> str:
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
    ]
    return next((label for bound, label in bounds if num_rows < bound), "100M<n<1B")


def default_config(configs: dict[str, Any]) -> str:
    return DEFAULT_CONFIG if DEFAULT_CONFIG in configs else sorted(configs)[0]


def metadata(state: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML: configs (one default) and dataset_info with split sizes from the data."""
    configs = state["configs"]
    default = default_config(configs)
    config_entries, infos = [], []
    for name in sorted(configs):
        splits = configs[name]["splits"]
        entry: dict[str, Any] = {
            "config_name": name,
            "data_files": [
                {"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in sorted(splits)
            ],
        }
        if name == default:
            entry["default"] = True
        config_entries.append(entry)
        split_dict = SplitDict()
        for split in sorted(splits):
            split_dict.add(
                SplitInfo(
                    name=split,
                    num_bytes=splits[split]["num_bytes"],
                    num_examples=splits[split]["num_examples"],
                )
            )
        info = DatasetInfo(features=Features.from_dict(configs[name]["features"]), splits=split_dict)
        infos.append({"config_name": name, **info._to_yaml_dict()})
    total = sum(s["num_examples"] for c in configs.values() for s in c["splits"].values())
    return {
        "pretty_name": "SVIT: Scaling up Visual Instruction Tuning",
        "license": "cc-by-4.0",
        "language": ["en"],
        "task_categories": ["visual-question-answering", "image-text-to-text"],
        "size_categories": [size_category(total)],
        "configs": config_entries,
        "dataset_info": infos,
    }


def config_table(state: dict[str, Any]) -> str:
    lines = ["| config | description | splits |", "|---|---|---|"]
    for name in sorted(state["configs"]):
        config = state["configs"][name]
        splits = ", ".join(f"{s}: {v['num_examples']:,}" for s, v in sorted(config["splits"].items()))
        lines.append(f"| `{name}` | {config['description']} | {splits} |")
    return "\n".join(lines)


def render_card(state: dict[str, Any]) -> str:
    template = resources.files("svit_data.cards").joinpath("templates/card.md").read_text(encoding="utf-8")
    header = yaml.safe_dump(metadata(state), sort_keys=False, allow_unicode=True)
    body = template.format(config_table=config_table(state), default=default_config(state["configs"]))
    return f"---\n{header}---\n\n{body}"
