"""``svit-recipe``: subcommands are modules named in a dict, imported only when used.

Each module has ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can
cause (:class:`svit_data.errors.SvitError`) print one line and exit with code 2. ``--quiet`` (where a
command has it) leaves warnings only; third-party libraries log at WARNING unless ``-v``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable

from svit_data.errors import SvitError

COMMANDS: dict[str, str] = {
    "build": "svit_data.cli.build",
    "list": "svit_data.cli.list_configs",
    "stats": "svit_data.cli.stats",
    "concepts": "svit_data.cli.concepts",
    "generate": "svit_data.cli.generate",
    "verify": "svit_data.cli.verify",
    "export": "svit_data.cli.export",
    "check": "svit_data.cli.check",
    "push": "svit_data.cli.push",
}


def _load(name: str):
    try:
        return importlib.import_module(COMMANDS[name])
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("svit_data.cli"):
            return None
        raise


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="svit-recipe", description="Build, select, export and publish SVIT data."
    )
    top.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return top


# Libraries that give their own logger a stderr handler: propagating to ours too prints each line twice.
OWN_HANDLER_LIBRARIES = ("huggingface_hub", "datasets")
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a command killed by SIGPIPE


def print_library_logs_once() -> None:
    """huggingface_hub and datasets print through their own handler (with their own verbosity
    settings); stop their records from reaching ours as well."""
    for name in OWN_HANDLER_LIBRARIES:
        logging.getLogger(name).propagate = False


def _closed_pipe() -> int:
    """The reader of our output went away (``| head``): stop quietly, as Unix tools do. Python would
    flush stdout again at exit and print a second BrokenPipeError, so stdout now points to devnull."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


def configure_logging(*, verbose: bool = False, quiet: bool = False) -> Callable[[], None]:
    """svit's own messages at INFO (WARNING with --quiet, DEBUG with -v); other libraries at WARNING
    unless -v (httpx logs one INFO line per request). Returns a function that restores the levels, so
    an in-process call (tests, notebooks) leaves logging as it found it."""
    root, ours = logging.getLogger(), logging.getLogger("svit_data")
    saved = (root.level, ours.level)
    if not root.handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    ours.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)

    def restore() -> None:
        root.setLevel(saved[0])
        ours.setLevel(saved[1])

    return restore


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    restore = configure_logging(verbose=args.verbose, quiet=getattr(args, "quiet", False))
    print_library_logs_once()
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a pipe closed by its reader fails here when the output was buffered
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except SvitError as error:
        print(f"svit-recipe {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"svit-recipe {args.command}: interrupted; outputs were left as they were", file=sys.stderr)
        return 130
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
