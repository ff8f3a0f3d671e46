"""POPE answer rules and metrics against hand-worked examples, sklearn as an oracle, McNemar by hand."""

from __future__ import annotations

import numpy as np
import pytest

from svit_data.train import pope_metrics as pm


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, there is a dog.", "yes"),
        ("No.", "no"),
        ("NO", "no"),
        ("There is not a cat in the image.", "no"),
        ("Yes. There is no cat next to it.", "yes"),  # only the first sentence counts
        ("no, there isn't", "no"),
        ("Nothing suggests a cat", "yes"),  # 'nothing' is not a negation word
        ("", "yes"),
    ],
)
def test_pope_rule(text, expected):
    assert pm.parse_pope(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [(" Yes ", "yes"), ("no", "no"), ("Yes.", None), ("yes, a dog", None), ("", None)]
)
def test_strict_rule(text, expected):
    assert pm.parse_strict(text) == expected


def test_metrics_hand_worked():
    gold = ["yes", "yes", "yes", "no", "no", "no"]
    answers = ["yes", "no", None, "yes", "no", "no"]
    m = pm.metrics(gold, answers)
    # correct: 0, 4, 5 -> 3/6; said yes at 0 and 3 (tp 1, fp 1); gold yes 3 (fn 2, the unparsed one included)
    assert (m["n"], m["unparsed"]) == (6, 1)
    assert m["accuracy"]["value"] == 0.5
    assert m["precision"]["value"] == 0.5
    assert m["recall"]["value"] == pytest.approx(1 / 3)
    assert m["f1"]["value"] == pytest.approx(0.4)  # 2*1 / (2*1 + 1 + 2)
    assert m["yes_ratio"]["value"] == pytest.approx(1 / 3)
    for name in pm.METRICS:
        assert m[name]["low"] <= m[name]["value"] <= m[name]["high"]


def test_zero_denominators_are_zero():
    m = pm.metrics(["no", "no"], ["no", "no"])
    assert (m["precision"]["value"], m["recall"]["value"], m["f1"]["value"]) == (0.0, 0.0, 0.0)
    assert m["accuracy"]["value"] == 1.0


def test_point_estimates_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(3)
    gold = list(rng.choice(["yes", "no"], 300))
    answers = list(rng.choice(["yes", "no", None], 300, p=[0.5, 0.4, 0.1]))
    m = pm.metrics(gold, answers)
    y = [g == "yes" for g in gold]
    p = [a == "yes" for a in answers]
    assert m["accuracy"]["value"] == pytest.approx(accuracy_score(gold, [a or "neither" for a in answers]))
    assert m["precision"]["value"] == pytest.approx(precision_score(y, p))
    assert m["recall"]["value"] == pytest.approx(recall_score(y, p))
    assert m["f1"]["value"] == pytest.approx(f1_score(y, p))
    assert m["yes_ratio"]["value"] == pytest.approx(np.mean(p))


def test_bootstrap_is_seeded_and_about_the_normal_width():
    gold = ["yes", "no"] * 200
    answers = ["yes", "no"] * 100 + ["no", "yes"] * 100  # accuracy 0.5 over n = 400
    a, b = pm.metrics(gold, answers, seed=1), pm.metrics(gold, answers, seed=1)
    assert a == b
    half = 1.96 * np.sqrt(0.25 / 400)  # 0.049
    assert a["accuracy"]["low"] == pytest.approx(0.5 - half, abs=0.015)
    assert a["accuracy"]["high"] == pytest.approx(0.5 + half, abs=0.015)
    assert pm.metrics(gold, answers, seed=2)["accuracy"] != a["accuracy"]


def test_mcnemar_exact_by_hand():
    a = [True] * 10 + [True] + [False] * 6
    b = [True] * 10 + [False] + [True] * 6
    result = pm.mcnemar_exact(a, b)
    # discordant 1 vs 6: p = 2 * (C(7,0) + C(7,1)) / 2**7 = 0.125
    assert (result["only_a_correct"], result["only_b_correct"]) == (1, 6)
    assert result["p_value"] == pytest.approx(0.125)
    assert pm.mcnemar_exact([True, False], [True, False])["p_value"] == 1.0


def test_paired_compare_and_verdict():
    gold = ["yes", "no"] * 50
    always_yes = ["yes"] * 100
    right = list(gold)
    c = pm.paired_compare(gold, always_yes, right)
    assert c["accuracy"]["difference"] == pytest.approx(0.5)
    assert c["yes_ratio"]["difference"] == pytest.approx(-0.5)
    assert c["yes_ratio"]["low"] <= -0.5 <= c["yes_ratio"]["high"] < 0
    assert c["mcnemar"]["only_b_correct"] == 50 and c["mcnemar"]["p_value"] < 1e-10
    sentence = pm.verdict("yes_ratio", c["yes_ratio"])
    assert sentence.startswith("B's yes-ratio is 0.50 lower (95% CI ")
    same = pm.paired_compare(gold, right, right)
    assert pm.verdict("accuracy", same["accuracy"]).startswith("B's accuracy is not clearly different")
