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


def run_library(vg, out, url: str | None = None, *, api_key: str = "EMPTY", **kw) -> dict:
    """``generate()`` in-process (or ``plan()`` with ``dry_run=True``); keywords are the dataclasses' fields,
    ``tasks`` may be comma-separated and ``context_tokens`` sets the context budget."""
    import dataclasses

    from svit_data.builders.generate import GenerateJob, generate, plan
    from svit_data.builders.openai_client import ClientConfig
    from svit_data.builders.pipeline import GenerateConfig
    from svit_data.builders.serializer import SerializerConfig

    if isinstance(kw.get("tasks"), str):
        kw["tasks"] = tuple(kw["tasks"].split(","))
    if "context_tokens" in kw:
        kw["context"] = SerializerConfig(max_tokens=kw.pop("context_tokens"))
    parts = {}
    for cls in (GenerateJob, GenerateConfig, ClientConfig):
        names = {f.name for f in dataclasses.fields(cls)}
        parts[cls] = {k: kw.pop(k) for k in list(kw) if k in names}
    assert not kw, f"unknown keywords {sorted(kw)}"
    job = GenerateJob(vg=str(vg), out=str(out), **parts[GenerateJob])
    config = GenerateConfig(**parts[GenerateConfig])
    if job.dry_run:
        return plan(job, config)
    return generate(job, config, ClientConfig(base_url=url, api_key=api_key, **parts[ClientConfig]))


def read_records(out: Path, task: str) -> list[dict]:
    return [
        json.loads(line) for f in sorted((out / task).glob("*.jsonl")) for line in f.read_text().splitlines()
    ]


def strip_provenance(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "provenance"} for r in records]
