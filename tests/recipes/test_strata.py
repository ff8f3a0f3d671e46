"""Task quotas: the apportionment rule, quotas kept by diversity and balance, and task_mix="free" as before."""

from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from svit_data.folder import read_state
from svit_data.recipes.selection import (
    Candidates,
    balance_order,
    select_balance,
    select_core,
    select_diversity,
    select_random,
)
from svit_data.recipes.strata import task_quotas
from svit_data.tasks import TASKS

from .test_selection import sample_candidates

# ids_sha256 of the recipes on the bundled sample (seed 0) with task_mix="free". They change only if the
# bundled sample, vocabulary, matching or the selection rule change: core-150k and svit-80k-d changed when
# the diversity order became the batched greedy of the coverage objective (16 rounds); svit-80k-b, the
# random svit-80k and svit-train are as before.
FREE_IDS_SHA256 = {
    "core-150k": "278b556366bacbd45ba5ce23d3d870f56d73fa1fbf5934da4fdf0ab3bac2897b",
    "svit-80k-d": "6ee9d3c1d1f717ff584a7b1bb7e4d567bc2131877f77a6c969435c113ac9401c",
    "svit-80k-b": "53f1ce624b4a0b2c880eb1244aaa595403af426240b127d37c81163837f79247",
    "svit-80k": "9892532a52ec50945e9dabc09884506eba8efe77af5f3d704fb52343669249b6",
    "svit-train": "b546501794ddd1bfdb2ca9f00626415813e6eb6075254eeb659e989c28395ae3",
}
QUOTA_FREE = ("svit-80k", "svit-train")  # no task_mix parameter: the same ids whatever --task-mix says


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
    # --include-flagged: the candidates these digests were pinned on (every train sample, flags or not)
    args = ("--quiet", "--include-flagged")
    assert cli("build", *FREE_IDS_SHA256, "--task-mix", "free", "--out", out, *args) == 0
    configs = read_state(out).configs
    for name, digest in FREE_IDS_SHA256.items():
        manifest = configs[name].recipe.manifest
        assert manifest.ids_sha256 == digest, name
        assert configs[name].recipe.diagnostics.task_quotas is None
        if name not in QUOTA_FREE:
            assert manifest.parameters["task_mix"] == "free"
            assert "task_mix=free" in configs[name].recipe.objective
    stratified = tmp_path / "stratified"
    for run in ("a", "b"):
        assert cli("build", "core-150k", "--out", stratified / run, *args) == 0
    a, b = (read_state(stratified / run).configs["core-150k"].recipe for run in ("a", "b"))
    assert a.manifest == b.manifest  # deterministic
    assert a.manifest.ids_sha256 != FREE_IDS_SHA256["core-150k"]
    assert a.manifest.parameters["task_mix"] == "candidates"
    assert "quota_t = floor(345 x n_t / N)" in a.objective
    assert "referring_qa 116" in a.objective


def test_cli_rejects_an_unknown_task_mix(cli, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli("build", "core-150k", "--task-mix", "even", "--out", tmp_path / "o")
    assert "invalid choice" in capsys.readouterr().err
