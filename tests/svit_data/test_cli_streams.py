"""svit-recipe as one process in a pipeline: a closed pipe ends it quietly, library warnings print once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from svit_data.cli import EXIT_CLOSED_PIPE


def run_closed(argv: list[str]) -> tuple[int, str]:
    """Run ``svit-recipe ARGV`` with a stdout whose reader is already gone (as ``| head`` after one line)."""
    code = "import sys; from svit_data.cli import main; sys.exit(main(sys.argv[1:]))"
    child = subprocess.Popen(
        [sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    child.stdout.close()
    err = child.stderr.read().decode()
    return child.wait(), err


def test_a_closed_pipe_exits_quietly_with_the_sigpipe_status():
    returncode, err = run_closed(["list"])
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit
    assert returncode == EXIT_CLOSED_PIPE == 141


def test_hub_and_datasets_warnings_print_once():
    code = textwrap.dedent(
        """
        import logging
        from svit_data.cli import main
        main(["list"])
        import datasets, huggingface_hub  # each gives its logger a stderr handler on import
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
        logging.getLogger("datasets.load").warning("Using the latest cached version")
        logging.getLogger("svit_data.pool").warning("our own warning")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = result.stderr.splitlines()
    assert sum("Retrying in 1s [Retry 1/5]." in line for line in lines) == 1, lines
    assert sum("Using the latest cached version" in line for line in lines) == 1, lines
    assert lines.count("WARNING svit_data.pool: our own warning") == 1, lines
