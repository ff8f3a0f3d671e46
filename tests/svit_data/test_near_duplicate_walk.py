"""The near-duplicate bucket walk (``near_duplicates._confirmed``) against a plain reading of its rule,
in one thread and with the bands split among threads."""

import numpy as np
import pytest

from svit_data.quality import near_duplicates
from svit_data.quality.minhash import BANDS, BINS, THRESHOLD


def rule_oracle(sig: np.ndarray, row: np.ndarray) -> np.ndarray:
    """A document is confirmed when, in some band, the first document with its band value (pool order)
    belongs to another sample and at least THRESHOLD of their signature values are equal."""
    width = BINS // BANDS
    enough = int(np.ceil(THRESHOLD * BINS - 1e-9))
    confirmed = np.zeros(len(sig), bool)
    for band in range(BANDS):
        heads: dict[bytes, int] = {}
        for doc in range(len(sig)):
            head = heads.setdefault(sig[doc, band * width : (band + 1) * width].tobytes(), doc)
            if head != doc and row[head] != row[doc] and (sig[head] == sig[doc]).sum() >= enough:
                confirmed[doc] = True
    return np.flatnonzero(confirmed)


def templated_signatures(seed: int, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Signatures copied from a few templates with 0 to 60 of their values changed (so that bands
    collide often and the estimate both confirms and rejects), some random ones, and samples of one to
    three documents."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (12, BINS), dtype=np.uint8)
    sig = templates[rng.integers(0, len(templates), n)].copy()
    for doc in range(n):
        changed = rng.choice(BINS, int(rng.integers(0, 61)), replace=False)
        sig[doc, changed] = rng.integers(0, 256, len(changed), dtype=np.uint8)
    noise = rng.random(n) < 0.1
    sig[noise] = rng.integers(0, 256, (int(noise.sum()), BINS), dtype=np.uint8)
    row = np.cumsum(rng.random(n) < 0.5)
    return sig, row


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_the_walk_follows_the_rule_in_any_number_of_threads(monkeypatch, seed, threads):
    sig, row = templated_signatures(seed)
    monkeypatch.setattr(near_duplicates, "THREADED_FROM", 0)
    monkeypatch.setattr(near_duplicates, "MAX_THREADS", threads)
    monkeypatch.setattr(near_duplicates.os, "cpu_count", lambda: 8)
    assert len(near_duplicates._band_groups(len(sig))) == threads
    expected = rule_oracle(sig, row)
    assert 0 < len(expected) < len(sig) // 2  # the data both confirms and rejects
    assert np.array_equal(near_duplicates._confirmed(sig, row), expected)


def test_the_bands_are_split_only_for_many_documents_on_several_cores(monkeypatch):
    monkeypatch.setattr(near_duplicates.os, "cpu_count", lambda: 16)
    assert near_duplicates._band_groups(near_duplicates.THREADED_FROM - 1) == [(0, BANDS)]
    groups = near_duplicates._band_groups(near_duplicates.THREADED_FROM)
    assert len(groups) == near_duplicates.MAX_THREADS
    assert groups[0][0] == 0 and groups[-1][1] == BANDS
    assert all(a[1] == b[0] for a, b in zip(groups[:-1], groups[1:], strict=True))
    monkeypatch.setattr(near_duplicates.os, "cpu_count", lambda: 1)
    assert near_duplicates._band_groups(10**7) == [(0, BANDS)]


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 16, 17, 40])
def test_the_walk_follows_the_rule_around_its_lookahead(n):
    """The walk asks for memory LOOKAHEAD and 2 * LOOKAHEAD documents ahead: pools shorter than, equal
    to and just over those distances give the rule's result too."""
    assert near_duplicates.LOOKAHEAD == 8  # the sizes above straddle 8 and 16
    sig, row = templated_signatures(3, n=n)
    sig[: n // 2] = sig[0]  # a head with several copies in other samples
    row = np.arange(n)
    assert np.array_equal(near_duplicates._confirmed(sig, row), rule_oracle(sig, row))
    if n > 1:
        assert len(rule_oracle(sig, row)) >= n // 2 - 1


def test_a_prefetch_hint_changes_no_result():
    numba = pytest.importorskip("numba")
    from svit_data.quality.prefetch import prefetch

    @numba.njit
    def total(values, order):
        sum_ = 0
        for k in range(len(order)):
            if k + 4 < len(order):
                prefetch(values, order[k + 4])
            sum_ += values[order[k]]
        return sum_

    values = np.arange(1000, dtype=np.int64) * 3
    order = np.random.default_rng(0).permutation(1000)
    assert total(values, order) == values.sum()

    @numba.njit
    def on_a_matrix(values):
        prefetch(values, 0)

    with pytest.raises(numba.core.errors.TypingError):  # one-dimensional arrays only
        on_a_matrix(np.zeros((2, 2)))


def test_signatures_of_texts_with_edge_whitespace_do_not_depend_on_the_array_around_them():
    """Texts with whitespace at their ends take pyarrow's split (empty words at the edges), whose input
    once came from ``utf8_lower`` and then, now and again, lost the last text's trailing empty word."""
    import random

    import pyarrow as pa

    own = "A wide green field stretches under a pale sky with a red barn " * 3
    base = [own, own.upper(), "x " * 30, "Hello World Again "]
    expected = {t: near_duplicates.signatures(pa.array([t])).tobytes() for t in base}
    # one text alone: lowercase then empty edge words, the same signature whatever the case
    assert expected[own] == expected[own.upper()]
    shuffle = random.Random(0)
    for attempt in range(3000):
        texts = pa.array(shuffle.sample(base, len(base)), pa.string())
        if attempt % 2:
            pad = pa.array(["pad"] * shuffle.randint(0, 5), pa.string())
            texts = pa.concat_arrays([pad, texts]).slice(shuffle.randint(0, 3))
        got = near_duplicates.signatures(texts)
        want = [expected.get(t) for t in texts.to_pylist()]
        assert [g.tobytes() if w else None for g, w in zip(got, want, strict=True)] == want, attempt
