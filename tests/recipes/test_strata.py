"""Task quotas: the apportionment rule, quotas kept by diversity and balance, and task_mix="free" as before."""

from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from svit_data.recipes.diagnostics import coverage, document_frequency
from svit_data.recipes.selection import (
    Candidates,
    balance_order,
    select_balance,
    select_core,
    select_diversity,
    select_random,
)
from svit_data.recipes.strata import strata_of, task_quotas

from svit_data.folder import read_state
from svit_data.tasks import TASKS

from .test_selection import sample_candidates

# ids_sha256 of the recipes on the bundled sample (seed 0) before task quotas existed: task_mix="free"
# must reproduce them. They change only if the bundled sample, vocabulary or matching change.
FREE_IDS_SHA256 = {
    "core-150k": "2123e694f5177a6e9c9e2819d7f81c3167db77dd8cd38d8e1bef0a84c6bcea0e",
    "svit-80k-d": "74e11740aef2804ed3357cfd35d3c7ba0094c057f0a5675d91d794f2f99f6a59",
    "svit-80k-b": "53f1ce624b4a0b2c880eb1244aaa595403af426240b127d37c81163837f79247",
}


def apportion(counts: list[int], size: int) -> list[int]:
    """The documented rule, written independently with exact fractions."""
    total = sum(counts)
    exact = [Fraction(size * c, total) for c in counts]
    quotas = [int(e) for e in exact]
    ranked = sorted(range(len(counts)), key=lambda t: (-(exact[t] - quotas[t]), t))
    for t in ranked[: size - sum(quotas)]:
        quotas[t] += 1
    return quotas


def test_quotas_are_largest_remainder_with_ties_in_task_order():
    assert task_quotas(np.array([1, 1, 1]), 2).tolist() == [1, 1, 0]  # equal remainders: task order
    assert task_quotas(np.array([648, 3070, 1986, 216]), 345).tolist() == [38, 179, 116, 12]
    assert task_quotas(np.array([5, 0, 5]), 10).tolist() == [5, 0, 5]
    with pytest.raises(ValueError):
        task_quotas(np.array([1, 2]), 4)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=6).filter(sum), st.data())
def test_quotas_sum_exactly_and_stay_within_one_of_the_shares(counts, data):
    size = data.draw(st.integers(0, sum(counts)))
    quotas = task_quotas(np.array(counts), size)
    assert quotas.sum() == size and quotas.tolist() == apportion(counts, size)
    for q, c in zip(quotas.tolist(), counts, strict=True):
        assert q <= c and abs(q - Fraction(size * c, sum(counts))) < 1


@pytest.mark.parametrize("select", [select_diversity, select_balance, select_core])
@pytest.mark.parametrize("size", [175, 345, 1500])
def test_selections_keep_the_candidates_task_mix(pool, select, size):
    c = sample_candidates(pool)
    result = select(c, size, seed=0)
    picked = result[0] if isinstance(result, tuple) else result
    mix = np.bincount(c.task[picked], minlength=len(TASKS))
    expected = apportion(np.bincount(c.task, minlength=len(TASKS)).tolist(), size)
    assert np.all(np.abs(mix - expected) <= 1) and mix.sum() == size == len(np.unique(picked))
    assert mix.tolist() == expected  # in fact exact


@pytest.mark.parametrize("size", [175, 345, 1500])
def test_balance_with_quotas_reaches_one_to_one(pool, size):
    c = sample_candidates(pool)
    for picked, report in (select_balance(c, size, seed=0), select_core(c, size, seed=3)):
        share = c.yes[picked].sum() / (c.yes[picked].sum() + c.no[picked].sum())
        assert abs(share - 0.5) <= 0.02 and report.reached and report.before["yes_share"] > 0.55


def test_balance_swaps_in_the_task_that_can_balance():
    # task 0 holds yes-only samples (nothing to swap in), task 1 yes samples first and no samples after
    yes = np.array([1, 1, 1, 1, 1, 1, 0, 0])
    no = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    stratum = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    quotas = np.array([2, 2])  # the top: samples 0, 1 and 4, 5: 4 yes, 0 no
    picked, report = balance_order(np.arange(8), yes, no, 4, stratum=stratum, quotas=quotas)
    assert report.reached and yes[picked].sum() == no[picked].sum() == 2
    assert picked.tolist() == [0, 1, 6, 7]  # quotas kept: task 0 untouched, both swaps in task 1
    free, _ = balance_order(np.arange(8), yes, no, 4)
    assert free.tolist() == [0, 1, 6, 7]


def test_within_task_diversity_covers_each_tasks_concepts_at_least_as_well_as_random(pool):
    """Ranks within the task: per task, diversity mentions at least as many of that task's concepts as
    any of five random selections with the same quotas, and strictly more in total (global ranks drop
    referring QA coverage to about half on the sample). Entropy is not asserted: the b(s) order favours
    samples with many concepts, which also repeat the common ones."""
    c = sample_candidates(pool)
    available = [document_frequency(c.matrix, np.flatnonzero(c.task == t)) > 0 for t in range(len(TASKS))]

    def per_task(picked):
        return np.array(
            [
                coverage(document_frequency(c.matrix, picked[c.task[picked] == t]), available[t])
                for t in range(4)
            ]
        )

    stratum, quotas = strata_of(c.task, c.size, 175, "candidates")
    diverse = per_task(select_diversity(c, 175, seed=0))
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(c.size)
        randoms = per_task(np.concatenate([order[stratum[order] == t][:q] for t, q in enumerate(quotas)]))
        assert np.all(diverse >= randoms) and diverse.sum() > randoms.sum(), (diverse, randoms)


def test_free_is_one_stratum_and_random_ignores_quotas(pool):
    c = sample_candidates(pool)
    untagged = Candidates(c.matrix, c.yes, c.no, c.weights)  # no task column: one stratum
    assert np.array_equal(
        select_diversity(c, 300, seed=2, task_mix="free"), select_diversity(untagged, 300, seed=2)
    )
    assert np.array_equal(
        select_core(c, 300, seed=2, task_mix="free")[0], select_core(untagged, 300, seed=2)[0]
    )
    assert select_random(c, 300, seed=2).tolist() == select_random(untagged, 300, seed=2).tolist()
    with pytest.raises(ValueError, match="unknown task_mix"):
        select_diversity(c, 10, seed=0, task_mix="even")


def test_toy_matrix_without_tasks_is_unchanged():
    m = sp.csr_matrix(np.eye(3))
    c = Candidates(m, np.zeros(3), np.zeros(3), np.ones(3))
    assert select_diversity(c, 2, seed=0).tolist() == select_diversity(c, 2, seed=0, task_mix="free").tolist()


def test_cli_task_mix_free_reproduces_the_unstratified_ids(cli, tmp_path):
    out = tmp_path / "svit"
    assert cli("build", *FREE_IDS_SHA256, "--task-mix", "free", "--out", out, "--quiet") == 0
    configs = read_state(out)["configs"]
    for name, digest in FREE_IDS_SHA256.items():
        manifest = configs[name]["manifest"]
        assert manifest["ids_sha256"] == digest and manifest["parameters"]["task_mix"] == "free"
        assert "task_quotas" not in configs[name]["diagnostics"]
        assert "task_mix=free" in configs[name]["objective"]
    stratified = tmp_path / "stratified"
    for run in ("a", "b"):
        assert cli("build", "core-150k", "--out", stratified / run, "--quiet") == 0
    a, b = (read_state(stratified / run)["configs"]["core-150k"] for run in ("a", "b"))
    assert a["manifest"] == b["manifest"]  # deterministic
    assert a["manifest"]["ids_sha256"] != FREE_IDS_SHA256["core-150k"]
    assert a["manifest"]["parameters"]["task_mix"] == "candidates"
    assert "quota_t = floor(345 x n_t / N)" in a["objective"]
    assert "referring_qa 116" in a["objective"]


def test_cli_rejects_an_unknown_task_mix(cli, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli("build", "core-150k", "--task-mix", "even", "--out", tmp_path / "o")
    assert "invalid choice" in capsys.readouterr().err
