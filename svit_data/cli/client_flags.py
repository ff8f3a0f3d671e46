"""The API client flags shared by ``generate`` and ``concepts``: ClientConfig's fields plus --api-key-env."""

from __future__ import annotations

import argparse
import os

from svit_data.cli.dataclass_args import add_dataclass_arguments, from_args
from svit_data.errors import InputError

API_KEY_ENV = "OPENAI_API_KEY"


def add_client_arguments(group) -> None:
    """The ClientConfig flags, with the key read from an environment variable (never a flag)."""
    from svit_data.builders.openai_client import ClientConfig

    add_dataclass_arguments(group, ClientConfig, skip={"api_key"})
    group.add_argument(
        "--api-key-env",
        default=API_KEY_ENV,
        help=f"environment variable holding the API key (default: {API_KEY_ENV})",
    )


def client_config(args: argparse.Namespace, *, key_optional: bool = False):
    """ClientConfig from the flags; a missing key is an error unless a local server (--base-url) is used."""
    from svit_data.builders.openai_client import ClientConfig

    key = os.environ.get(args.api_key_env)
    if not key:
        if not (args.base_url or key_optional):
            raise InputError(
                f"no API key: set the environment variable {args.api_key_env} (or --api-key-env)"
            )
        key = "EMPTY"  # local OpenAI-compatible servers usually need none
    try:
        return from_args(ClientConfig, args, api_key=key)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
