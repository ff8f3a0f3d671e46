"""``svit-recipe list``: the configs svit knows, and which are built in a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from svit_data.configs import CONFIGS
from svit_data.folder import STATE_FILE, read_state

DEFAULT_DIR = "svit"
HELP = "list the known configs (and the rows built in --dir, if it is a dataset folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", default=DEFAULT_DIR, help="dataset folder whose built configs to show (default: ./svit)"
    )


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    built = read_state(folder).configs if (folder / STATE_FILE).is_file() else {}
    if not built and (folder.exists() or args.dir != DEFAULT_DIR):  # a missing ./svit is just "not built yet"
        what = (
            "does not exist"
            if not folder.exists()
            else f"is not a dataset folder built by svit (no {STATE_FILE})"
        )
        print(f"note: {folder} {what}; showing the known configs only", file=sys.stderr)
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
