"""The compiled pass's box removal and yes/no rule agree with the pyarrow (RE2) versions they replace,
on random text built from the characters those rules look at."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from svit_data.recipes.match_kernel import prose_count, yes_no_kind
from svit_data.recipes.matching import prose_words
from svit_data.recipes.tokenize import BYTE_CLASS, text_bytes
from svit_data.recipes.yesno import PREFIX_CHARS, count_yes_no

BOX_PIECES = [
    "[",
    "]",
    "0.1",
    "1e5",
    "1e",
    "-2",
    "+.5",
    ".",
    "7.",
    ",",
    ", ",
    " ",
    "\t",
    "\x0b",
    "\x0c",
    "\x1c",
]
BOX_PIECES += ["<st>", "<ed>", "<", "st>", "dog", "e", "[0.1, 0.2, 0.3, 0.4]", "[1,2,3,4]", "\n"]
YES_PIECES = [" ", "\t", "\x0b", "\x0c", "\x1c", '"', "'", "*", "yes", "YeS", "no", "No", "nO", "y", "es"]
YES_PIECES += [",", ".", "!", ";", ":", "?", "x", "o", "\r", "\n"]


def random_texts(pieces: list[str], count: int, most: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(pieces, rng.integers(0, most + 1))) for _ in range(count)]


def test_box_and_marker_removal_matches_the_regex_replacements():
    texts = random_texts(BOX_PIECES, 20_000, 14, seed=0)
    texts += ["[0.1, 0.2, 0.3, 0.4],[1,2,3,4] , [5, 6, 7, 8]x", "a[1e-3,+2.,.5E+7, 3]b<st>c<ed>d", "[1,2,3,4"]
    values = pa.array(texts, pa.string())
    data, offsets = text_bytes(values)
    ours = [prose_count(data, offsets[i], offsets[i + 1], BYTE_CLASS) for i in range(len(texts))]
    expected = prose_words(values).tolist()
    wrong = [(t, o, e) for t, o, e in zip(texts, ours, expected, strict=True) if o != e]
    assert not wrong, wrong[:5]
    assert expected[-3:] == [1, 4, 1]


def test_yes_no_rule_matches_the_regexes():
    texts = random_texts(YES_PIECES, 20_000, 8, seed=1)
    texts += ["Yes, a dog.", "no", "**No**, never", "No one is here.", "         yes there", "yes there"]
    values = pa.array(texts, pa.string())
    data, offsets = text_bytes(values)
    ours = np.array([yes_no_kind(data, offsets[i], offsets[i + 1], PREFIX_CHARS) for i in range(len(texts))])
    yes, no = count_yes_no(values, np.ones(len(texts), bool), np.arange(len(texts)), len(texts))
    assert np.array_equal(ours == 1, yes == 1) and np.array_equal(ours == 2, no == 1)
    assert ours[-6:].tolist() == [1, 2, 2, 0, 1, 0]  # the 12-character head ends right after "yes"
    assert 1_000 < (ours > 0).sum() < 19_000


def test_rows_with_more_concepts_than_the_first_buffer_holds():
    from svit_data.recipes.matching import FormTable, match_batch
    from svit_data.recipes.vocabulary import parse_vocabulary

    from .matching_oracle import oracle_batch
    from .test_matching_oracle import rows

    vocabulary = parse_vocabulary([f"w{i}" for i in range(1_500)])
    everything = " ".join(f"W{i} w{i}s" for i in range(1_500))  # 1,500 concepts, each twice
    batch = rows([[("user", everything)], [], [("gpt", everything), ("user", "w7 w7 w7")]])
    forms = FormTable(vocabulary)
    new = match_batch(batch, forms, 1_500)
    old = oracle_batch(batch, forms, 1_500)["matrix"]
    assert new.matrix.nnz == 3_000 > 16 * 3 + 1_024  # the kernel's first output buffer grew
    for part in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(new.matrix, part), getattr(old, part)), part
    assert new.matrix[2, 7] == 5
