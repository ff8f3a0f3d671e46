"""What svit-recipe generate writes to stderr: svit's INFO lines, none with --quiet, no per-request HTTP lines."""

from __future__ import annotations

import os
import subprocess
import sys

CLI = [sys.executable, "-c", "import sys; from svit_data.cli import main; sys.exit(main(sys.argv[1:]))"]


def _stderr(small_vg, out, url, *flags: str, top: tuple[str, ...] = ()) -> str:
    argv = [*top, "generate", "--vg", str(small_vg), "--out", str(out), "--base-url", url]
    argv += ["--tasks", "detail_description", "--limit", "1", *flags]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run([*CLI, *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_quiet_logs_warnings_only_and_http_requests_never(small_vg, tmp_path, fake_server):
    with fake_server() as (fake, url):
        quiet = _stderr(small_vg, tmp_path / "a", url, "--quiet")
        normal = _stderr(small_vg, tmp_path / "b", url)
        verbose = _stderr(small_vg, tmp_path / "c", url, top=("-v",))
    assert len(fake.log) == 3  # each run has its own cache: one request each
    assert "INFO" not in quiet and "HTTP Request" not in quiet
    assert quiet.strip().startswith("wrote 1 records")
    assert "INFO svit_data.builders.generate: generate config" in normal
    assert "HTTP Request" not in normal and "httpx" not in normal
    assert "HTTP Request: POST" in verbose  # -v shows the libraries' messages too
