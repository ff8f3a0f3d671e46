"""Helpers shared by the Hub tests: run the CLI or a script in a subprocess with the Hub env."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI_TIMEOUT = 180
CLI = [sys.executable, "-c", "import sys; from svit_data.cli import main; sys.exit(main(sys.argv[1:]))"]


def run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """``svit-recipe ARGS`` (or ``python ARGS`` when ``args[0]`` ends with .py) in a subprocess."""
    command = [sys.executable, *args] if args[0].endswith(".py") else [*CLI, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, **kwargs)
