"""The compiled word hashes and signatures against a plain reading of the rule in
``near_duplicates``'s docstring: ``zlib.crc32`` of each lowercased whitespace word, then MinHash in Python."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from svit_data.quality import asciiwords
from svit_data.quality.minhash import _EMPTY, _GOLD, _M1, _M2, _P1, _P2, BINS
from svit_data.quality.near_duplicates import signatures
from svit_data.quality.textscan import split_whitespace

_MASK = 2**64 - 1
# str.split()'s whitespace among ASCII bytes
_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_WORD_BYTES = [chr(c) for c in range(128) if chr(c) not in _SPACE]


def _mix(x: int) -> int:
    x ^= x >> 30
    x = (x * int(_M1)) & _MASK
    x ^= x >> 27
    x = (x * int(_M2)) & _MASK
    return x ^ (x >> 31)


def plain_signature(text: str) -> bytes:
    """The rule read plainly: pyarrow's whitespace words (``str.split()``'s, plus an empty word at an
    edge with whitespace), their CRC-32s once lowercased, one-permutation MinHash, rotation
    densification."""
    words = pc.utf8_split_whitespace(pa.array([text, "\u00e9"])).to_pylist()[0]  # the Unicode kernel
    hashes = [zlib.crc32(word.lower().encode()) for word in words]
    bins: list[int | None] = [None] * BINS
    for k in range(len(hashes) - 2):
        shingle = _mix((hashes[k] * int(_P1) + hashes[k + 1] * int(_P2) + hashes[k + 2]) & _MASK)
        b, value = shingle >> 57, shingle & (2**57 - 1)
        bins[b] = value if bins[b] is None else min(bins[b], value)
    out = []
    for b in range(BINS):
        found = [(d, bins[(b + d) % BINS]) for d in range(BINS) if bins[(b + d) % BINS] is not None]
        # no shingle at all: every bin borrows the empty value from 3 * BINS - 1 - b bins away
        distance, source = found[0] if found else (3 * BINS - 1 - b, int(_EMPTY))
        out.append(_mix((source + distance * int(_GOLD)) & _MASK) >> 56)
    return bytes(out)


def compiled_word_hashes(data: bytes, start: int, end: int, cache: np.ndarray | None = None) -> list[int]:
    array = np.frombuffer(data, np.uint8)
    bits = np.zeros((end - start) // 64 + 2, np.uint64)
    out = np.zeros((end - start + 1) // 2 + 1, np.uint64)
    cache = asciiwords.word_cache() if cache is None else cache
    count = asciiwords.word_hashes(array, start, end, bits, out, cache, asciiwords.SLICES)
    return out[:count].tolist()


def random_text(rng: random.Random, words: int, longest: int = 20) -> str:
    """ASCII words of 1 to ``longest`` bytes (any byte but whitespace, NUL included) between runs of
    whitespace, sometimes at the text's edges."""
    parts = []
    for _ in range(words):
        length = rng.choice([1, 2, 3, 7, 8, 9, 15, 16, 17, rng.randint(1, longest)])
        parts.append("".join(rng.choice(_WORD_BYTES) for _ in range(length)))
        parts.append("".join(rng.choice(_SPACE) for _ in range(rng.choice([1, 1, 1, 2, 5]))))
    text = "".join(parts)
    return text if rng.random() < 0.5 else text.strip()


HOSTILE = [
    "",
    "a",
    "   \t\n",
    "one two",
    "x y z",
    "Aa bB cC",
    "abcdefgh abcdefghi abcdefg ABCDEFGH ABCDEFGHI abcdefghijklmnop abcdefghijklmnopq",
    "\x00 \x00\x00 \x00\x00\x00 \x00 \x00\x00",  # NUL words of different lengths: different words
    "the the the the the the the the the the the the",
    "tab\tseparated\twords\x1cand\x1dunit\x1eseparators\x1fhere\x0bvt\x0cff\rcr\nlf",
    "w" * 63 + " " + "v" * 64 + " " + "u" * 65 + " " + "t" * 200 + " end",
    " " * 63 + "word" + " " * 70 + "another " + "z" * 129,
    "!@#$%^&*() [0.12, 0.34, 0.56, 0.78] <st>Cat<ed> ZZZ@@@ {}|~` ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_word_hashes_are_zlib_crc32_of_the_lowercased_words(text):
    data = text.encode()
    assert compiled_word_hashes(data, 0, len(data)) == [zlib.crc32(w.lower().encode()) for w in text.split()]


def test_word_hashes_of_random_texts_inside_other_bytes():
    """Texts at any offset, between non-ASCII and whitespace-free bytes (which the 8-byte reads see
    past both ends) and at the very end of the buffer (where a read is cut short)."""
    rng = random.Random(7)
    cache = asciiwords.word_cache()  # shared across texts, as in a batch
    for trial in range(400):
        text = random_text(rng, rng.randint(0, 40), longest=rng.choice([8, 20, 150]))
        before = bytes(rng.choice([0xC3, 0xFF, 0x80, 0x41, 0x20, 0x00]) for _ in range(rng.randint(0, 9)))
        after = b"" if trial % 3 == 0 else bytes(rng.choice([0xE2, 0xFF, 0x5A, 0x61]) for _ in range(9))
        data = before + text.encode() + after
        got = compiled_word_hashes(data, len(before), len(before) + len(text), cache)
        assert got == [zlib.crc32(w.lower().encode()) for w in text.split()], (trial, text)


def test_the_word_cache_survives_collisions():
    """More distinct words than cache slots, each seen several times: evicted words are computed again."""
    rng = random.Random(3)
    vocabulary = [
        "".join(rng.choice("abcdefghXYZ0123") for _ in range(rng.randint(1, 8))) for _ in range(9000)
    ]
    text = " ".join(rng.choice(vocabulary) for _ in range(60_000))
    data = text.encode()
    assert compiled_word_hashes(data, 0, len(data)) == [zlib.crc32(w.lower().encode()) for w in text.split()]


def test_signatures_follow_the_plain_rule_on_hostile_texts():
    rng = random.Random(11)
    texts = [t for t in HOSTILE if len(t.split()) >= 3]
    texts += [random_text(rng, rng.randint(3, 120), longest=rng.choice([8, 30])) for _ in range(150)]
    texts += [
        "word " * 3,
        "Der Bär und die Maus im Café naïve ÉCOLE über alles " * 3,
        "façade Façade FAÇADE x y",
    ]
    texts += [" ".join(rng.choice(["a", "B", "ab", "abcdefgh", "ABCDEFGHI"]) for _ in range(300))]
    got = signatures(pa.array(texts))
    for text, signature in zip(texts, got, strict=True):
        assert signature.tobytes() == plain_signature(text), text


def test_a_text_with_no_shingle_gets_the_empty_signature():
    assert signatures(pa.array(["just two", "three words here"]))[0].tobytes() == plain_signature("just two")


def test_pyarrow_words_come_from_the_unicode_kernel_whatever_the_array_holds():
    """pyarrow 26 splits an all-ASCII array by its ASCII kernel at times (no split at 0x1c-0x1f, one empty
    word per edge run): split_whitespace never does, so these texts sign the same alone or in company."""
    texts = ["a b c d \x1f", "w x y z  ", "\x1c p q r", "s\x1dt u v w"]
    expected = [pc.utf8_split_whitespace(pa.array([t, "\u00e9"])).to_pylist()[0] for t in texts]
    assert expected[0][-2:] == ["", ""] and expected[1][-2:] == ["", ""] and "s" in expected[3]
    for company in ([], ["plain ascii words here"], ["\u00e9t\u00e9 caf\u00e9 na\u00efve"]):
        for text, words in zip(texts, expected, strict=True):
            array = pa.array([*company, text])
            assert split_whitespace(array).to_pylist()[-1] == words
            assert signatures(array)[-1].tobytes() == plain_signature(text)
