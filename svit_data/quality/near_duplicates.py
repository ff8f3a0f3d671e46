"""Templated text across the pool: near-duplicate long answers by MinHash LSH over word 3-grams.

The rule, exactly: every answer turn of at least :data:`MIN_WORDS` whitespace words is a document.
Its text is lowercased and split at whitespace (punctuation stays part of a word), and its shingles
are the word 3-grams. A signature of :data:`BINS` values is built by one-permutation
hashing (each shingle is hashed once with a fixed 64-bit mixer; its top 7 bits choose the bin, the
bin keeps the minimum of the remaining bits) with rotation densification for empty bins (an empty
bin takes the next non-empty bin to its right, circularly, offset by the distance), and each value
is reduced to 8 bits. The :data:`BINS` bytes form :data:`BANDS` bands of 8 bytes. Two documents are
candidates when they agree on a whole band; a candidate is confirmed when the share of equal
signature values (the Jaccard estimate) is at least :data:`THRESHOLD`. Within each band bucket,
every document is compared with the bucket's first document in pool order (answer order within a
sample). A confirmed document's sample is flagged ``near_duplicate``; the first one stays clean, so
one copy of a template remains. Answers of the same sample are never compared with each other.

With 16 bands of 8 values, a pair at Jaccard 0.8 becomes a candidate with probability
1 - (1 - 0.8^8)^16 = 0.95, a pair at 0.5 with 0.06 (and is then rejected by the estimate). The short
QA on two images ("Is there a dog?" "Yes.") is below :data:`MIN_WORDS`, never a document.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.tasks import GPT

MIN_WORDS = 25
BINS = 128
BANDS = 16  # 8 one-byte values per band: a band is one uint64
THRESHOLD = 0.8
_EMPTY = np.uint64(2**64 - 1)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_P1, _P2, _GOLD = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fixed 64-bit mixer (deterministic across runs and machines)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        return x ^ (x >> np.uint64(31))


def signatures(texts: pa.Array) -> np.ndarray:
    """One ``BINS``-byte signature per text (rows of uint8); texts need at least 3 words."""
    n = len(texts)
    words = pc.utf8_split_whitespace(pc.utf8_lower(texts))
    offsets = words.offsets.to_numpy().astype(np.int64)
    encoded = pc.dictionary_encode(words.flatten())
    vocabulary = encoded.dictionary.to_pylist()
    word_hash = np.array([zlib.crc32(w.encode()) for w in vocabulary], np.uint64)
    hashes = word_hash[encoded.indices.to_numpy()] if len(vocabulary) else np.zeros(0, np.uint64)
    doc = np.repeat(np.arange(n), np.diff(offsets))
    starts = np.flatnonzero(np.arange(len(hashes)) + 2 < offsets[doc + 1])
    with np.errstate(over="ignore"):
        shingle = _mix(hashes[starts] * _P1 + hashes[starts + 1] * _P2 + hashes[starts + 2])
    bins = (shingle >> np.uint64(57)).astype(np.int64)
    flat = np.full(n * BINS, _EMPTY, np.uint64)
    np.minimum.at(flat, doc[starts] * BINS + bins, shingle & np.uint64(2**57 - 1))
    # rotation densification: an empty bin borrows the next non-empty bin to its right, circularly.
    # Done on the flat (n * BINS) array with one 1-D running minimum (fast) instead of per row.
    position = np.arange(n * BINS, dtype=np.int64)
    start = position - position % BINS  # each bin's document start
    following = np.minimum.accumulate(np.where(flat != _EMPTY, position, n * BINS)[::-1])[::-1]
    first = following[::BINS]  # each document's first non-empty bin (or a later document's)
    first_of = np.repeat(first, BINS)
    wrapped = following >= start + BINS
    following = np.where(wrapped, first_of + BINS, following) - start  # 0 .. 2 * BINS - 1
    empty_doc = np.repeat(first >= np.arange(1, n + 1) * BINS, BINS)  # no shingle at all
    following = np.where(empty_doc, 3 * BINS - 1, following)
    distance = (following - position % BINS).astype(np.uint64)
    source = flat[start + following % BINS]
    with np.errstate(over="ignore"):
        dense = _mix(source + distance * _GOLD)
    return (dense >> np.uint64(56)).astype(np.uint8).reshape(n, BINS)


def answer_documents(conversations: pa.ListArray, first_row: int) -> tuple[pa.Array, np.ndarray]:
    """The long answer turns of a batch of samples and the pool row of each."""
    turns = conversations.flatten()
    offsets = conversations.offsets.to_numpy()
    row = np.repeat(np.arange(len(conversations)) + first_row, np.diff(offsets))
    answer = pc.equal(turns.field("from"), GPT)
    values = turns.field("value").filter(answer)  # only answers are split into words
    long_answer = pc.greater_equal(pc.list_value_length(pc.utf8_split_whitespace(values)), MIN_WORDS)
    return values.filter(long_answer), row[answer.to_numpy(zero_copy_only=False)][
        long_answer.to_numpy(zero_copy_only=False)
    ]


def near_duplicate_rows(batches: Iterable[pa.ListArray]) -> np.ndarray:
    """Sorted pool rows flagged ``near_duplicate``, from the ``conversations`` column in pool order."""
    sigs, rows, first = [], [], 0
    for conversations in batches:
        texts, row = answer_documents(conversations, first)
        first += len(conversations)
        if len(texts):
            sigs.append(signatures(texts))
            rows.append(row)
    if not sigs:
        return np.zeros(0, np.int64)
    sig = np.concatenate(sigs)
    row = np.concatenate(rows)
    return np.unique(row[_confirmed(sig, row)])


def _confirmed(sig: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Indices of documents confirmed as near-duplicates of an earlier document of another sample."""
    bands = np.ascontiguousarray(sig).view(np.uint64)  # (n, BANDS)
    pairs = []
    for b in range(BANDS):
        order = np.argsort(bands[:, b], kind="stable")
        keys = bands[order, b]
        new_group = np.ones(len(keys), bool)
        new_group[1:] = keys[1:] != keys[:-1]
        group_first = order[np.flatnonzero(new_group)][np.cumsum(new_group) - 1]
        member = ~new_group
        pairs.append(np.stack([group_first[member], order[member]], axis=1))
    stacked = np.concatenate(pairs)
    stacked = stacked[row[stacked[:, 0]] != row[stacked[:, 1]]]
    codes = np.sort(stacked[:, 0] * np.int64(len(sig)) + stacked[:, 1])  # one int64 per pair
    codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])] if len(codes) else codes
    candidates = np.stack([codes // len(sig), codes % len(sig)], axis=1)
    if not len(candidates):
        return np.zeros(0, np.int64)
    similar = (sig[candidates[:, 0]] == sig[candidates[:, 1]]).mean(axis=1) >= THRESHOLD
    return candidates[similar, 1]
