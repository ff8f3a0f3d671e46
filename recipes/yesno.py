"""Yes/no answers: which answers count as a plain "yes" or "no", and how many each sample has.

The rule (deliberately strict, so that answers which merely contain the word are not counted): an
answer turn (``from == "gpt"``) is a *yes* (*no*) answer when its first word is ``yes`` (``no``), in any
case, optionally after opening quotes or asterisks and spaces, and that word is followed directly (spaces
allowed) by one of ``, . ! ; :`` or by the end of the answer. So ``"Yes, there is a dog."``, ``"No."``,
``"yes"`` and ``"**No**, ..."`` count; ``"No one is there."``, ``"Yes there is"`` (no punctuation),
``"There is no dog."`` and ``"I would say yes, ..."`` do not.

A sample's yes (no) count is the number of its answers that are yes (no) answers; a selection's yes
share is ``sum(yes) / (sum(yes) + sum(no))`` over its samples.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PREFIX_CHARS = 12  # the rule only looks at the start of an answer; slicing first keeps the regex cheap
_LEAD = r"^[\s\"'“‘*]*"
_TAIL = r"[\s*]*([,.!;:]|$)"
YES_PATTERN = rf"(?i){_LEAD}yes{_TAIL}"
NO_PATTERN = rf"(?i){_LEAD}no{_TAIL}"
_YES = re.compile(YES_PATTERN)
_NO = re.compile(NO_PATTERN)


def answer_kind(answer: str) -> str | None:
    """``"yes"``, ``"no"`` or None for one answer (the scalar form of the rule, for tests and docs)."""
    head = answer[:PREFIX_CHARS]
    if _YES.match(head):
        return "yes"
    if _NO.match(head):
        return "no"
    return None


def count_yes_no(
    values: pa.Array, is_answer: np.ndarray, sample_of_turn: np.ndarray, num_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the number of yes and of no answers among the turns ``values`` (vectorized)."""
    head = pc.utf8_slice_codeunits(values, 0, PREFIX_CHARS)
    yes = pc.match_substring_regex(head, YES_PATTERN).to_numpy(zero_copy_only=False) & is_answer
    no = pc.match_substring_regex(head, NO_PATTERN).to_numpy(zero_copy_only=False) & is_answer
    return (
        np.bincount(sample_of_turn[yes], minlength=num_samples).astype(np.int32),
        np.bincount(sample_of_turn[no], minlength=num_samples).astype(np.int32),
    )


def yes_share(yes: int, no: int) -> float:
    """Share of yes among yes/no answers; 0.0 when there are none (reported with the counts)."""
    return yes / (yes + no) if yes + no else 0.0


def ratio_report(yes: int, no: int) -> dict[str, float | int]:
    return {"yes": int(yes), "no": int(no), "yes_share": round(yes_share(yes, no), 4)}
