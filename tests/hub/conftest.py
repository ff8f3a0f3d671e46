"""Fixtures for the Hub tests: a loopback Hub server, an environment pointing at it, built folders.

huggingface_hub and datasets read HF_ENDPOINT and friends at import time, so everything that talks
to the server runs in a subprocess with that environment (the CLI, or ``load_rows.py``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hub_server import TOKEN, HubServer  # noqa: E402


@pytest.fixture
def hub():
    with HubServer(timeout=240) as server:
        yield server


@pytest.fixture
def hub_env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGING")) and "PROXY" not in k.upper()
    }
    env.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN=TOKEN,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "hf-home"),
        HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_ETAG_TIMEOUT="30",
        SVIT_CACHE=str(tmp_path / "svit-cache"),
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


@pytest.fixture(scope="session")
def built_once(tmp_path_factory) -> Path:
    """``full`` and ``conversation`` built from the bundled sample, once per session."""
    from svit_data.cli import main

    root = tmp_path_factory.mktemp("built")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SVIT_CACHE", str(root / "cache"))
        assert main(["build", "full", "conversation", "--out", str(root / "svit"), "--quiet"]) == 0
    return root


@pytest.fixture
def built(built_once: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the built folder (tests may rebuild it), with SVIT_CACHE set for rebuilds."""
    monkeypatch.setenv("SVIT_CACHE", str(built_once / "cache"))
    return Path(shutil.copytree(built_once / "svit", tmp_path / "svit"))
