"""Fixtures of the recipe tests: one SVIT_CACHE per session (the sample pool and its matrix are built
once), set per test with monkeypatch; the bundled sample pool; a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("svit-cache")


@pytest.fixture
def svit_cache(cache_root: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SVIT_CACHE", str(cache_root))
    return cache_root


@pytest.fixture
def pool(svit_cache):
    from svit_data.pool import open_pool

    return open_pool("sample", progress=False)


@pytest.fixture
def cli(svit_cache):
    """Run ``svit-recipe`` in-process; returns the exit code."""
    from svit_data.cli import main

    return lambda *argv: main([str(a) for a in argv])
