"""The greedy's gains are scipy's mat-vec of the 0/1 structure, float for float, and its compiled rounds
(which skip candidates whose bound cannot win) pick exactly what numpy's full mat-vec per round picks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from svit_data.recipes import diversity
from svit_data.recipes.diversity import gains, greedy_order


def compiled(*args, seed, decay=1.0, rounds=16):
    return diversity._compiled_order(*args, seed=seed, decay=decay, rounds=rounds)


def reference(*args, seed, decay=1.0, rounds=16):
    return diversity._numpy_order(*args, seed=seed, decay=decay, rounds=rounds)


def test_gains_are_the_structure_mat_vec_bit_for_bit():
    rng = np.random.default_rng(0)
    matrix = sp.random(5_000, 300, density=0.05, format="csr", random_state=1, dtype=np.float64)
    matrix.data = rng.integers(1, 255, matrix.nnz).astype(np.uint8)
    matrix = sp.csr_matrix(matrix, dtype=np.uint8)
    structure = sp.csr_matrix((np.ones(matrix.nnz), matrix.indices, matrix.indptr), shape=matrix.shape)
    for decay in (0.0, 0.5, 1.0, 3.0):
        per_concept = rng.random(300) * np.power(rng.integers(0, 50, 300) + 1.0, -decay)
        ours = gains(matrix, per_concept)
        assert ours.dtype == np.float64 and ours.tobytes() == (structure @ per_concept).tobytes()
    assert gains(sp.csr_matrix((0, 3), dtype=np.uint8), np.ones(3)).shape == (0,)


def _case(seed: int, n: int, concepts: int, density: float, strata: int):
    rng = np.random.default_rng(seed)
    matrix = sp.random(n, concepts, density=density, format="csr", random_state=seed, dtype=np.float64)
    matrix.data = rng.integers(1, 5, matrix.nnz).astype(np.float64)
    matrix = sp.csr_matrix(matrix, dtype=np.uint8)
    stratum = rng.integers(0, strata, n)
    return rng, matrix, stratum


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decay", [0.0, 0.5, 1.0, 3.0])
def test_lazy_greedy_equals_a_full_mat_vec_per_round(seed, decay):
    rng, matrix, stratum = _case(seed, 2_000 + 300 * seed, 60, 0.04 + 0.02 * seed, 1 + seed % 4)
    sizes = np.bincount(stratum, minlength=1 + seed % 4)
    quotas = (sizes * rng.uniform(0.05, 1.0, len(sizes))).astype(np.int64)
    # weights with many ties (small integers, some zero), and continuous ones
    for weights in (rng.integers(0, 3, 60).astype(np.float64), rng.random(60) + 0.1):
        for rounds in (1, 3, 16, 40):
            args = (matrix, weights, stratum, quotas)
            kwargs = {"seed": seed, "decay": decay, "rounds": rounds}
            assert np.array_equal(compiled(*args, **kwargs), reference(*args, **kwargs))


@pytest.mark.parametrize("decay", [-0.5, 1.0])
def test_lazy_greedy_without_bounds_recomputes_every_gain(decay):
    """Negative weights or decay make some per-concept values grow: the order is still numpy's."""
    rng, matrix, stratum = _case(11, 1_500, 40, 0.08, 3)
    quotas = np.array([200, 90, 0])
    weights = rng.normal(size=40) if decay > 0 else rng.random(40)
    args = (matrix, weights, stratum, quotas)
    assert np.array_equal(compiled(*args, seed=3, decay=decay), reference(*args, seed=3, decay=decay))


def test_lazy_greedy_edge_shapes():
    empty_rows = sp.csr_matrix((np.ones(4, np.uint8), [0, 1, 1, 2], [0, 2, 2, 2, 4, 4]), shape=(5, 3))
    for quotas in ([5], [0], [2]):
        args = (empty_rows, np.ones(3), np.zeros(5, np.int64), np.array(quotas))
        assert np.array_equal(compiled(*args, seed=1), reference(*args, seed=1))
    none = sp.csr_matrix((0, 3), dtype=np.uint8)
    for run in (compiled, reference):
        assert run(none, np.ones(3), np.zeros(0, np.int64), np.array([0]), seed=0).shape == (0,)


def test_lazy_greedy_with_many_strata_and_candidates_outside_them():
    """Strata past 127 (int32 groups), and candidates whose stratum has no quota, as numpy's rounds order them."""
    rng, matrix, _ = _case(5, 3_000, 50, 0.06, 1)
    stratum = rng.integers(0, 200, 3_000)
    quotas = rng.integers(0, 4, 150)  # strata 150..199 have no quota: never picked, ordered with the rest
    args = (matrix, rng.random(50), stratum, quotas)
    assert np.array_equal(compiled(*args, seed=2), reference(*args, seed=2))


def test_by_gain_is_numpys_stable_sort_of_the_negated_gains():
    from svit_data.recipes.greedy_kernel import by_gain, mentioned

    rng = np.random.default_rng(8)
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 5e-324])
    for trial in range(40):
        n = int(rng.integers(0, 5_000))
        if trial % 2:
            values = rng.choice(special, n)
        else:
            values = np.round(rng.normal(size=n) * 10.0 ** rng.integers(-300, 300), int(rng.integers(0, 3)))
        items = rng.permutation(n + 7)[:n].astype(np.int64)
        gain = np.zeros(n + 7)
        gain[items] = values
        assert np.array_equal(by_gain(items, gain), items[np.argsort(-gain[items], kind="stable")]), trial
    indices = rng.integers(0, 40, 500).astype(np.int32)
    indptr, rows = np.array([0, 200, 200, 500]), np.array([0, 2])
    assert np.array_equal(mentioned(indptr, indices, rows, 50), np.bincount(indices, minlength=50) > 0)
    assert not mentioned(indptr, indices, rows[:0], 50).any()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_lazy_greedy_is_the_same_for_any_number_of_threads(monkeypatch, workers):
    monkeypatch.setattr(diversity, "PARALLEL_FROM", 0)
    monkeypatch.setattr(diversity, "WORKERS", workers)
    rng, matrix, stratum = _case(21, 4_000, 70, 0.05, 4)
    quotas = np.array([150, 40, 300, 7])
    for weights in (rng.integers(0, 3, 70).astype(np.float64), rng.random(70)):
        args = (matrix, weights, stratum, quotas)
        assert np.array_equal(compiled(*args, seed=4), reference(*args, seed=4))


def test_greedy_order_takes_the_compiled_rounds_from_compiled_from(monkeypatch):
    rng, matrix, stratum = _case(9, 2_500, 40, 0.07, 3)
    args = (matrix, rng.random(40), stratum, np.array([100, 60, 20]))
    below = greedy_order(*args, seed=5)
    monkeypatch.setattr(diversity, "_numpy_order", None)  # would fail if called
    monkeypatch.setattr(diversity, "COMPILED_FROM", 2_500)
    assert np.array_equal(greedy_order(*args, seed=5), below)
