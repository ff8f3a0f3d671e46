import logging

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from svit_data.recipes.build import candidates_of
from svit_data.recipes.diagnostics import document_frequency, entropy
from svit_data.recipes.matching import match_pool
from svit_data.recipes.selection import (
    Candidates,
    balance_order,
    diversity_scores,
    random_order,
    select_balance,
    select_core,
    select_diversity,
    select_random,
)
from svit_data.recipes.vocabulary import load_vocabulary


def sample_candidates(pool) -> Candidates:
    return candidates_of(match_pool(pool, load_vocabulary(), progress=False))[1]


def toy(rows: list[list[int]], concepts: int, yes=None, no=None) -> Candidates:
    data = [(r, c) for r, cs in enumerate(rows) for c in cs]
    matrix = sp.csr_matrix(
        (np.ones(len(data)), ([d[0] for d in data], [d[1] for d in data])), shape=(len(rows), concepts)
    )
    n = len(rows)
    return Candidates(
        matrix,
        np.asarray(yes if yes is not None else [0] * n),
        np.asarray(no if no is not None else [0] * n),
        np.ones(concepts),
    )


def test_diversity_scores_follow_the_documented_formula():
    # concept 0 is common (4 samples), concept 1 rare (1 sample); overlap b = [1, 1, 2, 1, 0]
    c = toy([[0], [0], [0, 1], [0], []], 2)
    score = diversity_scores(c, seed=0)
    # sample 2 has the highest overlap: rank 0 in both concepts -> 1 + 1
    assert score[2] == 2.0 and score[4] == 0.0
    # the other samples of concept 0 get 1/2, 1/3, 1/4 in the seeded tie order
    assert sorted(score[[0, 1, 3]].tolist()) == [1 / 4, 1 / 3, 1 / 2]
    assert select_diversity(c, 1, seed=0).tolist() == [2]


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
    assert not np.array_equal(select_random(c, 300, seed=7), select_random(c, 300, seed=8))
    assert np.array_equal(select_core(c, 300, seed=1)[0], select_core(c, 300, seed=1)[0])


def test_free_diversity_beats_random_on_concept_entropy(pool):
    # without task quotas; with them, see test_strata.py (per-task coverage)
    c = sample_candidates(pool)
    for size in (175, 345, 1000):
        diverse = entropy(document_frequency(c.matrix, select_diversity(c, size, seed=0, task_mix="free")))
        randoms = [entropy(document_frequency(c.matrix, select_random(c, size, seed=s))) for s in range(5)]
        assert diverse > max(randoms), (size, diverse, randoms)


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


def test_concept_weights_enter_overlap_and_gain():
    c = toy([[0], [1], [0, 1]], 2)
    weighted = Candidates(c.matrix, c.yes, c.no, np.array([2.0, 1.0]))
    score = diversity_scores(weighted, seed=0)
    # overlap b = [2, 1, 3]: sample 2 ranks first in both concepts; then sample 0 (concept 0), 1 (concept 1)
    assert score.tolist() == [2.0 / 2, 1.0 / 2, 2.0 + 1.0]
