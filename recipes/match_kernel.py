"""One compiled pass per batch: words, single-word and n-gram forms, the CSR rows and answer lengths.

For every turn, in order, the numba kernel reads the words (ASCII turns from their bytes with
:mod:`~svit_data.recipes.tokenize`'s word table; the rare non-ASCII turns from word ids computed before
with pyarrow's Unicode kernels) and feeds each to a small state machine: a word's own form is looked up
in an array, and an n-gram form ending at it is looked up by its integer code (the word ids of the last
``n`` known words of the turn in base ``len(words)``, as :class:`~svit_data.recipes.matching.FormTable`
codes them) in an open-addressing table, only where the word ends some form of that length. An unknown
word or the end of a turn breaks the n-grams. Concept counts are kept per sample and written as that
sample's CSR row (indices sorted, counts capped at 255) when its turns end.

The same pass gives each ASCII answer turn's length in words with boxes (``[x1, y1, x2, y2]``, lists of
them joined by commas) and ``<st>``/``<ed>`` markers removed, exactly as
:func:`~svit_data.recipes.matching.prose_words`' RE2 replacements would (RE2's ``\\s`` is
``[\\t\\n\\f\\r ]``; a box's numbers are parsed greedily, which is the only way its pattern can match).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.recipes.tokenize import BYTE_CLASS, WordIndex, probe, slot_of, table_slot, text_bytes
from svit_data.recipes.yesno import PREFIX_CHARS


@dataclass
class Matched:
    """CSR parts of a batch's samples x concepts matrix; per ASCII answer turn its prose words (0 for
    other turns); per sample its yes and no answers among ASCII turns; which turns are ASCII."""

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    prose: np.ndarray
    yes: np.ndarray
    no: np.ndarray
    ascii: np.ndarray


def compile_forms(
    word_form: np.ndarray,
    ngrams: dict[int, tuple[np.ndarray, np.ndarray]],
    base: int,
    form_indptr: np.ndarray,
    form_concepts: np.ndarray,
    max_words: int,
    num_concepts: int,
) -> tuple:
    """The kernel's form tables: ``ngrams`` maps a length to its (codes, form indices)."""
    ends = np.zeros(len(word_form), np.int64)  # bit n: the word ends an n-gram form
    total = sum(len(codes) for codes, _ in ngrams.values())
    size = 1 << max(4, int(np.ceil(np.log2(4 * max(1, total)))))
    mask = size - 1
    codes_of = np.zeros(size, np.int64)
    lengths = np.zeros(size, np.int64)
    forms = np.full(size, -1, np.int64)
    for n, (codes, indices) in ngrams.items():
        ends[codes % base] |= 1 << n
        for code, index in zip(codes.tolist(), indices.tolist(), strict=True):
            slot = table_slot(code, n, int(mask))
            while forms[slot] >= 0:
                slot = (slot + 1) & mask
            codes_of[slot], lengths[slot], forms[slot] = code, n, index
    return (
        word_form.astype(np.int64),
        ends,
        codes_of,
        lengths,
        forms,
        np.int64(mask),
        np.int64(base),
        form_indptr.astype(np.int64),
        form_concepts.astype(np.int64),
        np.int64(max(2, max_words)),
        np.int64(num_concepts),
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _spaces(data, i, end):  # pragma: no cover
    """RE2's ``\\s*``: the index after the run of tab, newline, form feed, carriage return and space."""
    while i < end and (data[i] == 32 or 9 <= data[i] <= 10 or 12 <= data[i] <= 13):
        i += 1
    return i


@numba.njit(cache=True, nogil=True, inline="always")
def _digits(data, i, end):  # pragma: no cover
    while i < end and 48 <= data[i] <= 57:
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _number(data, i, end):  # pragma: no cover
    """End of ``[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?`` at ``i``, or -1."""
    if i < end and (data[i] == 43 or data[i] == 45):
        i += 1
    if i < end and 48 <= data[i] <= 57:
        i = _digits(data, i, end)
        if i < end and data[i] == 46:
            i = _digits(data, i + 1, end)
    elif i + 1 < end and data[i] == 46 and 48 <= data[i + 1] <= 57:
        i = _digits(data, i + 1, end)
    else:
        return -1
    if i < end and (data[i] == 101 or data[i] == 69):
        k = i + 1
        if k < end and (data[k] == 43 or data[k] == 45):
            k += 1
        if k < end and 48 <= data[k] <= 57:
            i = _digits(data, k, end)
    return i


@numba.njit(cache=True, nogil=True)
def _box(data, i, end):  # pragma: no cover
    """End of a box ``[x1, y1, x2, y2]`` starting at ``data[i] == '['``, or -1."""
    i += 1
    for q in range(4):
        i = _spaces(data, i, end)
        i = _number(data, i, end)
        if i < 0:
            return -1
        i = _spaces(data, i, end)
        if i >= end or data[i] != (93 if q == 3 else 44):
            return -1
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _box_list(data, i, end):  # pragma: no cover
    """End of a box and the ``\\s*,\\s*``-joined boxes after it, or -1."""
    i = _box(data, i, end)
    while i >= 0:
        k = _spaces(data, i, end)
        if k >= end or data[k] != 44:
            break
        k = _spaces(data, k + 1, end)
        if k >= end or data[k] != 91:
            break
        k = _box(data, k, end)
        if k < 0:
            break
        i = k
    return i


@numba.njit(cache=True, nogil=True)
def prose_count(data, start, end, byte_class):  # pragma: no cover
    """Whitespace words of ``data[start:end]`` once boxes and ``<st>``/``<ed>`` read as spaces."""
    words, after_space, i = 0, True, start
    while i < end:
        c = data[i]
        if c == 91:
            j = _box_list(data, i, end)
            if j > 0:
                after_space, i = True, j
                continue
        elif (
            c == 60
            and i + 4 <= end
            and data[i + 3] == 62
            and ((data[i + 1] == 115 and data[i + 2] == 116) or (data[i + 1] == 101 and data[i + 2] == 100))
        ):
            after_space, i = True, i + 4
            continue
        space = byte_class[c] == 1
        words += after_space and not space
        after_space = space
        i += 1
    return words


@numba.njit(cache=True, nogil=True)
def yes_no_kind(data, start, end):  # pragma: no cover
    """1 for a yes answer, 2 for a no answer, 0 otherwise, by :mod:`~svit_data.recipes.yesno`'s rule on
    the ASCII text ``data[start:end]``: its first ``PREFIX_CHARS`` bytes, ``[\\s"'*]*`` then ``yes`` or
    ``no`` in any case, ``[\\s*]*``, then one of ``,.!;:`` or the end of those bytes."""
    end = min(end, start + PREFIX_CHARS)
    i = start
    while i < end and (data[i] == 32 or 9 <= data[i] <= 10 or 12 <= data[i] <= 13 or data[i] in (34, 39, 42)):
        i += 1
    if i + 3 <= end and data[i] | 0x20 == 121 and data[i + 1] | 0x20 == 101 and data[i + 2] | 0x20 == 115:
        kind, i = 1, i + 3
    elif i + 2 <= end and data[i] | 0x20 == 110 and data[i + 1] | 0x20 == 111:
        kind, i = 2, i + 2
    else:
        return 0
    while i < end and (data[i] == 32 or 9 <= data[i] <= 10 or 12 <= data[i] <= 13 or data[i] == 42):
        i += 1
    return kind if i == end or data[i] in (44, 46, 33, 59, 58) else 0


@numba.njit(cache=True, nogil=True)
def _match(
    data,
    offsets,
    ascii_text,
    is_answer,
    sample_of_turn,
    num_samples,
    byte_class,
    table,
    forms,
    uni_ids,
    uni_start,
):  # pragma: no cover
    # one function, no calls in the word loop: numba counts references of arrays passed to calls
    slots, word_bytes, word_offsets, word_mask = table
    (
        word_form,
        ends,
        codes,
        lengths,
        ngram_forms,
        mask,
        base,
        form_indptr,
        form_concepts,
        max_words,
        num_concepts,
    ) = forms
    counts = np.zeros(num_concepts, np.int64)
    touched = np.empty(num_concepts, np.int64)
    ring = np.zeros(max_words, np.int64)  # the turn's last known words, latest first
    turns = len(offsets) - 1
    prose = np.zeros(turns, np.int64)
    yes = np.zeros(num_samples, np.int32)
    no = np.zeros(num_samples, np.int32)
    indptr = np.zeros(num_samples + 1, np.int64)
    capacity = 16 * num_samples + 1024
    indices = np.empty(capacity, np.int32)
    values = np.empty(capacity, np.uint8)
    nnz, ntouched, sample = 0, 0, 0
    for t in range(turns + 1):
        row = sample_of_turn[t] if t < turns else num_samples
        while sample < row:  # the sample's turns are done: write its row
            if nnz + ntouched > capacity:
                capacity = 2 * capacity + ntouched
                indices = np.concatenate((indices[:nnz], np.empty(capacity - nnz, np.int32)))
                values = np.concatenate((values[:nnz], np.empty(capacity - nnz, np.uint8)))
            for a in range(1, ntouched):  # insertion sort: a row has a few dozen concepts at most
                c, b = touched[a], a - 1
                while b >= 0 and touched[b] > c:
                    touched[b + 1] = touched[b]
                    b -= 1
                touched[b + 1] = c
            for a in range(ntouched):
                c = touched[a]
                indices[nnz], values[nnz] = c, min(counts[c], 255)
                counts[c] = 0
                nnz += 1
            ntouched = 0
            sample += 1
            indptr[sample] = nnz
        if t == turns:
            break
        plain = ascii_text[t]
        i, end, k, words, after_space, special, filled = (
            offsets[t],
            offsets[t + 1],
            uni_start[t],
            0,
            True,
            False,
            0,
        )
        while True:
            if plain:  # the next word of the bytes: separators first (counting whitespace words)
                while i < end:
                    c = data[i]
                    kind = byte_class[c]
                    if kind == 2:
                        break
                    if kind == 1:
                        after_space = True
                    else:
                        words += after_space
                        after_space = False
                        special |= c == 91 or c == 60
                    i += 1
                if i == end:
                    break
                words += after_space
                after_space = False
                start, key = i, np.int64(0)
                while i < end:
                    c = data[i]
                    if byte_class[c] != 2:
                        break
                    key = (key << 8) | (c | 0x20)
                    i += 1
                word = probe(key, data, start, i, slots, word_bytes, word_offsets, word_mask)
            else:
                if k == uni_start[t + 1]:
                    break
                word = uni_ids[k]
                k += 1
            if word < 0:  # an unknown word breaks n-grams
                filled = 0
                continue
            code, scale, bits = np.int64(word), base, ends[word]
            for n in range(1, filled + 2 if bits else 2):  # forms of n words ending here
                form = -1
                if n == 1:
                    form = word_form[word]
                else:
                    code += ring[n - 2] * scale
                    scale *= base
                    if (bits >> n) & 1:
                        slot = slot_of(code, n, mask)
                        while ngram_forms[slot] >= 0:
                            if codes[slot] == code and lengths[slot] == n:
                                form = ngram_forms[slot]
                                break
                            slot = (slot + 1) & mask
                if form >= 0:
                    for j in range(form_indptr[form], form_indptr[form + 1]):
                        c = form_concepts[j]
                        if counts[c] == 0:
                            touched[ntouched] = c
                            ntouched += 1
                        counts[c] += 1
            for a in range(max_words - 2, 0, -1):
                ring[a] = ring[a - 1]
            ring[0] = word
            filled = min(filled + 1, max_words - 1)
        if plain and is_answer[t]:
            prose[t] = prose_count(data, offsets[t], end, byte_class) if special else words
            kind = yes_no_kind(data, offsets[t], end)
            yes[row] += kind == 1
            no[row] += kind == 2
    return indptr, indices[:nnz], values[:nnz], prose, yes, no


def match_turns(
    values: pa.Array,
    is_answer: np.ndarray,
    sample_of_turn: np.ndarray,
    num_samples: int,
    index: WordIndex,
    forms: tuple,
) -> Matched:
    """The turns ``values`` (no nulls; ``sample_of_turn`` nondecreasing) matched in one pass."""
    data, offsets = text_bytes(values)
    ascii_text = pc.string_is_ascii(values).to_numpy(zero_copy_only=False)
    other = np.flatnonzero(~ascii_text)
    uni_ids, uni_start = np.zeros(0, np.int64), np.zeros(len(values) + 1, np.int64)
    if len(other):
        uni_ids, text = index.unicode_ids(values.take(pa.array(other)))
        uni_start = np.searchsorted(other[text], np.arange(len(values) + 1))
    indptr, indices, counts, lengths, yes, no = _match(
        data,
        offsets,
        ascii_text,
        is_answer,
        sample_of_turn.astype(np.int64),
        num_samples,
        BYTE_CLASS,
        index.table,
        forms,
        uni_ids,
        uni_start,
    )
    return Matched(indptr, indices, counts, lengths, yes, no, ascii_text)
