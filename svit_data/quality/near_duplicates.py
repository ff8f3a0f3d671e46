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

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.quality.asciiwords import SLICES, word_cache, word_hashes
from svit_data.quality.minhash import _GOLD, _LOW_BITS, _P1, _P2, BANDS, BINS, THRESHOLD, _minhash, _mix_one
from svit_data.quality.prefetch import prefetch
from svit_data.quality.textscan import TurnScan, crcs, simple_ascii, split_whitespace, text_bytes, word_counts
from svit_data.tasks import GPT

MIN_WORDS = 25
# The bucket walk runs in threads from this many documents on (below, a thread's start and its own
# table cost more than they save), in at most this many (each thread's table: 24 bytes per document).
THREADED_FROM = 200_000
MAX_THREADS = 4
# The walk prefetches the head of the document this many places ahead (and its table slot at twice that).
LOOKAHEAD = 8


@numba.njit(cache=True, nogil=True)
def _signatures(words, starts, p1, p2, gold):  # pragma: no cover - compiled
    """One signature per document from its word hashes ``words[starts[d]:starts[d + 1]]``."""
    n = len(starts) - 1
    out = np.empty((n, BINS), np.uint8)
    bins = np.empty(BINS, np.uint64)
    longest = 0
    for d in range(n):
        longest = max(longest, starts[d + 1] - starts[d])
    shingles = np.empty(longest, np.uint64)
    for d in range(n):
        _minhash(words, starts[d], starts[d + 1], out[d], bins, shingles, p1, p2, gold)
    return out


@numba.njit(cache=True, nogil=True)
def _ascii_signatures(data, offsets, picks, tables, p1, p2, gold):  # pragma: no cover - compiled
    """Signatures of the ASCII texts ``picks``: lowercase, split at whitespace, zlib's CRC-32 per word
    (:func:`~svit_data.quality.asciiwords.word_hashes`, 8 bytes at a time), MinHash."""
    longest = 0
    for t in picks:
        longest = max(longest, offsets[t + 1] - offsets[t])
    bits = np.empty(longest // 64 + 2, np.uint64)
    words = np.empty(longest // 2 + 2, np.uint64)
    shingles = np.empty(longest // 2 + 2, np.uint64)
    cache = word_cache()
    out = np.empty((len(picks), BINS), np.uint8)
    bins = np.empty(BINS, np.uint64)
    for d in range(len(picks)):
        t = picks[d]
        count = word_hashes(data, offsets[t], offsets[t + 1], bits, words, cache, tables)
        _minhash(words, 0, count, out[d], bins, shingles, p1, p2, gold)
    return out


def _signatures_at(values: pa.Array, picks: np.ndarray, simple: np.ndarray) -> np.ndarray:
    """Signatures of ``values[picks]``; ``simple`` marks the texts of :func:`simple_ascii` (all values)."""
    out = np.empty((len(picks), BINS), np.uint8)
    easy = simple[picks]
    if easy.any():
        data, offsets = text_bytes(values)
        out[easy] = _ascii_signatures(data, offsets, picks[easy], SLICES, _P1, _P2, _GOLD)
    if not easy.all():
        texts = values.take(pa.array(picks[~easy]))
        # split, then lowercase the words (the same words: no character's lowercase is whitespace)
        split = split_whitespace(texts)
        words = crcs(pc.utf8_lower(split.flatten()))
        starts = split.offsets.to_numpy().astype(np.int64) - split.offsets[0].as_py()
        out[~easy] = _signatures(words, starts, _P1, _P2, _GOLD)
    return out


def signatures(texts: pa.Array) -> np.ndarray:
    """One ``BINS``-byte signature per text (rows of uint8); texts need at least 3 words.

    pyarrow's ``utf8_lower`` and ``utf8_split_whitespace`` (its Unicode kernel) are the rule. ASCII texts
    without whitespace at either end (where that split is ``str.split()``) are lowercased, split and hashed
    by one compiled pass; the others go through pyarrow's kernels, then their words are hashed the same
    way."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    return _signatures_at(texts, np.arange(len(texts)), simple_ascii(texts))


def answer_documents(
    conversations: pa.ListArray, first_row: int, scanned: TurnScan | None = None
) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """The turn texts of a batch of samples, which of them are long answers, their pool rows, and which
    texts are :func:`simple_ascii`. ``scanned``: the turns' :func:`scan`, when the checks made one."""
    turns = conversations.flatten()
    values = turns.field("value")
    offsets = conversations.offsets.to_numpy()
    row = np.repeat(np.arange(len(conversations)) + first_row, np.diff(offsets - offsets[0]))
    answers = np.flatnonzero(pc.equal(turns.field("from"), GPT).to_numpy(zero_copy_only=False))
    # only answers are signed: the other texts need not be read
    simple = simple_ascii(values, None if scanned is None else scanned.ascii, answers)
    # utf8_split_whitespace's count wherever it is str.split()'s
    words = word_counts(values) if scanned is None else scanned.words.copy()
    other = answers[~simple[answers]]
    if len(other):
        words[other] = pc.list_value_length(split_whitespace(values.take(pa.array(other))))
    picks = answers[words[answers] >= MIN_WORDS]
    return values, picks, row[picks], simple


def document_signatures(
    conversations: pa.ListArray, first_row: int, scanned: TurnScan | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The signatures of a batch's long answers and the pool row of each (ingest computes them per batch,
    in its worker processes, so that only :func:`confirmed_rows` runs once over the whole pool)."""
    values, picks, rows, simple = answer_documents(conversations, first_row, scanned)
    return _signatures_at(values, picks, simple), rows


Documents = tuple[np.ndarray, np.ndarray]  # (n, BINS) uint8 signatures, (n,) int64 pool rows


def stack(parts: Iterable[Documents]) -> Documents:
    """Per-batch ``(signatures, rows)`` in pool order as one pair (no copy when there is one batch)."""
    parts = [(sig, row) for sig, row in parts if len(row)]
    if not parts:
        return np.zeros((0, BINS), np.uint8), np.zeros(0, np.int64)
    if len(parts) == 1:
        return parts[0][0], np.asarray(parts[0][1], np.int64)
    return np.concatenate([s for s, _ in parts]), np.concatenate([r for _, r in parts]).astype(np.int64)


def confirmed_rows(parts: Iterable[Documents], first_doc: int = 0) -> np.ndarray:
    """Sorted pool rows flagged ``near_duplicate``, from :func:`document_signatures` in pool order.
    ``first_doc``: the documents before it head buckets but are not compared (their rows are known)."""
    sig, row = stack(parts)
    if not len(row):
        return np.zeros(0, np.int64)
    return np.unique(row[_confirmed(sig, row, first_doc)])


def near_duplicate_rows(batches: Iterable[pa.ListArray]) -> np.ndarray:
    """Sorted pool rows flagged ``near_duplicate``, from the ``conversations`` column in pool order."""
    parts, first = [], 0
    for conversations in batches:
        parts.append(document_signatures(conversations, first))
        first += len(conversations)
    return confirmed_rows(parts)


@numba.njit(cache=True, nogil=True)
def _head_of(words, band, doc, table_keys, table_heads, mask):  # pragma: no cover - compiled
    """The slot of ``doc``'s value of ``band`` in the open-addressing table: its bucket's, or the empty
    slot where it goes."""
    key = words[doc, band]
    slot = _mix_one(key) & mask
    while table_heads[slot] >= 0 and table_keys[slot] != key:
        slot = (slot + np.uint64(1)) & mask
    return slot


@numba.njit(cache=True, nogil=True)
def _confirm(words, row, allowed, first_band, end_band, first_doc):  # pragma: no cover - compiled
    """Which documents are confirmed by bands ``first_band`` to ``end_band - 1``, band after band:
    documents in pool order; the first document with a band value heads its bucket (an open-addressing
    table, allocated once and cleared per band, maps values to heads) and each later one is compared
    with its head, unless it is already confirmed, belongs to the same sample, or was found too
    different from that same head in an earlier band. A band's heads do not depend on other bands, so
    the result over all bands is the union of the results over any partition of them. Documents before
    ``first_doc`` head buckets but are not compared: whether a later document is confirmed does not
    depend on them being confirmed, so its result is the same.

    Most of the time goes to waiting for memory (a table slot, then the head's signature and sample,
    at random places), so the walk asks for them ahead (:func:`prefetch`): the table slot of the
    document :data:`LOOKAHEAD` * 2 places on, and the head that document :data:`LOOKAHEAD` places on
    has now (a document in between may still become its head; the lookup at its turn decides)."""
    n = words.shape[0]
    flat = words.reshape(n * BANDS)
    size = 1
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table_keys = np.empty(size, np.uint64)
    table_heads = np.empty(size, np.int32)
    confirmed = np.zeros(n, np.bool_)
    rejected_by = np.full(n, -1, np.int64)
    for band in range(first_band, end_band):
        table_heads[:] = -1
        for doc in range(n):
            if doc + 2 * LOOKAHEAD < n:
                slot = _mix_one(words[doc + 2 * LOOKAHEAD, band]) & mask
                prefetch(table_keys, slot)
                prefetch(table_heads, slot)
            if doc + LOOKAHEAD < n:
                head = table_heads[_head_of(words, band, doc + LOOKAHEAD, table_keys, table_heads, mask)]
                if head >= 0:
                    prefetch(flat, head * BANDS)
                    prefetch(flat, head * BANDS + BANDS - 1)
                    prefetch(row, head)
            slot = _head_of(words, band, doc, table_keys, table_heads, mask)
            head = table_heads[slot]
            if head < 0:
                table_keys[slot] = words[doc, band]
                table_heads[slot] = doc
                continue
            if doc < first_doc or confirmed[doc] or row[doc] == row[head] or rejected_by[doc] == head:
                continue
            differ = 0
            for k in range(BANDS):  # 8 values per uint64: count the bytes that differ
                x = words[head, k] ^ words[doc, k]
                if x:
                    x |= x >> np.uint64(4)
                    x |= x >> np.uint64(2)
                    x |= x >> np.uint64(1)
                    differ += ((x & _LOW_BITS) * _LOW_BITS) >> np.uint64(56)
                    if differ > allowed:
                        break
            if differ <= allowed:
                confirmed[doc] = True
            else:
                rejected_by[doc] = head
    return confirmed


def _confirmed(sig: np.ndarray, row: np.ndarray, first_doc: int = 0) -> np.ndarray:
    """Indices of documents confirmed as near-duplicates of an earlier document of another sample."""
    words = np.ascontiguousarray(sig).view(np.uint64)  # (n, BANDS): band b is words[:, b]
    # the share of equal values is at least THRESHOLD: an exact count, no float rounding
    enough = int(np.ceil(THRESHOLD * BINS - 1e-9))
    row = np.asarray(row, np.int64)
    groups = _band_groups(len(words))
    if len(groups) == 1:
        return np.flatnonzero(_confirm(words, row, BINS - enough, 0, BANDS, first_doc))
    with ThreadPoolExecutor(len(groups)) as pool:  # the compiled walk releases the GIL
        parts = list(pool.map(lambda group: _confirm(words, row, BINS - enough, *group, first_doc), groups))
    return np.flatnonzero(np.logical_or.reduce(parts))


def _band_groups(documents: int) -> list[tuple[int, int]]:
    """The bands split among threads, each walking its own table (12 bytes per slot, two slots per
    document): one group below :data:`THREADED_FROM` documents or on one core, at most
    :data:`MAX_THREADS`."""
    threads = min(os.cpu_count() or 1, MAX_THREADS) if documents >= THREADED_FROM else 1
    edges = np.linspace(0, BANDS, threads + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
