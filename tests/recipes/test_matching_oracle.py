"""The byte-level matcher gives exactly the old matcher's matrix, yes/no counts and answer words
(tests/recipes/matching_oracle.py) on the bundled sample, a scale-pool slice and hostile text."""

from __future__ import annotations

import importlib.util

import numpy as np
import pyarrow as pa
import pytest

from svit_data.recipes.match_kernel import slot_of
from svit_data.recipes.matching import BATCH_ROWS, COLUMNS, FormTable, match_batch
from svit_data.recipes.tokenize import WordIndex, table_slot, word_key
from svit_data.recipes.vocabulary import load_vocabulary, parse_vocabulary
from svit_data.schema import FEATURES

from .conftest import REPO
from .matching_oracle import oracle_batch


def assert_same(batch: pa.RecordBatch, vocabulary) -> int:
    forms = FormTable(vocabulary)
    new = match_batch(batch, forms, len(vocabulary.concepts))
    old = oracle_batch(batch, forms, len(vocabulary.concepts))
    assert new.matrix.shape == old["matrix"].shape
    for part in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(new.matrix, part), getattr(old["matrix"], part)), part
    for name in ("yes", "no", "answer_words"):
        assert np.array_equal(getattr(new, name), old[name]), name
    return old["matrix"].nnz


def test_same_matrix_on_the_bundled_sample(pool):
    entries = sum(
        assert_same(b, load_vocabulary()) for b in pool.iter_batches(columns=COLUMNS, batch_size=BATCH_ROWS)
    )
    assert entries > pool.num_rows


def test_same_matrix_on_a_scale_pool_slice(tmp_path, svit_cache):
    spec = importlib.util.spec_from_file_location(
        "make_scale_pool", REPO / "benchmarks" / "make_scale_pool.py"
    )
    scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale)
    scale.write_pool(tmp_path / "scale", 150, seed=3)
    from svit_data.pool import open_pool

    pool = open_pool(str(tmp_path / "scale"), progress=False)
    assert pool.num_rows > 3_000
    for batch in pool.iter_batches(columns=COLUMNS, batch_size=1_000):  # several batches, odd offsets
        assert assert_same(batch, load_vocabulary()) > 0


HOSTILE = parse_vocabulary(
    {
        "concepts": [
            {"concept": "dog", "synonyms": ["puppy"]},
            {"concept": "café", "synonyms": ["naïve art"]},
            {"concept": "refrigerator door handle"},  # long words and a 3-gram
            {"concept": "tv", "synonyms": ["television set"]},
            {"concept": "abcdefg"},  # exactly the 7-byte key prefix
            {"concept": "abcdefgh"},
            {"concept": "x2"},
        ]
    }
)


def rows(samples: list[list[tuple[str, str | None]]]) -> pa.RecordBatch:
    schema = pa.schema([FEATURES.arrow_schema.field(n) for n in COLUMNS])
    return pa.RecordBatch.from_pylist(
        [
            {
                "id": f"conversation/{i}/0",
                "image_id": i,
                "task": "conversation",
                "conversations": [{"from": f, "value": v} for f, v in turns],
            }
            for i, turns in enumerate(samples)
        ],
        schema=schema,
    )


def test_same_matrix_on_hostile_text():
    every_ascii = "".join(chr(c) for c in range(1, 128))
    samples = [
        [("user", f"dog{every_ascii}dog"), ("gpt", f"Yes.{every_ascii} puppy\x1cpuppy\x1fdog\x0bdog")],
        [("user", "A Café, a CAFÉ and a café-bar; naïve   art!"), ("gpt", "No, it is NAÏVE ART dog.")],
        [("user", "The Refrigerator-door HANDLE"), ("gpt", "refrigerator door  handles, Refrigerators.")],
        [("user", "dog"), ("gpt", "puppy"), ("user", "Television"), ("gpt", "set TV x2 X2 x22 2x")],
        [("user", "abcdefg abcdefgh abcdefgi abcdefghs ABCDEFGHS abcdefgs"), ("gpt", None)],
        [("user", ""), ("gpt", "   "), ("user", "\u00a0dog\u2003dog"), ("gpt", "dogs\u00a0and\u3000puppies")],
        [
            ("user", "<st>dog<ed> [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6]"),
            ("gpt", "The <st>dog<ed> [0.1, 0.2, 0.3, 0.4] sits."),
        ],
        [("user", "İstanbul ǅ dog ß"), ("gpt", "Yes, a dog 😀dog😀 ✓puppy")],
        [("gpt", "a" * 300 + " dog " + "dog" * 100)],
        [
            ("gpt", "x\x1c<st>dog<ed>[0.1,0.2,0.3,0.4]\x0bdog [1, 2] <st> <ed>< st>"),
            ("gpt", "[0.1, 0.2, 0.3, 0.4]"),
        ],
    ]
    assert assert_same(rows(samples), HOSTILE) > 10
    assert assert_same(rows(samples[:5] + samples[-1:]), HOSTILE) > 5  # the all-ASCII path alone


def test_same_matrix_across_eight_byte_steps():
    """Words, punctuation runs, boxes and markers at every offset around 8- and 64-byte steps, and cut
    at a text's end (the last text also ends the batch's buffer)."""
    pieces = [
        "dog",
        "puppies",  # 7 bytes
        "DOGhouse",  # 8
        "Televisio",  # 9
        "refrigeratorsdog",  # 16
        "Refrigeratorsdogs",  # 17
        " Refrigerator door handle ",
        " zefrigerator door handle ",  # a listed long word but for its first byte
        " abcdefghs ",
        "a" * 63,
        "dog" * 22,
        ",.;!?-",
        "...",
        " ",
        "  \t\x1c",
        "<st>",
        "<ed>",
        "<st>dog<ed>",
        "[0.1, 0.2, 0.3, 0.4]",
        "[1,2,3,4],[5,6,7,8]",
        "[",
        "yes",
        "No,",
    ]
    rng = np.random.default_rng(8)
    samples = []
    for pad in range(17):
        for _ in range(3):
            text = "x" * pad + "".join(rng.choice(pieces, rng.integers(1, 12)))
            samples.append([("user", text), ("gpt", text[: rng.integers(0, len(text) + 1)])])
    samples.append([("gpt", "Yes " + "dog " * 5 + "Refrigerators")])  # a word ends the buffer
    assert assert_same(rows(samples), HOSTILE) > 15  # pieces are glued: most words are unknown


def test_word_index_finds_exactly_the_listed_words():
    words = pa.array(sorted(["dog", "abcdefgh", "abcdefgi", "café", "a"]), pa.string())
    index = WordIndex(words)
    scan = index.scan(pa.array(["Dog ABCDEFGH abcdefgi abcdefg dogs", "x", "a café dog"]))
    listed = words.to_pylist()
    assert [listed[i] if i >= 0 else None for i in scan.ids] == [
        "dog",
        "abcdefgh",
        "abcdefgi",
        None,
        "a",
        "café",
        "dog",
    ]
    assert scan.text.tolist() == [0, 0, 0, 0, 2, 2, 2]
    assert scan.spaces[:2].tolist() == [5, 1] and scan.ascii.tolist() == [True, True, False]


def test_word_key_packs_the_last_eight_lowercased_bytes():
    def key(word: bytes) -> int:
        return word_key(word)

    assert key(b"") == 0 and key(b"aB") == key(b"ab") == 0x6162
    assert key(b"x" + b"abcdefgh") == key(b"abcdefgh") == 0x6162636465666768
    assert key(b"\x80" * 8) == 0xA0A0A0A0A0A0A0A0 - 2**64  # the top bit set: a negative int64, still exact


@pytest.mark.parametrize("workers", [1, 2])
def test_matrix_does_not_depend_on_threads(pool, monkeypatch, workers):
    from svit_data.recipes import matching

    monkeypatch.setattr(matching.os, "cpu_count", lambda: workers)
    matched = matching.compute_matrix(pool, load_vocabulary(), progress=False)
    forms = FormTable(load_vocabulary())
    batch = next(pool.iter_batches(columns=COLUMNS, batch_size=BATCH_ROWS))
    old = oracle_batch(batch, forms, len(load_vocabulary().concepts))["matrix"]
    assert (matched.matrix[: batch.num_rows] != old).nnz == 0


def test_table_slots_in_python_are_the_kernels_slots():
    rng = np.random.default_rng(0)
    keys = [*rng.integers(-(2**63), 2**63 - 1, 2_000, dtype=np.int64).tolist(), 0, -1, 2**63 - 1, -(2**63)]
    for key in keys:
        for length, mask in ((1, 15), (9, 4095), (300, (1 << 20) - 1)):
            assert table_slot(key, length, mask) == slot_of(np.int64(key), np.int64(length), np.int64(mask))
