import logging
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from svit_data.recipes.diagnostics import document_frequency, entropy
from svit_data.recipes.diversity import coverage_objective, greedy_order
from svit_data.recipes.matching import match_pool
from svit_data.recipes.pool_rows import candidates_of
from svit_data.recipes.registry import get_recipe, resolve_size
from svit_data.recipes.selection import (
    Candidates,
    balance_order,
    random_order,
    select_balance,
    select_core,
    select_diversity,
    select_random,
)
from svit_data.recipes.strata import strata_of
from svit_data.recipes.vocabulary import load_vocabulary


def sample_candidates(pool) -> Candidates:
    """The bundled pool's candidates with a matrix of their own rows (``matrix`` is candidates x concepts)."""
    c = candidates_of(match_pool(pool, load_vocabulary(), progress=False))[1]
    return replace(c, matrix=c.own_matrix(), rows=None)


def toy(rows: list[list[int]], concepts: int, yes=None, no=None, weights=None) -> Candidates:
    data = [(r, c) for r, cs in enumerate(rows) for c in cs]
    matrix = sp.csr_matrix(
        (np.ones(len(data)), ([d[0] for d in data], [d[1] for d in data])), shape=(len(rows), concepts)
    )
    n = len(rows)
    return Candidates(
        matrix,
        np.asarray(yes if yes is not None else [0] * n),
        np.asarray(no if no is not None else [0] * n),
        np.ones(concepts) if weights is None else weights,
    )


# six samples, three concepts of weights 1, 3, 4 (decay 1): the initial gains are 3, 0, 4, 5, 8, 0
HAND = [[1], [], [2], [0, 2], [0, 1, 2], []]
HAND_WEIGHTS = np.array([1.0, 3.0, 4.0])


def test_batched_greedy_by_hand_one_round_takes_the_top_initial_gains():
    c = toy(HAND, 3, weights=HAND_WEIGHTS)
    # R = 1: the three largest initial gains, 8 (s4), 5 (s3), 4 (s2); F = 1.5 + 3 + 4 * 11/6 = 11.83
    picked = select_diversity(c, 3, seed=0, rounds=1)
    assert picked.tolist() == [2, 3, 4]
    assert coverage_objective(c.matrix, c.weights, picked, 1.0) == pytest.approx(1.5 + 3 + 4 * 11 / 6)


def test_batched_greedy_by_hand_one_pick_per_round_is_the_exact_greedy():
    c = toy(HAND, 3, weights=HAND_WEIGHTS)
    # R = 3: s4 (8); counts (1, 1, 1) halve every gain: s3 0.5 + 2 = 2.5 beats s2 2 and s0 1.5; counts
    # (2, 1, 2): s0 1.5 (the rare concept 1, its second mention) beats s2 4/3 (a third mention of concept 2)
    for seed in range(4):
        order = greedy_order(c.matrix, c.weights, np.zeros(6, int), np.array([3]), seed=seed, rounds=3)
        assert order[:4].tolist() == [4, 3, 0, 2]  # then s2 by its final gain 4/3, then the zero gains
        assert sorted(order[4:].tolist()) == [1, 5]
    picked = select_diversity(c, 3, seed=0, rounds=3)
    assert picked.tolist() == [0, 3, 4]
    assert coverage_objective(c.matrix, c.weights, picked, 1.0) == pytest.approx(1.5 + 3 * 1.5 + 4 * 1.5)
    assert select_diversity(c, 3, seed=0, rounds=2).tolist() == [0, 3, 4]  # 2 picks (s4, s3), then s0


def naive_greedy(c: Candidates, size: int, seed: int, decay: float) -> list[int]:
    """Exact greedy written independently: one sample per step, ties by the seeded permutation."""
    rows = [sorted(c.matrix[i].indices.tolist()) for i in range(c.size)]
    rank = np.argsort(random_order(c.size, seed))
    counts, picked = np.zeros(c.matrix.shape[1]), []
    for _ in range(size):
        gains = {
            i: sum(c.weights[j] * (counts[j] + 1.0) ** -decay for j in rows[i])
            for i in range(c.size)
            if i not in picked
        }
        best = min(gains, key=lambda i: (-gains[i], rank[i]))
        picked.append(best)
        counts[rows[best]] += 1
    return picked


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 4), max_size=4, unique=True), min_size=1, max_size=12),
    st.lists(st.sampled_from([1.0, 2.0, 3.0]), min_size=5, max_size=5),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.data(),
)
def test_greedy_with_one_pick_per_round_matches_a_naive_greedy(rows, weights, seed, decay, data):
    c = toy(rows, 5, weights=np.array(weights))
    size = data.draw(st.integers(1, len(rows)))
    order = greedy_order(
        c.matrix, c.weights, np.zeros(c.size, int), np.array([size]), seed=seed, decay=decay, rounds=size
    )
    assert order[:size].tolist() == naive_greedy(c, size, seed, decay)
    assert sorted(order.tolist()) == list(range(c.size))  # every candidate, once


def test_diminishing_returns_prefer_a_rare_concept_over_repeating_a_common_one():
    # six samples mention only the common concept 0, one sample only the rare concept 1
    c = toy([[0]] * 6 + [[1]], 2)
    picked = select_diversity(c, 2, seed=3)
    assert 6 in picked


def test_selections_are_sorted_unique_sized_and_deterministic(pool):
    c = sample_candidates(pool)
    for select in (select_random, select_diversity):
        a, b = select(c, 300, seed=7), select(c, 300, seed=7)
        assert np.array_equal(a, b) and len(np.unique(a)) == 300 and np.all(np.diff(a) > 0)
    for task_mix in ("candidates", "free"):
        a = select_diversity(c, 300, seed=7, task_mix=task_mix, rounds=8)
        assert np.array_equal(a, select_diversity(c, 300, seed=7, task_mix=task_mix, rounds=8))
        assert not np.array_equal(a, select_diversity(c, 300, seed=8, task_mix=task_mix, rounds=8))
    assert not np.array_equal(select_random(c, 300, seed=7), select_random(c, 300, seed=8))
    assert np.array_equal(select_core(c, 300, seed=1)[0], select_core(c, 300, seed=1)[0])


def random_like(c: Candidates, size: int, task_mix: str, seed: int) -> np.ndarray:
    """A seeded random subset with the selection's quotas (``"candidates"``) or size (``"free"``)."""
    stratum, quotas = strata_of(c.task, c.size, size, task_mix)
    order = random_order(c.size, seed)
    return np.concatenate([order[stratum[order] == t][:q] for t, q in enumerate(quotas)])


@pytest.mark.parametrize("task_mix", ["candidates", "free"])
@pytest.mark.parametrize("recipe", ["svit-80k-d", "core-150k"])
def test_diversity_recipes_beat_random_on_concept_entropy_and_coverage(pool, recipe, task_mix):
    """The issue's yardstick: mentions spread over more concepts, more evenly, than in any of five random
    subsets with the same quotas; no concept that random covers is lost."""
    c = sample_candidates(pool)
    spec = get_recipe(recipe)
    size = resolve_size(spec, None, pool.num_rows, c.size)[0]
    for n in (size, 1000):
        if spec.method == "core":
            picked = select_core(c, n, seed=0, task_mix=task_mix)[0]
        else:
            picked = select_diversity(c, n, seed=0, task_mix=task_mix)
        df = document_frequency(c.matrix, picked)
        randoms = [document_frequency(c.matrix, random_like(c, n, task_mix, s)) for s in range(5)]
        assert entropy(df) > max(entropy(r) for r in randoms), (n, entropy(df), [entropy(r) for r in randoms])
        assert (df > 0).sum() >= max((r > 0).sum() for r in randoms)


def test_more_rounds_never_lower_the_objective_much_and_beat_random(pool):
    c = sample_candidates(pool)
    f = {
        r: coverage_objective(c.matrix, c.weights, select_diversity(c, 345, seed=0, rounds=r), 1.0)
        for r in (1, 4, 16, 345)
    }
    random_f = max(
        coverage_objective(c.matrix, c.weights, random_like(c, 345, "candidates", s), 1.0) for s in range(5)
    )
    assert f[16] > f[1] and f[345] > f[1] and min(f.values()) > random_f, (f, random_f)
    assert f[16] >= 0.99 * f[345]  # batching costs at most 1% of the objective here


def test_balance_reaches_one_to_one_within_two_percent(pool):
    c = sample_candidates(pool)
    assert c.yes.sum() / (c.yes.sum() + c.no.sum()) > 0.7  # the pool is yes-heavy
    for size in (175, 345, 1500):
        for picked, report in (select_balance(c, size, seed=0), select_core(c, size, seed=0)):
            assert len(picked) == size and len(np.unique(picked)) == size
            share = c.yes[picked].sum() / (c.yes[picked].sum() + c.no[picked].sum())
            assert abs(share - 0.5) <= 0.02 and report.reached
            assert report.after["yes_share"] == round(share, 4)
            assert report.before["yes_share"] > 0.6


def test_balance_other_targets_and_too_many_no():
    # 10 no-only samples and 2 yes-only samples: too many "no" at 6 samples
    yes = np.array([0] * 10 + [1, 1])
    no = np.array([1] * 10 + [0, 0])
    order = np.arange(12)
    picked, report = balance_order(order, yes, no, 4, target=0.5)
    assert yes[picked].sum() == no[picked].sum() == 2 and report.reached
    assert report.before == {"yes": 0, "no": 4, "yes_share": 0.0}


def test_balance_without_yes_no_answers_warns_with_counts(caplog):
    caplog.set_level(logging.WARNING)
    c = toy([[0]] * 5, 1)
    picked, report = select_balance(c, 3, seed=0)
    assert len(picked) == 3 and not report.reached
    assert "no yes/no answers among 5 candidates" in caplog.text


def test_balance_that_cannot_be_reached_warns_and_keeps_the_size(caplog):
    caplog.set_level(logging.WARNING)
    yes = np.array([1] * 9 + [0])
    no = np.array([0] * 9 + [1])
    picked, report = balance_order(np.arange(10), yes, no, 6)
    assert len(picked) == 6 and not report.reached
    assert "9 yes and 1 no answers" in caplog.text


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60),
    st.integers(0, 2**32 - 1),
    st.data(),
)
def test_balance_is_never_worse_than_the_unbalanced_selection(pairs, seed, data):
    yes = np.array([p[0] for p in pairs])
    no = np.array([p[1] for p in pairs])
    size = data.draw(st.integers(1, len(pairs)))
    order = random_order(len(pairs), seed)
    picked, report = balance_order(order, yes, no, size)
    assert len(picked) == size == len(np.unique(picked))
    if yes.sum() + no.sum() and report.before["yes"] + report.before["no"]:
        assert abs(report.after["yes_share"] - 0.5) <= abs(report.before["yes_share"] - 0.5) + 1e-9
