"""Text -> word ids and the batch matcher's Python side: its tables and its one call per batch.

The rule is :func:`~svit_data.recipes.vocabulary.normalize`'s: lowercase, and every run of characters
that are not letters or digits separates words. Pure-ASCII texts (nearly all) are read by the numba
kernels of :mod:`~svit_data.recipes.match_kernel`: a word is a maximal run of ``[A-Za-z0-9]`` inside
one text; its lowercased bytes are packed into a 64-bit key (the last eight bytes, first byte highest),
and one multiply of the key and the word's length picks a slot in an open-addressing table of the known
words (:class:`WordIndex`; words longer than eight bytes also compare their length and first bytes).
Texts with any non-ASCII byte go through pyarrow's Unicode kernels (``utf8_lower``, an RE2 replace,
``utf8_split_whitespace``, ``index_in``), as every text did before; both give the same words on ASCII
text (tested against the old matcher). Whitespace words (for answer lengths) follow pyarrow's
``utf8_split_whitespace`` on ASCII: tab to carriage return, 0x1c-0x1f and space separate.

numba (a JIT compiler for numeric Python, wheels for Linux, macOS and Windows) is used because array
passes in numpy cost about twenty trips over the text per batch; the kernels make one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.recipes.match_kernel import MIX, match_pass, scan_words
from svit_data.recipes.vocabulary import TEXT_PATTERN
from svit_data.recipes.yesno import PREFIX_CHARS

BYTE_CLASS = np.zeros(256, np.uint8)  # 0 other, 1 whitespace, 2 ASCII letter or digit
BYTE_CLASS[[*range(9, 14), *range(28, 33)]] = 1
BYTE_CLASS[[*range(48, 58), *range(65, 91), *range(97, 123)]] = 2


def table_slot(key: int, length: int, mask: int) -> int:
    """:func:`~svit_data.recipes.match_kernel.slot_of` in Python integers (tables are built without a call into numba, which costs
    about a second the first time in a process)."""
    product = ((key ^ length) * int(MIX)) & 0xFFFFFFFFFFFFFFFF
    return ((product - (1 << 64) if product >> 63 else product) >> 32) & mask


def word_key(word: bytes) -> int:
    """The kernels' key of the ASCII ``word``: its last eight bytes lowercased, first byte highest, as
    a signed 64-bit integer."""
    key = int.from_bytes(bytes(b | 0x20 for b in word[-8:]), "big")
    return key - (1 << 64) if key >> 63 else key


def text_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array without nulls and its offsets into them (int64)."""
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], width)[values.offset : values.offset + len(values) + 1]
    buffer = values.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


@dataclass
class Scan:
    """Word ids (known words, ``-1`` for gaps of unknown ones) and their text; per text, whitespace
    words (valid where ``ascii``) and whether it is pure ASCII."""

    ids: np.ndarray
    text: np.ndarray
    spaces: np.ndarray
    ascii: np.ndarray


class WordIndex:
    """Word ids for the sorted word list ``words`` (a pyarrow string array)."""

    def __init__(self, words: pa.Array):
        self.words = words
        listed = [(i, w.encode()) for i, w in enumerate(words.to_pylist()) if w.isascii() and w]
        size = 1 << max(4, int(np.ceil(np.log2(4 * max(1, len(listed))))))
        mask = size - 1
        slots = np.zeros((size, 2), np.int64)
        slots[:, 1] = -1
        word_offsets = np.zeros(len(words) + 1, np.int64)
        sizes = np.zeros(len(words), np.int64)
        for i, w in listed:
            sizes[i] = len(w)
        np.cumsum(sizes, out=word_offsets[1:])
        word_bytes = np.zeros(int(word_offsets[-1]), np.uint8)
        for i, w in listed:
            word_bytes[word_offsets[i] : word_offsets[i + 1]] = np.frombuffer(w, np.uint8)
            key = word_key(w)
            slot = table_slot(key, len(w), mask)
            while slots[slot, 1] >= 0:
                slot = (slot + 1) & mask
            slots[slot] = key, i
        self.table = (slots, word_bytes, word_offsets, np.int64(mask))

    def unicode_ids(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(word id or -1, text index) of every word, with pyarrow's Unicode kernels."""
        text = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(values), TEXT_PATTERN, " "))
        tokens = pc.utf8_split_whitespace(text)
        turn = pc.list_parent_indices(tokens).to_numpy()
        ids = pc.index_in(pc.list_flatten(tokens), value_set=self.words).fill_null(-1).to_numpy()
        return ids.astype(np.int64), turn.astype(np.int64)

    def scan(self, values: pa.Array) -> Scan:
        """Word ids of ``values`` (nulls read as empty); a text's entries are consecutive."""
        values = values.fill_null("")
        data, offsets = text_bytes(values)
        ascii_text = pc.string_is_ascii(values).to_numpy(zero_copy_only=False)
        ids, text, spaces = scan_words(data, offsets, ascii_text, BYTE_CLASS, self.table)
        other = np.flatnonzero(~ascii_text)
        if len(other):
            more_ids, more_text = self.unicode_ids(values.take(pa.array(other)))
            ids = np.concatenate([ids, more_ids.astype(np.int32)])
            text = np.concatenate([text, other[more_text].astype(np.int32)])
        return Scan(ids=ids, text=text, spaces=spaces, ascii=ascii_text)


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
    indptr, indices, counts, lengths, yes, no = match_pass(
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
        PREFIX_CHARS,
    )
    return Matched(indptr, indices, counts, lengths, yes, no, ascii_text)
