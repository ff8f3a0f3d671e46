"""Shared fixtures of every test folder: a private ``SVIT_CACHE``, the real-data fixtures, a built sample.

Kept small and generic: tests/builders, tests/train, tests/recipes and tests/hub add their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def svit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per test session: the bundled sample and ingested pools are made once."""
    return tmp_path_factory.mktemp("svit-cache")


@pytest.fixture(autouse=True)
def _private_svit_cache(svit_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test uses the session's cache, never the user's ``~/.cache/svit``."""
    monkeypatch.setenv("SVIT_CACHE", str(svit_cache))
    return svit_cache


@pytest.fixture
def shared_fixtures() -> Path:
    """``../shared/fixtures`` (real VG, COCO, LLaVA slices); skips when absent, as in a user's clone."""
    folder = SHARED / "fixtures"
    if not folder.is_dir():
        pytest.skip("../shared/fixtures is absent (it exists only in the project's workspace)")
    return folder


@pytest.fixture(scope="session")
def sample_folder(svit_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five subset configs of the bundled sample, built once per session with ``svit-recipe build``."""
    from svit_data.cli import main

    out = tmp_path_factory.mktemp("sample-build") / "svit"
    configs = ["full", "conversation", "complex-reasoning", "referring-qa", "detail-description"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SVIT_CACHE", str(svit_cache))
        assert main(["build", *configs, "--out", str(out), "--quiet"]) == 0
    return out
