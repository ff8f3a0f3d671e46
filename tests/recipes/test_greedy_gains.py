"""The greedy's gains are scipy's mat-vec of the 0/1 structure, float for float."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from svit_data.recipes.diversity import gains


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


def test_greedy_order_is_the_same_with_either_mat_vec(monkeypatch):
    from svit_data.recipes import diversity

    rng = np.random.default_rng(3)
    matrix = sp.random(3_000, 120, density=0.06, format="csr", random_state=4, dtype=np.float64)
    matrix.data = rng.integers(1, 5, matrix.nnz).astype(np.float64)
    matrix = sp.csr_matrix(matrix, dtype=np.uint8)
    stratum = rng.integers(0, 3, 3_000)
    args = (matrix, rng.random(120) + 0.1, stratum, np.array([300, 120, 40]))
    scipy_order = diversity.greedy_order(*args, seed=7)
    monkeypatch.setattr(diversity, "COMPILED_GAINS_FROM", 0)
    assert np.array_equal(diversity.greedy_order(*args, seed=7), scipy_order)
