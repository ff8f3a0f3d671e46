"""A dataset folder built once from the bundled sample, copied per test that changes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def card_built_once(tmp_path_factory) -> Path:
    from svit_data.cli import main

    root = tmp_path_factory.mktemp("cards-built")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SVIT_CACHE", str(root / "cache"))
        assert main(["build", "full", "detail-description", "--out", str(root / "svit"), "--quiet"]) == 0
    return root / "svit"


@pytest.fixture
def folder(card_built_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(card_built_once, tmp_path / "svit"))
