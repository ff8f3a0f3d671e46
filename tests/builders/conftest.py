"""Fixtures of the builders tests: real VG/COCO slices (skipped when ../shared is absent), the fake server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(HERE))

from fake_openai import FakeOpenAI  # noqa: E402
from scripted import answer  # noqa: E402


@pytest.fixture
def shared_fixtures() -> Path:
    if not (SHARED / "visual_genome" / "objects.json").exists():
        pytest.skip("../shared/fixtures is absent (only in the project's workspace)")
    return SHARED


@pytest.fixture
def vg_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "visual_genome"


@pytest.fixture
def small_vg(tmp_path: Path, vg_dir: Path) -> Path:
    """The first ``n`` images of the real VG slice (default 6), with an image that has no annotations."""
    out = tmp_path / "vg"
    out.mkdir()
    n = 6
    for name in ("image_data.json", "objects.json", "region_descriptions.json", "attributes.json"):
        items = json.loads((vg_dir / name).read_text())[:n]
        (out / name).write_text(json.dumps(items))
    return out


@pytest.fixture
def fake_server():
    """Factory: ``with fake_server(**kwargs) as (fake, url)``."""
    from contextlib import contextmanager

    @contextmanager
    def make(**kwargs):
        kwargs.setdefault("answer", answer)
        fake = FakeOpenAI(**kwargs)
        with fake.serve(hard_timeout=240) as url:
            yield fake, url

    return make
