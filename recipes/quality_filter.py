"""Which train samples a recipe may choose: not flagged (unless ``include_flagged``) and matching ``where``.

``where`` conditions are ``SIGNAL OP NUMBER`` with OP one of ``>= <= > < == !=`` and SIGNAL one of
``answer_words``, ``qa_pairs``, ``boxes`` (pool columns, :mod:`svit_data.quality.signals`) or
``concepts`` (distinct vocabulary concepts the sample mentions: its row in the recipe matrix). Several
conditions must all hold. Every excluded sample is counted, per reason code and per condition.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.errors import SvitError
from svit_data.pool import Pool
from svit_data.quality import EXCLUDING
from svit_data.recipes.matching import MatchedPool
from svit_data.schema import SIGNAL_COLUMNS

OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
WHERE_SIGNALS = (*SIGNAL_COLUMNS, "concepts")
_CONDITION = re.compile(r"\s*([a-z_]+)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*")


@dataclass(frozen=True)
class Condition:
    signal: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.signal}{self.op}{self.value:g}"


def parse_where(text: str) -> Condition:
    """``"answer_words>=5"`` -> Condition; a user error names the accepted form."""
    match = _CONDITION.fullmatch(text)
    if match is None or match.group(1) not in WHERE_SIGNALS:
        raise SvitError(
            f"--where {text!r} is not SIGNAL OP NUMBER (SIGNAL one of {', '.join(WHERE_SIGNALS)}; "
            f"OP one of {' '.join(OPERATORS)})"
        )
    return Condition(match.group(1), match.group(2), float(match.group(3)))


@dataclass
class Eligibility:
    """Per pool row: may a recipe choose it, and why not."""

    keep: np.ndarray  # bool, pool order
    excluded_by_reason: dict[str, int] = field(default_factory=dict)
    excluded_by_where: dict[str, int] = field(default_factory=dict)

    def report(self, rows: np.ndarray) -> dict[str, Any]:
        """Counts among the train rows ``rows`` (what the manifest and card show)."""
        return {
            "excluded": int((~self.keep[rows]).sum()),
            "excluded_by_reason": self.excluded_by_reason,
            "excluded_by_where": self.excluded_by_where,
        }


def eligibility(
    pool: Pool,
    matched: MatchedPool,
    train: np.ndarray,
    *,
    include_flagged: bool = False,
    where: tuple[Condition, ...] = (),
) -> Eligibility:
    """Which pool rows a recipe may select; counts are over the train rows (bool mask ``train``)."""
    keep = np.ones(matched.num_rows, bool)
    by_reason: Counter[str] = Counter()
    if not include_flagged:
        first = 0
        excluding = pa.array(sorted(EXCLUDING), pa.string())
        for batch in pool.iter_batches(columns=["flags"], pool_flags=False):  # the pool-wide ones below
            flags = batch.column(0)
            codes = pc.list_flatten(flags)
            rows = first + pc.list_parent_indices(flags).to_numpy(zero_copy_only=False).astype(np.int64)
            hit = pc.is_in(codes, value_set=excluding).to_numpy(zero_copy_only=False)
            keep[rows[hit]] = False
            counted = codes.filter(pa.array(hit & train[rows]))
            counts = pc.value_counts(counted)
            by_reason.update(
                dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
            )
            first += batch.num_rows
        for code, rows in pool.pool_flags():  # what Pool.add_pool_flags adds to each row's list
            if code in EXCLUDING and len(rows):
                keep[rows] = False
                if train[rows].any():
                    by_reason[code] += int(train[rows].sum())
    by_where: dict[str, int] = {}
    if where:
        columns = [c.signal for c in where if c.signal != "concepts"]
        table = pool.table(sorted(set(columns))) if columns else None
        for condition in where:
            if condition.signal == "concepts":
                values = np.diff(matched.matrix.indptr)
            else:
                values = table[condition.signal].to_numpy(zero_copy_only=False)  # type: ignore[index]
            holds = OPERATORS[condition.op](values, condition.value)
            by_where[str(condition)] = int((train & keep & ~holds).sum())
            keep &= holds
    return Eligibility(keep, dict(sorted(by_reason.items())), by_where)


QUANTILES = (0.1, 0.5, 0.9)


def _summary(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    q = np.quantile(values, QUANTILES)
    return {
        "mean": round(float(values.mean()), 2),
        **{f"p{round(p * 100)}": round(float(v), 2) for p, v in zip(QUANTILES, q, strict=True)},
    }


def signal_distributions(
    pool: Pool, matched: MatchedPool, selected: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and p10/p50/p90 of every signal over the selected pool rows and over the whole pool."""
    table = pool.table(list(SIGNAL_COLUMNS))
    values = {c: table[c].to_numpy(zero_copy_only=False) for c in SIGNAL_COLUMNS}
    values["concepts"] = np.diff(matched.matrix.indptr)
    return {s: {"selected": _summary(v[selected]), "pool": _summary(v)} for s, v in values.items()}
