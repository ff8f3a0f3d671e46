"""``svit-recipe list``: the configs svit knows, and which are built in a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from svit_data.configs import CONFIGS
from svit_data.folder import STATE_FILE, read_state

HELP = "list the known configs (and the rows built in --dir, if it is a dataset folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", default="svit", help="dataset folder whose built configs to show (default: ./svit)"
    )


def run(args: argparse.Namespace) -> int:
    built = read_state(args.dir).configs if (Path(args.dir) / STATE_FILE).is_file() else {}
    names = list(CONFIGS) + sorted(set(built) - set(CONFIGS))
    width = max(len(n) for n in names)
    for name in names:
        spec = CONFIGS.get(name)
        description = spec.description if spec else built[name].description
        kind = spec.kind if spec else built[name].kind
        rows = ""
        if name in built:
            rows = (
                "  [built: "
                + ", ".join(f"{s} {v.num_examples:,}" for s, v in sorted(built[name].splits.items()))
                + "]"
            )
        print(f"{name:<{width}}  {kind:<6}  {description}{rows}")
    return 0
