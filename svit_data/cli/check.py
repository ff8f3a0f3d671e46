"""``svit-recipe check DIR``: offline, would this folder load with ``datasets`` and show in the viewer?

The checks are :mod:`svit_data.folder_check`; this prints its table and every problem as one sentence.
Any problem makes the exit code 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from svit_data.atomic import clean_leftovers
from svit_data.folder_check import check_folder, format_table, load_folder

HELP = "check offline that a dataset folder loads (also streaming) and is ready for the Hub viewer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="dataset folder built by 'svit-recipe build' (e.g. ./svit)")


def counted(number: int, noun: str) -> str:
    """``1 problem``, ``2 problems``, ``1,024 rows``: one number format in every line of the report."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    clean_leftovers(folder.resolve())  # staging folders of killed builds (it logs what it removed)
    state, meta = load_folder(folder)
    results, general = check_folder(folder, state, meta)
    print(format_table(results))
    problems = general + [f"{r.config}/{r.split}: {p}" for r in results for p in r.problems]
    for problem in problems:
        print(f"FAIL {problem}")
    print(
        f"{counted(len(results), 'split')} checked in {counted(len(state.configs), 'config')}: "
        + (counted(len(problems), "problem") if problems else "all ok")
    )
    return 1 if problems else 0
