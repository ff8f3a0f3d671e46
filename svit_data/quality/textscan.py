"""Compiled passes over the UTF-8 bytes of a pyarrow string array, for the batch quality checks.

Each kernel reads the bytes once, without building Python strings or intermediate arrays. They only
handle what is defined on bytes alone; callers route texts where Unicode matters (see each kernel) to
the exact pyarrow or Python rule. "Whitespace" here is the ASCII whitespace of both ``str.split()`` and
pyarrow's ``utf8_split_whitespace``: tab to carriage return, 0x1c-0x1f and space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from svit_data.quality import swar
from svit_data.quality.text import ERROR_HINTS, SOURCE_HINTS

WHITESPACE = np.zeros(256, np.bool_)
WHITESPACE[[*range(9, 14), *range(28, 33)]] = True


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1).astype(np.uint32)
    return table


CRC = _crc_table()  # zlib's CRC-32 (reflected 0xEDB88320), so a word hashes as zlib.crc32 hashes it


def text_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array and its offsets into them (int64); nulls read as empty."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], width)[values.offset : values.offset + len(values) + 1]
    buffer = values.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _word_counts(data, offsets, whitespace):  # pragma: no cover - compiled
    n = len(offsets) - 1
    counts = np.zeros(n, np.int64)
    for i in range(n):
        inside = False
        count = 0
        for k in range(offsets[i], offsets[i + 1]):
            if whitespace[data[k]]:
                inside = False
            elif not inside:
                inside = True
                count += 1
        counts[i] = count
    return counts


def word_counts(values: pa.Array) -> np.ndarray:
    """Whitespace words per text: ``len(text.split())`` wherever the text holds no non-ASCII whitespace."""
    data, offsets = text_bytes(values)
    return _word_counts(data, offsets, WHITESPACE)


def normalized_hashes(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of ``" ".join(text.lower().split())`` per text, exact for ASCII texts (and for
    texts that are already normalized, whatever their characters): equal normalized texts hash equal."""
    return scan(values).hashes


@numba.njit(cache=True, nogil=True)
def _crcs(data, offsets, crc):  # pragma: no cover - compiled
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        value = np.uint32(0xFFFFFFFF)
        for k in range(offsets[i], offsets[i + 1]):
            value = crc[(value ^ np.uint32(data[k])) & np.uint32(0xFF)] ^ (value >> np.uint32(8))
        out[i] = np.uint64(value ^ np.uint32(0xFFFFFFFF))
    return out


def crcs(values: pa.Array) -> np.ndarray:
    """``zlib.crc32`` of each text's UTF-8 bytes."""
    data, offsets = text_bytes(values)
    return _crcs(data, offsets, CRC)


_NON_ASCII = pa.array(["\u00e9"])


def split_whitespace(values: pa.Array) -> pa.ListArray:
    """pyarrow's ``utf8_split_whitespace`` of ``values``, always by its Unicode kernel.

    On an array of ASCII texts pyarrow 26 sometimes splits with its ASCII kernel instead, depending on
    memory it should not read: that kernel does not split at 0x1c-0x1f and yields one empty word for a
    run of whitespace at an edge where the Unicode kernel yields one per character. A non-ASCII text
    appended (and dropped from the result) keeps the Unicode kernel."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.utf8_split_whitespace(pa.concat_arrays([values, _NON_ASCII])).slice(0, len(values))


def simple_ascii(
    values: pa.Array, ascii_: np.ndarray | None = None, picks: np.ndarray | None = None
) -> np.ndarray:
    """Texts that are ASCII, non-empty, and neither start nor end with whitespace: on these pyarrow's
    ``utf8_split_whitespace`` gives exactly ``str.split()`` (elsewhere it yields empty words at the edges).
    ``ascii_``: which texts are ASCII, when a scan already knows; ``picks``: the only texts asked about
    (the others read False)."""
    data, offsets = text_bytes(values)
    if ascii_ is None:
        ascii_ = pc.string_is_ascii(values).to_numpy(zero_copy_only=False)
    picks = np.arange(len(values)) if picks is None else np.asarray(picks, np.int64)
    start, stop = offsets[picks], offsets[picks + 1]
    nonempty = stop > start
    simple = np.zeros(len(values), np.bool_)
    if nonempty.any():
        first, last = data[np.where(nonempty, start, 0)], data[np.where(nonempty, stop - 1, 0)]
        simple[picks] = ascii_[picks] & nonempty & ~WHITESPACE[first] & ~WHITESPACE[last]
    return simple


_SLOT_BITS = 10


def _hint_table(hints: tuple[str, ...]) -> tuple[np.ndarray, np.uint64, np.uint64, np.ndarray, np.ndarray]:
    """What :func:`_scan` looks hints up with: a table of 2**_SLOT_BITS slots holding, each in its own
    slot (``word * multiplier mod 2**32 >> (32 - _SLOT_BITS)``), the little-endian words of each hint's
    bytes 0-3 and of bytes 1-4 of the longer ones, shifted into the top half of a uint64; the multiplier;
    bytes 0-2 of the one four-byte hint in bytes 5-7 of a uint64 (1, which no window matches, if none);
    the hints as padded bytes and their lengths."""
    if min(map(len, hints)) < 4 or any(hint != hint.lower() or not hint.isascii() for hint in hints):
        raise ValueError("hint words must be lowercase ASCII of at least four characters")
    if sum(len(hint) == 4 for hint in hints) > 1:
        raise ValueError("at most one hint word may have four characters")
    encoded = [hint.encode("ascii") for hint in hints]
    words = {
        int.from_bytes(text[at : at + 4], "little")
        for text in encoded
        for at in (0, 1)
        if len(text) >= at + 4
    }

    def slot(word: int, multiplier: int) -> int:
        return (word * multiplier) % 2**32 >> (32 - _SLOT_BITS)

    for multiplier in range(0x9E3779B1, 0x9E3779B1 + 20000, 2):  # the first that gives distinct slots
        if len({slot(word, multiplier) for word in words}) == len(words):
            break
    else:  # pragma: no cover - a few dozen words in 1,024 slots
        raise RuntimeError("no multiplier separates the hint words")
    table = np.zeros(1 << _SLOT_BITS, np.uint64)
    for word in words:
        table[slot(word, multiplier)] = word << 32
    short = [int.from_bytes(text[:3], "little") << 40 for text in encoded if len(text) == 4]
    padded = np.zeros((len(hints), max(map(len, hints))), np.uint8)
    for row, text in enumerate(encoded):
        padded[row, : len(text)] = np.frombuffer(text, np.uint8)
    lengths = np.array(list(map(len, encoded)), np.int64)
    return table, np.uint64(multiplier), np.uint64(short[0] if short else 1), padded, lengths


HINT_TABLE = _hint_table(ERROR_HINTS + SOURCE_HINTS)


@numba.njit(cache=True, nogil=True, inline="always")
def _lower(byte):  # pragma: no cover - compiled
    return byte + 32 if 65 <= byte <= 90 else byte


@numba.njit(cache=True, nogil=True)
def _hint_at(data, at, end, hints, lengths):  # pragma: no cover - compiled
    """Whether a hint starts at ``data[at]`` (ignoring ASCII case)."""
    for h in range(len(hints)):
        if at + lengths[h] > end:
            continue
        same = True
        for j in range(lengths[h]):
            if _lower(data[at + j]) != hints[h, j]:
                same = False
                break
        if same:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _wide_hint(data, begin, end):  # pragma: no cover - compiled
    """Whether the text holds U+0130 or U+212A (UTF-8 C4 B0, E2 84 AA): ``str.lower`` turns them into ASCII."""
    for k in range(begin, end - 1):
        if data[k] == 0xC4 and data[k + 1] == 0xB0:
            return True
        if data[k] == 0xE2 and k + 2 < end and data[k + 1] == 0x84 and data[k + 2] == 0xAA:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _normalized(data, begin, end, whitespace):  # pragma: no cover - compiled
    """(words, hash of the normalized text: words lowercased, joined by one space), byte by byte: what
    :func:`_scan` reads eight bytes at a time where the text is its own normalized form but for case."""
    state, word, fill, length, inside, count = np.uint64(0), np.uint64(0), 0, 0, False, 0
    for k in range(begin, end):
        byte = data[k]
        if whitespace[byte]:
            inside = False
            continue
        emit = 1
        if not inside:
            inside = True
            if count:  # the space before the word
                word |= np.uint64(32) << np.uint64(8 * fill)
                fill += 1
                if fill == 8:
                    state, word, fill = swar.mix(state, word), np.uint64(0), 0
                emit += 1
            count += 1
        word |= np.uint64(_lower(byte)) << np.uint64(8 * fill)
        fill += 1
        if fill == 8:
            state, word, fill = swar.mix(state, word), np.uint64(0), 0
        length += emit
    if fill:
        state = swar.mix(state, word)
    return count, swar.finish(state, length)


@numba.njit(cache=True, nogil=True)
def _scan(data, offsets, whitespace, grams, multiplier, short, hints, lengths):  # pragma: no cover - compiled
    n = len(offsets) - 1
    ascii_ = np.ones(n, np.bool_)
    printable = np.zeros(n, np.bool_)
    brackets = np.zeros(n, np.int64)
    starts = np.zeros(n, np.int64)
    ends = np.zeros(n, np.int64)
    words = np.zeros(n, np.int64)
    hashes = np.empty(n, np.uint64)
    hinted = np.zeros(n, np.bool_)
    top, slot = np.uint64(0xFFFFFFFF00000000), np.uint64(64 - _SLOT_BITS)
    tail = np.uint64(0xFFFFFF0000000000)  # bytes 1-3 of a window
    for i in range(n):
        begin, end = offsets[i], offsets[i + 1]
        high_any, shown, odd = np.uint64(0), np.uint64(0), np.uint64(0)
        count, square, opened, closed = 0, 0, 0, 0
        before = swar.HIGH  # the text's start counts as a space
        previous, state = np.uint64(0), np.uint64(0)  # the last eight bytes lowercased; the hash
        hint = False
        k = begin
        while k < end:
            word, valid = swar.load_text(data, k, end)
            high, low7 = word & swar.HIGH, word & swar.LOW7
            above = swar.at_least(low7, 33)
            space = ~(high | above) & valid  # bytes 0-32 (other than space and ASCII whitespace: odd)
            after = (space << np.uint64(8)) | (before >> np.uint64(56))
            count += swar.lanes(valid & ~space & after)
            odd |= (space & ~swar.at_least(low7, 32)) | (space & after)  # not its own normalized form
            before = space
            high_any |= high
            shown |= above & ~high
            square += swar.lanes(swar.equal(word, 91))  # [
            less = swar.equal(word, 60)  # <
            if less:
                for j in range(8):
                    at = k + j
                    if less >> np.uint64(8 * j + 7) & np.uint64(1) and at + 3 < end and data[at + 3] == 62:
                        if data[at + 1] == 115 and data[at + 2] == 116:  # <st>
                            opened += 1
                        elif data[at + 1] == 101 and data[at + 2] == 100:  # <ed>
                            closed += 1
            lower = word | ((~high & swar.at_least(low7, 65) & ~swar.at_least(low7, 91)) >> np.uint64(2))
            state = swar.mix(state, lower)
            # every other four-byte window starting at k - 3 to k + 4, each in the top half of a word; the
            # table holds each hint's bytes 0-3 and 1-4, so a hint at either parity meets one of them,
            # but for the four-letter hint "list" (its "lis" in bytes 1-3 of a window stands in)
            wide = (previous >> np.uint64(40)) | (lower << np.uint64(24))  # bytes k - 3 to k + 4
            found = False
            for j in range(0, 8, 2):
                window = (
                    (wide << np.uint64(32 - 8 * j)) & top if j < 3 else (lower << np.uint64(56 - 8 * j)) & top
                )
                found |= (grams[(window * multiplier) >> slot] == window) | ((window & tail) == short)
            if found and not hint:
                for at in range(max(k - 4, begin), min(k + 5, end)):
                    hint = hint or _hint_at(data, at, end, hints, lengths)
            previous = lower
            k += 8
        if odd or (end > begin and data[end - 1] == 32):
            count, hashes[i] = _normalized(data, begin, end, whitespace)
        else:
            hashes[i] = swar.finish(state, end - begin)
        if high_any and not hint:
            hint = _wide_hint(data, begin, end)
        ascii_[i], printable[i], hinted[i] = high_any == 0, shown != 0, hint
        words[i], brackets[i], starts[i], ends[i] = count, square, opened, closed
    return ascii_, printable, brackets, starts, ends, words, hashes, hinted


@dataclass
class TurnScan:
    """What one pass over each text finds: ASCII only; any ASCII character from ``!`` to DEL (one that
    ``str.strip`` keeps); the counts of ``[``, ``<st>`` and ``<ed>``; whitespace words; the hash of the
    normalized text (exact for ASCII texts; see :func:`normalized_hashes`); and whether a hint word of
    :data:`~svit_data.quality.text.ERROR_HINTS` or :data:`~svit_data.quality.text.SOURCE_HINTS` occurs
    ignoring ASCII case, or ``İ`` or the Kelvin sign (the two characters ``str.lower`` turns into ASCII
    letters): a superset of the texts where a hint occurs in ``text.lower()``."""

    ascii: np.ndarray
    printable: np.ndarray
    brackets: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    words: np.ndarray
    hashes: np.ndarray
    hinted: np.ndarray

    def patch(self, at: np.ndarray, other: TurnScan) -> None:
        """Replace the entries at ``at`` by ``other``'s (texts that changed)."""
        for name in self.__dataclass_fields__:
            getattr(self, name)[at] = getattr(other, name)


def scan(values: pa.Array) -> TurnScan:
    """One pass over each text's bytes, eight at a time (:mod:`~svit_data.quality.swar`); texts that are
    not their own normalized form but for case (tabs, newlines, control bytes, two spaces in a row, a
    space at either end) have their words and hash read again byte by byte."""
    data, offsets = text_bytes(values)
    return TurnScan(*_scan(data, offsets, WHITESPACE, *HINT_TABLE))
