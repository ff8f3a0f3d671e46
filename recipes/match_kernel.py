"""One compiled pass per batch: words, single-word and n-gram forms, the CSR rows and answer lengths.

Every numba function of matching is in this file: numba caches a compiled function per source file and
does not notice edits to the functions it inlined from another file.

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

import numba
import numpy as np

MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 (the golden ratio in 64 bits) as int64


@numba.njit(cache=True, nogil=True, inline="always")
def slot_of(key, length, mask):  # pragma: no cover
    """Table slot of a packed word key (or an n-gram code) of ``length``."""
    return (((key ^ length) * MIX) >> 32) & mask


@numba.njit(cache=True, nogil=True, inline="always")
def probe(key, data, start, end, slots, word_bytes, word_offsets, mask):  # pragma: no cover
    """Id of the word ``data[start:end]`` (packed into ``key``), or -1 when it is not in the table.

    ``slots[s]`` is (key, word id), or (0, -1) when empty. Up to eight bytes the key is the word (its
    bytes are not zero, so it also tells the length); longer words compare their length and first bytes.
    """
    n = end - start
    slot = slot_of(key, n, mask)
    while True:
        word = slots[slot, 1]
        if word < 0:
            return -1
        if slots[slot, 0] == key and (n <= 8 or word_offsets[word + 1] - word_offsets[word] == n):
            if n <= 8:
                return word
            at = word_offsets[word]
            same = True
            for k in range(n - 8):  # the last eight bytes are in the key
                if (data[start + k] | 0x20) != word_bytes[at + k]:
                    same = False
                    break
            if same:
                return word
        slot = (slot + 1) & mask


@numba.njit(cache=True, nogil=True)
def scan_words(data, offsets, ascii_text, byte_class, table):  # pragma: no cover
    slots, word_bytes, word_offsets, mask = table
    turns = len(offsets) - 1
    spaces = np.zeros(turns, np.int64)
    capacity = len(data) // 2 + turns + 1  # a word and its separator take two bytes, but the last
    ids = np.empty(capacity, np.int32)
    turn_of = np.empty(capacity, np.int32)
    count = 0
    for t in range(turns):
        if not ascii_text[t]:
            continue
        i, end, words, after_space, pending = offsets[t], offsets[t + 1], 0, True, False
        while i < end:
            kind = byte_class[data[i]]
            if kind == 2:
                words += after_space
                after_space = False
                start, key = i, np.int64(0)
                while i < end and byte_class[data[i]] == 2:
                    key = (key << 8) | (data[i] | 0x20)
                    i += 1
                word = probe(key, data, start, i, slots, word_bytes, word_offsets, mask)
                if word >= 0 or pending:  # one -1 per run of unknown words after a known one
                    ids[count], turn_of[count] = word, t
                    count += 1
                    pending = word >= 0
                continue
            words += kind == 0 and after_space
            after_space = kind == 1
            i += 1
        spaces[t] = words
    return ids[:count], turn_of[:count], spaces


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
def yes_no_kind(data, start, end, prefix_chars):  # pragma: no cover
    """1 for a yes answer, 2 for a no answer, 0 otherwise, by :mod:`~svit_data.recipes.yesno`'s rule on
    the ASCII text ``data[start:end]``: its first ``prefix_chars`` bytes, ``[\\s"'*]*`` then ``yes`` or
    ``no`` in any case, ``[\\s*]*``, then one of ``,.!;:`` or the end of those bytes."""
    end = min(end, start + prefix_chars)
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
def match_pass(
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
    prefix_chars,
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
            kind = yes_no_kind(data, offsets[t], end, prefix_chars)
            yes[row] += kind == 1
            no[row] += kind == 2
    return indptr, indices[:nnz], values[:nnz], prose, yes, no
