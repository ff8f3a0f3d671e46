"""Fixtures of the core tests: the bundled sample pool, ingested once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sample_pool(svit_cache):
    from svit_data.pool import open_pool

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SVIT_CACHE", str(svit_cache))
        return open_pool("sample", progress=False)


@pytest.fixture(scope="session")
def sample_pool_rows(sample_pool) -> list[dict]:
    return sample_pool.table([c for c in sample_pool.table().column_names if c != "image"]).to_pylist()
