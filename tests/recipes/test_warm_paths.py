"""The warm build's shortcuts give what the plain computations give: the greedy and the diagnostics read the
pool's matrix through a row map (no copy of the candidates' rows), balance reads the diversity order's rest
only as far as it needs (:class:`Ranked`), and eligibility adds the pool-wide flags by rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from svit_data.pool import Pool
from svit_data.quality import EXCLUDING
from svit_data.recipes import diagnostics, diversity, shuffle_kernel
from svit_data.recipes.candidates import Candidates, Ranked, best, random_order
from svit_data.recipes.diagnostics import diagnose
from svit_data.recipes.diversity import greedy_order, greedy_ranked
from svit_data.recipes.matching import MatchedPool
from svit_data.recipes.quality_filter import eligibility
from svit_data.recipes.selection import BalanceReport, balance_order, select_core, select_diversity


def _pool_matrix(seed: int, n: int = 3_000, concepts: int = 60) -> tuple[np.random.Generator, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    matrix = sp.random(n, concepts, density=0.06, format="csr", random_state=seed, dtype=np.float64)
    matrix.data = rng.integers(1, 5, matrix.nnz).astype(np.float64)
    return rng, sp.csr_matrix(matrix, dtype=np.uint8)


@pytest.mark.parametrize("compiled,workers", [(False, 1), (True, 1), (True, 3)])
def test_greedy_through_a_row_map_is_the_greedy_of_the_copied_rows(monkeypatch, compiled, workers):
    if compiled:
        monkeypatch.setattr(diversity, "COMPILED_FROM", 0)
        monkeypatch.setattr(diagnostics, "COMPILED_FROM", 0)
        monkeypatch.setattr(diversity, "PARALLEL_FROM", 0)
        monkeypatch.setattr(diversity, "WORKERS", workers)
    for seed in range(4):
        rng, matrix = _pool_matrix(seed)
        rows = np.sort(rng.choice(matrix.shape[0], 2_000, replace=False))
        stratum = rng.integers(0, 3, len(rows))
        weights = rng.integers(0, 3, matrix.shape[1]).astype(np.float64) if seed % 2 else rng.random(60)
        quotas = np.array([90, 30, 60])
        copied = greedy_order(matrix[rows], weights, stratum, quotas, seed=seed)
        assert np.array_equal(greedy_order(matrix, weights, stratum, quotas, seed=seed, rows=rows), copied)
        view = Candidates(
            matrix, rng.integers(0, 3, 2_000), rng.integers(0, 3, 2_000), weights, stratum, rows=rows
        )
        own = replace(view, matrix=view.own_matrix(), rows=None)
        assert view.size == own.size == 2_000
        for select in (select_core, select_diversity):
            a, b = select(view, 180, seed=seed), select(own, 180, seed=seed)
            assert np.array_equal(a[0], b[0]) if select is select_core else np.array_equal(a, b)
        picked = select_diversity(view, 180, seed=seed)
        report = BalanceReport({}, {}, True)
        args = (stratum, rng.integers(0, 50, 2_000), picked, report)
        assert diagnose(matrix, *args, seed=seed, rows=rows) == diagnose(matrix[rows], *args, seed=seed)


@pytest.mark.parametrize("compiled", [False, True])
def test_ranked_greedy_is_the_greedy_order_per_stratum(monkeypatch, compiled):
    if compiled:
        monkeypatch.setattr(diversity, "COMPILED_FROM", 0)
    rng, matrix = _pool_matrix(7)
    stratum = rng.integers(0, 4, matrix.shape[0])
    quotas = np.array([50, 0, 200, 7])
    for weights in (rng.integers(0, 3, 60).astype(np.float64), rng.random(60)):
        order = greedy_order(matrix, weights, stratum, quotas, seed=3)
        ranked = greedy_ranked(matrix, weights, stratum, quotas, seed=3)
        for t, q in enumerate(quotas):
            part = order[stratum[order] == t]
            assert np.array_equal(ranked.heads[t], part[:q])
            everyone = np.ones(matrix.shape[0], bool)
            assert np.array_equal(ranked.following(t, everyone, len(part)), part[q:])
            assert np.array_equal(ranked.following(t, everyone, 5), part[q : q + 5])


def test_best_is_the_prefix_of_a_stable_sort_even_with_ties_and_nan():
    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(0, 80))
        key = rng.integers(0, 4, n + 5).astype(np.float64)
        if trial % 3 == 0:
            key[rng.integers(0, n + 5, 3)] = np.nan
        if trial % 3 == 1:
            key = np.where(key == 0, -0.0, key)
        members = rng.permutation(n + 5)[:n]
        k = int(rng.integers(0, n + 2))
        assert np.array_equal(best(members, key, k), members[np.argsort(-key[members], kind="stable")][:k])


def test_balance_of_a_ranked_order_is_the_balance_of_the_full_order():
    rng = np.random.default_rng(2)
    for trial in range(150):
        n = int(rng.integers(5, 120))
        yes, no = rng.integers(0, 3, n) * (rng.random(n) < 0.6), rng.integers(0, 2, n) * (rng.random(n) < 0.4)
        stratum = rng.integers(0, 3, n)
        counts = np.bincount(stratum, minlength=3)
        quotas = (counts * rng.uniform(0, 1, 3)).astype(np.int64)
        gain = rng.integers(0, 5, n).astype(np.float64)
        seeded = rng.permutation(n)
        # picks: any quotas[t] of each stratum, in any order; the rest: by gain, ties in seeded order
        heads, rest = [], []
        for t in range(3):
            members = seeded[stratum[seeded] == t]
            heads.append(rng.permutation(members)[: quotas[t]])
            rest.append(members[~np.isin(members, heads[t])])
        full = np.concatenate(
            [
                np.concatenate([h, r[np.argsort(-gain[r], kind="stable")]])
                for h, r in zip(heads, rest, strict=True)
            ]
        )
        target = float(rng.choice([0.3, 0.5, 0.7]))
        kwargs = {"target": target, "stratum": stratum, "quotas": quotas}
        a = balance_order(full, yes, no, int(quotas.sum()), **kwargs)
        b = balance_order(Ranked(heads, rest, gain), yes, no, int(quotas.sum()), **kwargs)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1], trial


def _flagged_pool(tmp_path, rng) -> Pool:
    codes = ["empty_answer", "box_repaired", "near_duplicate", "error_reply"]
    files, first = [], 0
    for f, n in enumerate((70, 45)):
        flags = [list(rng.choice(codes, rng.integers(0, 3))) for _ in range(n)]
        ids = [f"conversation/{first + i}/0" for i in range(n)]
        pq.write_table(
            pa.table({"id": ids, "flags": pa.array(flags, pa.list_(pa.string()))}), tmp_path / f"{f}.parquet"
        )
        files.append(tmp_path / f"{f}.parquet")
        first += n
    pool = Pool(tmp_path, files, "fp", {"conversation": first})
    pool.near_duplicates = np.sort(rng.choice(first, 12, replace=False))
    pool.verified_flags = {"unsupported_by_image": np.sort(rng.choice(first, 9, replace=False)),
                           "box_repaired": np.array([0, 3])}  # fmt: skip
    return pool


def test_eligibility_counts_the_pool_wide_flags_as_the_flag_lists_do(tmp_path):
    rng = np.random.default_rng(4)
    pool = _flagged_pool(tmp_path, rng)
    n = 115
    matched = MatchedPool(sp.csr_matrix((n, 2)), pa.array([""] * n), *[np.zeros(n)] * 5, [], np.ones(2), "k")
    train = rng.random(n) < 0.8
    got = eligibility(pool, matched, train)
    flags = pa.Table.from_batches(list(pool.iter_batches(columns=["flags"])))["flags"].to_pylist()
    assert np.array_equal(got.keep, [not any(c in EXCLUDING for c in row) for row in flags])
    counted = Counter(c for row, t in zip(flags, train, strict=True) if t for c in row if c in EXCLUDING)
    assert got.excluded_by_reason == dict(sorted(counted.items()))
    assert any(c in row for row in flags for c in ("near_duplicate", "unsupported_by_image"))


def test_warm_up_loads_every_compiled_function_of_the_greedy():
    from svit_data.recipes import greedy_kernel

    thread = diversity.warm_up()
    thread.join(timeout=600)
    assert not thread.is_alive()
    for name in ("round_top", "row_sums", "add_counts", "by_gain", "mentioned"):
        assert getattr(greedy_kernel, name).signatures, name
    assert shuffle_kernel.draws.signatures and shuffle_kernel.swaps.signatures


def test_the_compiled_permutation_is_numpys():
    for n in (0, 1, 2, 3, 5, 64, 65, 1_000, 65_537, 300_001):
        for seed in (0, 1, 7, 1_000_003, 2**40 + 5, 2**63):
            assert np.array_equal(
                shuffle_kernel.permutation(n, seed), np.random.default_rng(seed).permutation(n)
            )


def test_random_order_is_compiled_from_a_size_on(monkeypatch):
    monkeypatch.setattr(shuffle_kernel, "COMPILED_FROM", 100)
    monkeypatch.setattr(shuffle_kernel, "permutation", lambda n, seed: np.full(n, -1))
    assert (random_order(100, 3) == -1).all() and np.array_equal(
        random_order(99, 3), np.random.default_rng(3).permutation(99)
    )
