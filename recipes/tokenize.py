"""Text -> word ids, in one compiled pass over the UTF-8 bytes of a pyarrow string array.

The rule is :func:`~svit_data.recipes.vocabulary.normalize`'s: lowercase, and every run of characters
that are not letters or digits separates words. Pure-ASCII texts (nearly all) are scanned by a numba
kernel: a word is a maximal run of ``[A-Za-z0-9]`` inside one text, hashed (FNV-1a over its lowercased
bytes) while it is read and looked up in an open-addressing table of the known words, confirmed byte by
byte. Only known words are kept, with one ``-1`` standing for each run of unknown words between them, so
the n-gram matcher sees the same adjacencies as on the full word sequence. Texts with any non-ASCII byte
go through pyarrow's Unicode kernels (``utf8_lower``, an RE2 replace, ``utf8_split_whitespace``,
``index_in``), as every text did before; both give the same words on ASCII text (tested against the old
matcher). The same pass counts whitespace words per text (pyarrow's ``utf8_split_whitespace`` on ASCII:
tab to carriage return, 0x1c-0x1f and space separate).

numba (a JIT compiler for numeric Python, wheels for Linux, macOS and Windows) is used because array
passes in numpy cost about twenty trips over the text per batch; the loop here makes one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.recipes.vocabulary import TEXT_PATTERN

_BYTE_CLASS = np.zeros(256, np.uint8)  # 0 other, 1 whitespace, 2 ASCII letter or digit
_BYTE_CLASS[[*range(9, 14), *range(28, 33)]] = 1
_BYTE_CLASS[[*range(48, 58), *range(65, 91), *range(97, 123)]] = 2
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def fnv(word: bytes) -> int:
    """FNV-1a, 64 bit, of ``word`` (the kernel computes the same over lowercased bytes)."""
    h = _FNV_OFFSET
    for byte in word:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def text_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array without nulls and its offsets into them (int64)."""
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], width)[values.offset : values.offset + len(values) + 1]
    buffer = values.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _probe(h, data, start, end, hashes, table_ids, word_bytes, word_offsets, mask):  # pragma: no cover
    slot = h & mask
    while table_ids[slot] >= 0:
        word = table_ids[slot]
        if hashes[slot] == h and word_offsets[word + 1] - word_offsets[word] == end - start:
            at = word_offsets[word]
            same = True
            for k in range(end - start):
                if (data[start + k] | 0x20) != word_bytes[at + k]:
                    same = False
                    break
            if same:
                return word
        slot = (slot + 1) & mask
    return -1


@numba.njit(cache=True, nogil=True)
def _scan(
    data, offsets, ascii_text, byte_class, hashes, table_ids, word_bytes, word_offsets, mask
):  # pragma: no cover
    turns = len(offsets) - 1
    spaces = np.zeros(turns, np.int64)
    capacity = 1024 + len(data) // 8
    ids = np.empty(capacity, np.int32)
    turn_of = np.empty(capacity, np.int32)
    count = 0
    fnv_offset = np.uint64(0xCBF29CE484222325)
    fnv_prime = np.uint64(0x100000001B3)
    for t in range(turns):
        if not ascii_text[t]:
            continue
        if count + offsets[t + 1] - offsets[t] + 1 >= capacity:
            capacity = 2 * capacity + offsets[t + 1] - offsets[t]
            ids = np.concatenate((ids[:count], np.empty(capacity - count, np.int32)))
            turn_of = np.concatenate((turn_of[:count], np.empty(capacity - count, np.int32)))
        words = 0
        last = 1  # class of the previous byte: 0 other, 1 space, 2 letter or digit
        pending = False  # a known word was kept and unknown words follow it
        start = offsets[t]
        h = fnv_offset
        for i in range(offsets[t], offsets[t + 1] + 1):
            c = data[i] if i < offsets[t + 1] else np.uint8(32)
            kind = byte_class[c]
            if kind == 2:
                if last != 2:
                    start = i
                    h = fnv_offset
                    words += last == 1
                h = (h ^ np.uint64(c | 0x20)) * fnv_prime
            else:
                words += kind == 0 and last == 1
                if last == 2:
                    word = _probe(h, data, start, i, hashes, table_ids, word_bytes, word_offsets, mask)
                    if word >= 0 or pending:
                        ids[count] = word
                        turn_of[count] = t
                        count += 1
                        pending = word >= 0
            last = kind
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
    return _whitespace_words(*text_bytes(values.fill_null("")), _BYTE_CLASS)


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
        self.mask = size - 1
        self.hashes = np.zeros(size, np.uint64)
        self.table_ids = np.full(size, -1, np.int64)
        self.word_offsets = np.zeros(len(words) + 1, np.int64)
        lengths = np.zeros(len(words), np.int64)
        for i, w in listed:
            lengths[i] = len(w)
        np.cumsum(lengths, out=self.word_offsets[1:])
        self.word_bytes = np.zeros(int(self.word_offsets[-1]), np.uint8)
        for i, w in listed:
            self.word_bytes[self.word_offsets[i] : self.word_offsets[i + 1]] = np.frombuffer(w, np.uint8)
            h = fnv(w)
            slot = h & self.mask
            while self.table_ids[slot] >= 0:
                slot = (slot + 1) & self.mask
            self.hashes[slot], self.table_ids[slot] = h, i

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
        ids, text, spaces = _scan(
            data,
            offsets,
            ascii_text,
            _BYTE_CLASS,
            self.hashes,
            self.table_ids,
            self.word_bytes,
            self.word_offsets,
            self.mask,
        )
        other = np.flatnonzero(~ascii_text)
        if len(other):
            more_ids, more_text = self.unicode_ids(values.take(pa.array(other)))
            ids = np.concatenate([ids, more_ids.astype(np.int32)])
            text = np.concatenate([text, other[more_text].astype(np.int32)])
        return Scan(ids=ids, text=text, spaces=spaces, ascii=ascii_text)
