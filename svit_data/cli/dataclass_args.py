"""Command-line flags generated from dataclass fields, so a default and its help text live in one place.

Each field becomes ``--field-name`` (``names`` renames a flag; ``skip`` leaves a field out); its help is the
field's ``metadata["help"]`` followed by the dataclass default. Fields whose type is itself a dataclass add
their own fields, addressed by dotted paths (``context.max_tokens``). Every flag parses to ``None`` when
it is not given, so :func:`from_args` can build the dataclass from the given flags alone and leave every
other value to the dataclass (and callers that merge layers can tell "not given" from a value).

Types: ``str``, ``int``, ``float`` and ``X | None`` of them; ``bool`` becomes ``--flag/--no-flag``;
``tuple[str, ...]`` is a repeatable flag, or one comma-separated value when the field's metadata has
``"sep": ","``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _scalar(hint: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _shown(value: Any, sep: str | None) -> str:
    if isinstance(value, tuple):
        return (sep or " ").join(map(str, value)) if value else "none"
    return str(value)


def _help(f: dataclasses.Field, default: Any) -> str:
    text = f.metadata.get("help", "")
    if default is dataclasses.MISSING or re.search(r"\(default|default:", text):  # the help says it
        return text
    return f"{text} (default: {_shown(default, f.metadata.get('sep'))})"


def _split(sep: str):
    def parse(text: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in text.split(sep) if part.strip())

    return parse


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    names: dict[str, str] | None = None,
    skip: set[str] | frozenset[str] = frozenset(),
    prefix: str = "",
) -> None:
    """Add one flag per field of ``cls`` (see the module docstring)."""
    names = names or {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        if path in skip or not f.init:
            continue
        kind = _scalar(hints[f.name])
        if dataclasses.is_dataclass(kind):
            add_dataclass_arguments(parser, kind, names=names, skip=skip, prefix=path + ".")
            continue
        flag = names.get(path, "--" + f.name.replace("_", "-"))
        default = _default(f)
        options: dict[str, Any] = {"dest": path, "default": None, "help": _help(f, default)}
        if default is dataclasses.MISSING:
            options["required"] = True
        if kind is bool:  # --flag / --no-flag: a flag can also undo a config file's value
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            sep = f.metadata.get("sep")
            if sep:
                options.update(type=_split(sep), metavar=f.name.upper())
            else:
                options.update(action="append", metavar=f.name.upper())
        else:
            options.update(type=kind, metavar=f.name.upper())
        parser.add_argument(flag, **options)


def given(cls: type, args: argparse.Namespace, *, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (not ``None``), nested dataclasses as dicts."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        if dataclasses.is_dataclass(_scalar(hints[f.name])):
            nested = given(_scalar(hints[f.name]), args, prefix=path + ".")
            if nested:
                values[f.name] = nested
            continue
        value = getattr(args, path, None)
        if value is not None:
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return values


def from_args(cls: type[T], args: argparse.Namespace, *, prefix: str = "", **values: Any) -> T:
    """An instance of ``cls`` from the given flags; ``values`` set fields the flags do not cover."""
    hints = typing.get_type_hints(cls)
    merged = {**given(cls, args, prefix=prefix), **values}
    for f in dataclasses.fields(cls):
        kind = _scalar(hints[f.name])
        if dataclasses.is_dataclass(kind) and isinstance(merged.get(f.name), dict):
            merged[f.name] = kind(**merged[f.name])
    return cls(**merged)
