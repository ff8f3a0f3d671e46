"""The turn scan (eight bytes at a time) against a plain reading of each of its rules, on hostile texts:
non-ASCII characters, every ASCII whitespace and control byte, markers and hints cut by text ends and
by the scan's 8-byte steps, hints split by case, and the two characters ``str.lower`` turns into ASCII."""

from __future__ import annotations

import random
import re

import numpy as np
import pyarrow as pa
import pytest

from svit_data.quality.samples import normalize
from svit_data.quality.text import ERROR_HINTS, SOURCE_HINTS, text_checks_may_find
from svit_data.quality.textscan import _hint_table, normalized_hashes, scan

HINTS = ERROR_HINTS + SOURCE_HINTS
ASCII_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
PIECES = [
    *HINTS,
    "SoRrY",
    "LIST",
    "lisT",
    "As An Ai",
    "as  an ai",
    "CAN'T",
    "can`t",
    "Please Provide",
    "descr\u0130",
    "\u0130",
    "\u212a",
    "\u017forry",
    "K",
    "<st>",
    "<ed>",
    "<st",
    "ed>",
    "<ST>",
    "[",
    "]",
    "\x7f",
    "\x00",
    "\u00e9",
    "\u4e2d",
    "\u00a0",
    "\u2003",
    "word",
    "Alpha",
    "lis",
    "t",
    "giv",
    "en",
    *ASCII_SPACE,
    "  ",
    "x" * 7,
    "y" * 9,
]


def hostile_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 12))) for _ in range(count)]


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def plain_hinted(text: str) -> bool:
    """The scan's hint rule read plainly: a hint ignoring ASCII case, or a character str.lower makes ASCII."""
    return any(hint in ascii_lower(text) for hint in HINTS) or "\u0130" in text or "\u212a" in text


def plain_words(text: str) -> int:
    return len([word for word in re.split(f"[{re.escape(ASCII_SPACE)}]", text) if word])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scan_agrees_with_the_plain_rules(seed):
    texts = hostile_texts(3000, seed)
    array = pa.array(texts)
    for values in (array, array.slice(17, 2000)):  # a slice reads its offsets from inside the buffer
        got = scan(values)
        picked = texts[values.offset : values.offset + len(values)]
        assert got.ascii.tolist() == [t.isascii() for t in picked]
        assert got.printable.tolist() == [any("!" <= c <= "\x7f" for c in t) for t in picked]
        assert got.brackets.tolist() == [t.count("[") for t in picked]
        assert got.starts.tolist() == [t.count("<st>") for t in picked]
        assert got.ends.tolist() == [t.count("<ed>") for t in picked]
        assert got.words.tolist() == [plain_words(t) for t in picked]
        assert got.hinted.tolist() == [plain_hinted(t) for t in picked]


def test_hints_are_a_superset_of_the_text_checks_gate():
    """Where ``text_checks_may_find`` sees a hint (on the Python-lowercased pair), the scan marks the
    question or the answer: the batch path may skip only pairs that neither marks."""
    texts = hostile_texts(4000, 7)
    hinted = scan(pa.array(texts)).hinted
    for q in range(0, len(texts) - 1, 2):
        question, answer = texts[q], texts[q + 1]
        if answer.strip() and text_checks_may_find(question, answer):
            assert hinted[q] or hinted[q + 1], (question, answer)


def test_hints_at_text_ends_and_across_neighbours():
    texts = [
        "lis",
        "t",
        "sorr",
        "y",
        "list",
        "xlist",
        "listx",
        "SORRY",
        "a" * 13 + "Given",
        "given" + "b" * 11,
    ]
    texts += ["descri"[:k] for k in range(1, 6)] + ["x" * k + "caption" for k in range(16)]
    texts += ["\u0130" + "x" * k for k in range(9)] + ["x" * k + "\u212a" for k in range(9)]
    assert scan(pa.array(texts)).hinted.tolist() == [plain_hinted(t) for t in texts]
    # the last text ends the buffer: its last bytes cannot be read eight at a time
    for k in range(1, 12):
        tail = pa.array(["q" * k + "list"[: min(4, k)]])
        assert scan(tail).hinted.tolist() == [plain_hinted(tail[0].as_py())]


def test_markers_at_text_ends():
    texts = ["<st>", "<st", "st>", "a<ed>", "<ed", "<st>x<ed>", "x" * 5 + "<st>", "x" * 6 + "<ed>" + "<st>"]
    got = scan(pa.array(texts))
    assert got.starts.tolist() == [t.count("<st>") for t in texts]
    assert got.ends.tolist() == [t.count("<ed>") for t in texts]


def test_equal_normalized_texts_hash_equal_and_others_differ():
    rng = random.Random(5)
    words = ["a", "B", "cat", "Cat", "dog.", "x" * 8, "Y" * 9, "z" * 16]
    texts = []
    for _ in range(3000):
        chosen = [rng.choice(words) for _ in range(rng.randrange(0, 6))]
        spaces = [rng.choice([" ", " ", "  ", "\t", "\n", " \n "]) for _ in chosen]
        lead, trail = rng.choice(["", " ", "\n"]), rng.choice(["", " ", "\t"])
        texts.append(
            lead + "".join(w + s for w, s in zip(chosen, spaces, strict=True)).rstrip(" \t\n") + trail
        )
    hashes = normalized_hashes(pa.array(texts))
    again = normalized_hashes(pa.array([normalize(t) for t in texts]))
    assert (hashes == again).all()
    groups: dict[str, set[int]] = {}
    for text, value in zip(texts, hashes.tolist(), strict=True):
        groups.setdefault(normalize(text), set()).add(value)
    assert all(len(values) == 1 for values in groups.values())
    assert len({next(iter(values)) for values in groups.values()}) == len(groups)  # no collision here


def test_hash_of_non_ascii_normalized_text_is_its_own():
    texts = ["\u00e9t\u00e9 chaud", "k\u00e9", "\u4e2d \u6587", "\u00e9t\u00e9  chaud"]
    normal = [normalize(t) for t in texts]
    assert (
        normalized_hashes(pa.array(normal)) == normalized_hashes(pa.array([normalize(t) for t in normal]))
    ).all()
    assert normalized_hashes(pa.array(normal[:1]))[0] == normalized_hashes(pa.array(normal[3:]))[0]


def test_hint_table_rejects_what_the_scan_cannot_look_up():
    with pytest.raises(ValueError, match="four characters"):
        _hint_table(("abc", "sorry"))
    with pytest.raises(ValueError, match="lowercase"):
        _hint_table(("Sorry",))
    with pytest.raises(ValueError, match="at most one"):
        _hint_table(("list", "word"))
    table, *_ = _hint_table(HINTS)
    assert np.count_nonzero(table) == len({h[a : a + 4] for h in HINTS for a in (0, 1) if len(h) >= a + 4})
