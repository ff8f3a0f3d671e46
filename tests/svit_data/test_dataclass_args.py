"""CLI flags generated from dataclass fields: one default, shown in --help, 'not given' left to the class."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from svit_data.cli.dataclass_args import add_dataclass_arguments, from_args, given


@dataclass(frozen=True)
class Inner:
    max_tokens: int = field(default=1800, metadata={"help": "budget"})


@dataclass(frozen=True)
class Outer:
    path: str = field(metadata={"help": "where"})
    max_tokens: int = field(default=2048, metadata={"help": "reply limit"})
    rate: float | None = field(default=None, metadata={"help": "per minute"})
    tasks: tuple[str, ...] = field(default=("a", "b"), metadata={"help": "tasks", "sep": ","})
    files: tuple[str, ...] = field(default=(), metadata={"help": "files"})
    dry_run: bool = field(default=False, metadata={"help": "send nothing"})
    cache: bool = field(default=True, metadata={"help": "use the cache"})
    inner: Inner = field(default_factory=Inner, metadata={"help": "nested"})
    shard: int = field(default=0, metadata={"help": "not a flag"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t")
    add_dataclass_arguments(parser, Outer, names={"inner.max_tokens": "--context-tokens"}, skip={"shard"})
    return parser


def test_defaults_come_from_the_dataclass():
    args = _parser().parse_args(["--path", "p"])
    assert given(Outer, args) == {"path": "p"}
    assert from_args(Outer, args) == Outer("p")


def test_every_type_parses():
    argv = ["--path", "p", "--max-tokens", "7", "--rate", "1.5", "--tasks", "x, y", "--files", "f1"]
    argv += ["--files", "f2", "--dry-run", "--no-cache", "--context-tokens", "99"]
    config = from_args(Outer, _parser().parse_args(argv), shard=3)
    assert config == Outer("p", 7, 1.5, ("x", "y"), ("f1", "f2"), True, False, Inner(99), 3)


def test_help_shows_each_default_once():
    text = " ".join(_parser().format_help().split())
    assert "reply limit (default: 2048)" in text and "budget (default: 1800)" in text
    assert "tasks (default: a,b)" in text and "use the cache (default: True)" in text
    assert "--shard" not in text and "--inner" not in text


def test_a_required_field_is_a_required_flag():
    with pytest.raises(SystemExit):
        _parser().parse_args([])


def test_every_generate_and_concepts_default_is_the_dataclass_one():
    """The command's flags add nothing of their own: each default is the field's default."""
    from svit_data.builders.generate import GenerateJob
    from svit_data.builders.openai_client import ClientConfig
    from svit_data.builders.pipeline import GenerateConfig
    from svit_data.cli import parser
    from svit_data.recipes.concepts import ExtractConfig

    top = parser()
    args = top.parse_args(["generate", "--vg", "v", "--out", "o"])
    assert from_args(GenerateJob, args) == GenerateJob("v", "o")
    assert from_args(GenerateConfig, args) == GenerateConfig()
    assert from_args(ClientConfig, args) == ClientConfig()
    args = top.parse_args(["concepts", "--benchmark", "b", "--out", "o"])
    assert from_args(ExtractConfig, args) == ExtractConfig()
    assert from_args(ClientConfig, args) == ClientConfig()
