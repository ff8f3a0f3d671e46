import numpy as np
import pyarrow as pa
import pytest

from svit_data.recipes.yesno import answer_kind, count_yes_no, ratio_report


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("Yes, there is a dog on the left.", "yes"),
        ("No.", "no"),
        ("yes", "yes"),
        ("NO!", "no"),
        ('"Yes," she said', "yes"),
        ("**No**, the cup is empty.", "no"),
        ("Yes : it is", "yes"),
        ("No one is in the picture.", None),
        ("Yes there is a dog", None),
        ("There is no dog in the image.", None),
        ("I would say yes, it is.", None),
        ("Nope.", None),
        ("Yesterday it rained.", None),
        ("", None),
    ],
)
def test_answer_rule(answer, kind):
    assert answer_kind(answer) == kind


def test_vectorized_counts_match_the_rule_and_ignore_questions():
    values = ["Yes?", "Yes, a dog.", "Is it red?", "No.", "No one.", "yes"]
    is_answer = np.array([False, True, False, True, True, True])
    sample = np.array([0, 0, 1, 1, 1, 2])
    yes, no = count_yes_no(pa.array(values), is_answer, sample, 3)
    assert yes.tolist() == [1, 0, 1] and no.tolist() == [0, 1, 0]
    expected = [answer_kind(v) if a else None for v, a in zip(values, is_answer, strict=True)]
    assert expected.count("yes") == yes.sum() and expected.count("no") == no.sum()


def test_ratio_report():
    assert ratio_report(3, 1) == {"yes": 3, "no": 1, "yes_share": 0.75}
    assert ratio_report(0, 0)["yes_share"] == 0.0
