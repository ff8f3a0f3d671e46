"""POPE answer parsing, metrics with bootstrap confidence intervals, and paired comparisons.

Pure functions over lists of answers; nothing here runs a model. The module imports only numpy and
scipy, so `svit-eval lmms-eval-task` copies this very file next to the task's utils.py and lmms-eval
scores with the same code.

Answer rules (both are always reported):

- **pope**: as the original POPE evaluation. Keep the first sentence (the text before the first
  period); the answer is "no" when one of its words is a negation word (`no`, `not`; compared
  lower-case, words split on anything that is not a letter or an apostrophe), else "yes". Every
  answer parses.
- **strict**: as lmms-eval's POPE task: the whole answer, stripped and lower-cased, must be exactly
  "yes" or "no"; anything else parses to neither (None), counted as `unparsed`.

Metrics (positive = yes): accuracy (an unparsed answer is wrong), precision, recall, F1 (an unparsed
answer is not a yes, so it can only cost recall), the yes-ratio *of the predictions* (lmms-eval's
`pope_yes_ratio` is the ground truth's and always shows 0.5 on a balanced probe), and n. A ratio
whose denominator is zero is 0. Each metric has a seeded 95% percentile bootstrap interval
(`scipy.stats.bootstrap` resampling probes with replacement). `compare` resamples probes *paired*
(the same probe in both evals) and tests accuracy with McNemar's exact test (a two-sided binomial
test on the discordant pairs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

NEGATIONS = frozenset({"no", "not"})
RULES = ("pope", "strict")
METRICS = ("accuracy", "precision", "recall", "f1", "yes_ratio")
COMPARED = ("accuracy", "f1", "yes_ratio")
CONFIDENCE = 0.95
RESAMPLES = 1000
_WORD = re.compile(r"[a-z']+")


def parse_pope(text: str) -> str:
    """POPE's rule: "no" when the first sentence holds a negation word, else "yes"."""
    first = text.split(".", 1)[0]
    return "no" if NEGATIONS.intersection(_WORD.findall(first.lower())) else "yes"


def parse_strict(text: str) -> str | None:
    """lmms-eval's rule: exactly "yes" or "no" after strip + lower-case, else None."""
    answer = text.strip().lower()
    return answer if answer in ("yes", "no") else None


PARSERS: dict[str, Callable[[str], str | None]] = {"pope": parse_pope, "strict": parse_strict}


def codes(answers: Sequence[str | None]) -> np.ndarray:
    """yes -> 1, no -> 0, neither -> -1."""
    return np.array([1 if a == "yes" else 0 if a == "no" else -1 for a in answers], dtype=np.int8)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def metric_value(name: str, gold: np.ndarray, pred: np.ndarray, axis: int = -1) -> np.ndarray:
    """One metric over the last axis (vectorised: bootstrap passes a batch of resamples)."""
    said_yes, is_yes = pred == 1, gold == 1
    tp = np.sum(said_yes & is_yes, axis=axis)
    if name == "accuracy":
        return np.mean(pred == gold, axis=axis)
    if name == "yes_ratio":
        return np.mean(said_yes, axis=axis)
    if name == "precision":
        return _ratio(tp, np.sum(said_yes, axis=axis))
    if name == "recall":
        return _ratio(tp, np.sum(is_yes, axis=axis))
    if name == "f1":
        fp, fn = np.sum(said_yes & ~is_yes, axis=axis), np.sum(~said_yes & is_yes, axis=axis)
        return _ratio(2 * tp, 2 * tp + fp + fn)
    raise ValueError(f"unknown metric {name!r}")


def _interval(statistic: Callable, data: tuple[np.ndarray, ...], seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    if len(data[0]) < 2:
        value = float(statistic(*data, axis=-1))
        return value, value
    result = bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(low), float(high)


def metrics(gold: Sequence[str], answers: Sequence[str | None], *, seed: int = 0) -> dict:
    """{"n", "unparsed", metric: {"value", "low", "high"}} for parsed answers against yes/no gold."""
    if len(gold) != len(answers):
        raise ValueError("gold and answers differ in length")
    g, p = codes(gold), codes(answers)
    out: dict = {"n": len(g), "unparsed": int(np.sum(p == -1))}
    for k, name in enumerate(METRICS):

        def statistic(g_, p_, axis=-1, name=name):
            return metric_value(name, g_, p_, axis)

        value = float(metric_value(name, g, p)) if len(g) else 0.0
        low, high = _interval(statistic, (g, p), seed + k) if len(g) else (0.0, 0.0)
        out[name] = {"value": value, "low": low, "high": high}
    return out


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """Exact McNemar test: a two-sided binomial test of the discordant pairs against p = 0.5."""
    from scipy.stats import binomtest

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p}


def paired_compare(
    gold: Sequence[str], answers_a: Sequence[str | None], answers_b: Sequence[str | None], *, seed: int = 0
) -> dict:
    """B minus A for accuracy, F1 and yes-ratio, with paired bootstrap intervals, and McNemar's test."""
    g, a, b = codes(gold), codes(answers_a), codes(answers_b)
    if not len(g) == len(a) == len(b):
        raise ValueError("gold and both answer lists must have the same length")
    out: dict = {"n": len(g)}
    for k, name in enumerate(COMPARED):

        def statistic(g_, a_, b_, axis=-1, name=name):
            return metric_value(name, g_, b_, axis) - metric_value(name, g_, a_, axis)

        value = float(statistic(g, a, b)) if len(g) else 0.0
        low, high = _interval(statistic, (g, a, b), seed + k) if len(g) else (0.0, 0.0)
        out[name] = {"a": float(metric_value(name, g, a)), "b": float(metric_value(name, g, b))}
        out[name].update(difference=value, low=low, high=high)
    out["mcnemar"] = mcnemar_exact(a == g, b == g)
    return out


LABELS = {"accuracy": "accuracy", "f1": "F1", "yes_ratio": "yes-ratio"}


def verdict(name: str, diff: dict) -> str:
    """One sentence, e.g. "B's yes-ratio is 0.12 lower (95% CI 0.08-0.16)"."""
    label, d, low, high = LABELS.get(name, name), diff["difference"], diff["low"], diff["high"]
    if low <= 0 <= high:
        return f"B's {label} is not clearly different from A's ({d:+.2f}, 95% CI {low:+.2f} to {high:+.2f})"
    if d > 0:
        return f"B's {label} is {d:.2f} higher (95% CI {low:.2f}-{high:.2f})"
    return f"B's {label} is {-d:.2f} lower (95% CI {-high:.2f}-{-low:.2f})"
