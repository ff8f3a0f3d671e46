"""Which pool rows a recipe chooses from: train candidates, per-source codes and caps, excluded images,
and sorted ids of chosen rows. Shared by named recipes (:mod:`.build`) and recipe files
(:mod:`.recipe_file_build`)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.errors import SvitError
from svit_data.pool import Pool
from svit_data.recipes.matching import MatchedPool
from svit_data.recipes.selection import Candidates


def candidates_of(
    matched: MatchedPool, excluded: np.ndarray | None = None, source: np.ndarray | None = None
) -> tuple[np.ndarray, Candidates]:
    """Pool rows of the train samples (less ``excluded`` rows), and the selection inputs restricted to them
    (the pool's matrix through the row map, not a copy); ``source``: the source index of every pool row
    (for ``task_mix="sources"``)."""
    rows = np.flatnonzero(~matched.test if excluded is None else ~matched.test & ~excluded)
    return rows, Candidates(
        matrix=matched.matrix,
        rows=rows,
        yes=matched.yes[rows],
        no=matched.no[rows],
        weights=matched.weights,
        task=matched.task[rows],
        source=None if source is None else source[rows],
    )


def source_codes(pool: Pool) -> tuple[np.ndarray, list[str]]:
    """Per pool row the index of its source, and the source names in order of first appearance."""
    encoded = pool.table(["source"])["source"].combine_chunks().dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def capped_rows(source: np.ndarray, eligible: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Pool rows left out by a per-source cap: of each source's ``eligible`` rows, all but a seeded random
    ``cap`` of them (numpy PCG64 permutation with ``seed``, per source in index order)."""
    if cap < 1:
        raise SvitError(f"--source-cap must be at least 1, got {cap}")
    out = np.zeros(len(source), bool)
    rng = np.random.default_rng(seed)
    for code in range(int(source.max()) + 1 if len(source) else 0):
        rows = np.flatnonzero(eligible & (source == code))
        if len(rows) > cap:
            out[rows[rng.permutation(len(rows))[cap:]]] = True
    return out


def sorted_ids(matched: MatchedPool, rows: np.ndarray) -> list[str]:
    """Sample ids of pool ``rows``, sorted in plain string (code point) order."""
    ids = matched.ids.take(pa.array(rows, pa.int64()))
    return ids.take(pc.sort_indices(ids)).to_pylist()


def excluded_rows(pool: Pool, images: Collection[int] | None) -> np.ndarray | None:
    """Pool rows (in pool order, as the matched pool) whose image is in ``images``; None when no list."""
    if images is None:
        return None
    value_set = pa.array(sorted(set(images)), pa.int64())
    return pc.is_in(pool.table(["image_id"])["image_id"], value_set=value_set).to_numpy(zero_copy_only=False)
