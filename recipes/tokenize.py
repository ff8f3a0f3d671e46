"""Text -> word ids, in compiled passes over the UTF-8 bytes of a pyarrow string array.

The rule is :func:`~svit_data.recipes.vocabulary.normalize`'s: lowercase, and every run of characters
that are not letters or digits separates words. Pure-ASCII texts (nearly all) are scanned by numba
kernels: a word is a maximal run of ``[A-Za-z0-9]`` inside one text. While it is read, its lowercased
bytes are packed into a 64-bit key (the last eight bytes, first byte highest); one multiply of the key
and the word's length picks a slot in an open-addressing table of the known words, and a slot holds a
word when key and length agree (words longer than eight bytes also compare their first bytes). Texts
with any non-ASCII byte go through pyarrow's Unicode kernels (``utf8_lower``, an RE2 replace,
``utf8_split_whitespace``, ``index_in``), as every text did before; both give the same words on ASCII
text (tested against the old matcher). Whitespace words (for answer lengths) follow pyarrow's
``utf8_split_whitespace`` on ASCII: tab to carriage return, 0x1c-0x1f and space separate.

numba (a JIT compiler for numeric Python, wheels for Linux, macOS and Windows) is used because array
passes in numpy cost about twenty trips over the text per batch; the loops here make one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.recipes.vocabulary import TEXT_PATTERN

BYTE_CLASS = np.zeros(256, np.uint8)  # 0 other, 1 whitespace, 2 ASCII letter or digit
BYTE_CLASS[[*range(9, 14), *range(28, 33)]] = 1
BYTE_CLASS[[*range(48, 58), *range(65, 91), *range(97, 123)]] = 2
_MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15 (the golden ratio in 64 bits) as int64


@numba.njit(cache=True, nogil=True, inline="always")
def slot_of(key, length, mask):  # pragma: no cover
    """Table slot of a packed word key (or an n-gram code) of ``length``."""
    return (((key ^ length) * _MIX) >> 32) & mask


def table_slot(key: int, length: int, mask: int) -> int:
    """:func:`slot_of` in Python integers (tables are built without a call into numba, which costs
    about a second the first time in a process)."""
    product = ((key ^ length) * int(_MIX)) & 0xFFFFFFFFFFFFFFFF
    return ((product - (1 << 64) if product >> 63 else product) >> 32) & mask


def word_key(word: bytes) -> int:
    """The kernels' key of the ASCII ``word``: its last eight bytes lowercased, first byte highest, as
    a signed 64-bit integer."""
    key = int.from_bytes(bytes(b | 0x20 for b in word[-8:]), "big")
    return key - (1 << 64) if key >> 63 else key


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


def text_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array without nulls and its offsets into them (int64)."""
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], width)[values.offset : values.offset + len(values) + 1]
    buffer = values.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _scan(data, offsets, ascii_text, byte_class, table):  # pragma: no cover
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


@numba.njit(cache=True, nogil=True)
def _whitespace_words(data, offsets, byte_class):  # pragma: no cover
    words = np.zeros(len(offsets) - 1, np.int64)
    for t in range(len(offsets) - 1):
        after_space = True
        for i in range(offsets[t], offsets[t + 1]):
            space = byte_class[data[i]] == 1
            words[t] += after_space and not space
            after_space = space
    return words


def whitespace_words(values: pa.Array) -> np.ndarray:
    """Words per text as ``utf8_split_whitespace`` splits ASCII text (not valid for other text)."""
    return _whitespace_words(*text_bytes(values.fill_null("")), BYTE_CLASS)


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
        ids, text, spaces = _scan(data, offsets, ascii_text, BYTE_CLASS, self.table)
        other = np.flatnonzero(~ascii_text)
        if len(other):
            more_ids, more_text = self.unicode_ids(values.take(pa.array(other)))
            ids = np.concatenate([ids, more_ids.astype(np.int32)])
            text = np.concatenate([text, other[more_text].astype(np.int32)])
        return Scan(ids=ids, text=text, spaces=spaces, ascii=ascii_text)
