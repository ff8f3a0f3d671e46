"""The compiled passes of the duplicate check against plain Python: grouping of QA pairs per record and
equality of normalized texts."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from svit_data.quality.samples import normalize
from svit_data.quality.textpairs import repeated_pairs, same_normalized


def test_repeated_pairs_heads_each_group_with_its_first_pair_of_the_record():
    rng = random.Random(2)
    record = np.sort(np.array([rng.randrange(300) for _ in range(5000)]))
    questions = np.array([rng.randrange(4) for _ in range(5000)], np.uint64) * np.uint64(2**40)
    answers = np.array([rng.randrange(3) for _ in range(5000)], np.uint64)
    head = repeated_pairs(record, questions, answers)
    firsts: dict[tuple, int] = {}
    wanted = []
    for i, key in enumerate(zip(record.tolist(), questions.tolist(), answers.tolist(), strict=True)):
        wanted.append(firsts[key] if key in firsts else -1)
        firsts.setdefault(key, i)
    assert head.tolist() == wanted and (head >= 0).sum() > 1000 and (head < 0).sum() > 1000
    assert repeated_pairs(np.zeros(0), np.zeros(0), np.zeros(0)).tolist() == []
    with pytest.raises(ValueError, match="non-decreasing"):
        repeated_pairs(np.array([1, 0]), np.zeros(2), np.zeros(2))


def test_same_normalized_is_equality_of_normalize_on_ascii_text():
    rng = random.Random(4)
    words = ["a", "A", "ab", "aB", " ", "  ", "\t", "\n", "\x0b", "\x1c", "b", "", "?"]
    texts = ["", " ", "a", "a ", "ab", "a b"]
    texts += ["".join(rng.choice(words) for _ in range(rng.randrange(0, 7))) for _ in range(3000)]
    left = np.array([rng.randrange(len(texts)) for _ in range(20000)])
    right = np.array([rng.randrange(len(texts)) for _ in range(20000)])
    got = same_normalized(pa.array(texts), left, right)
    wanted = [normalize(texts[a]) == normalize(texts[b]) for a, b in zip(left, right, strict=True)]
    assert got.tolist() == wanted and 1000 < sum(wanted) < 19000
