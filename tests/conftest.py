"""Shared fixtures of every test folder: private caches, the real-data fixtures, a built sample.

The suite never writes into the user's caches: before any test module imports ``datasets`` or
``huggingface_hub`` (both read their cache paths at import time), every cache variable below points into
one temporary folder, removed at the end of the session. Child processes inherit the environment.
``tests/test_user_caches.py`` runs a slice of the suite with an empty ``HOME`` and checks it stays empty.
Kept small and generic: tests/builders, tests/train, tests/recipes and tests/hub add their own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# variable -> folder under the session's temporary cache root
CACHE_FOLDERS = {
    "SVIT_CACHE": "svit",
    "HF_HOME": "huggingface",
    "HF_HUB_CACHE": "huggingface/hub",
    "HF_DATASETS_CACHE": "huggingface/datasets",
    "HF_XET_CACHE": "huggingface/xet",
    "TIKTOKEN_CACHE_DIR": "tiktoken",
    "XDG_CACHE_HOME": "xdg-cache",
    "TORCH_HOME": "torch",
    "TRITON_CACHE_DIR": "triton",
}
_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="svit-test-caches-"))
for _variable, _folder in CACHE_FOLDERS.items():
    os.environ[_variable] = str(_CACHE_ROOT / _folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CACHE_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def svit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per test session: the bundled sample and ingested pools are made once."""
    return tmp_path_factory.mktemp("svit-cache")


@pytest.fixture(autouse=True)
def _private_svit_cache(svit_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test uses the session's svit cache (fixtures that build pools share it)."""
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
