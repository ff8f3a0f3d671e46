"""Helpers of the builders tests (a unique module name: other test folders have their own conftest)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate_args(**overrides) -> argparse.Namespace:
    from svit_data.cli import generate

    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    argv = []
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return parser.parse_args(argv)


def read_records(out: Path, task: str) -> list[dict]:
    return [
        json.loads(line) for f in sorted((out / task).glob("*.jsonl")) for line in f.read_text().splitlines()
    ]


def strip_provenance(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "provenance"} for r in records]
