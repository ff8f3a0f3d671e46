"""A compiled reader of SVIT records: the bytes of a JSON array straight into column buffers.

The standard library's decoder makes a dict, a list and a str for every record, turn and text, and ingest
then copies them into columns: about 60% of ingest's CPU on the released files. :func:`parse_records`
reads the common shape instead, ``{"image_id": int, "conversations": [{"content": [{"from": "user" |
"gpt", "value": str}, ...]}, ...], "width"/"height": int | null}`` with its keys in any order, and
writes each turn's speaker code and UTF-8 text (escapes decoded, the bytes checked as UTF-8) and each
sample's turn span, ids and size into preallocated arrays, splitting per-QA conversations into one
sample per pair exactly as :func:`svit_data.ingest_columns.add_record` does.

Anything else (another key, a float, a lone surrogate, malformed JSON, ...) is not decided here: the
reader stops at that element with :data:`OTHER` and the caller decodes it with the standard library,
which accepts or reports it exactly as before. The kernel is right only where it answers; every answer
it gives is checked against the standard library's in the tests (``tests/svit_data/test_svitscan.py``).
"""

from __future__ import annotations

import numba
import numpy as np

from svit_data.quality.swar import HIGH, LOW7, at_least, equal, load8, store8, trailing_zeros

# statuses of parse_records
NEED_MORE = 0  # the element at pos is cut by the end of the buffer: call again with more bytes
BATCH_FULL = 1  # the batch holds enough samples: flush, then call again at pos
OUT_FULL = 2  # an output array is full: grow them, then call again at pos
OTHER = 3  # the element at pos is not in the compiled shape: the caller decodes it
END = 4  # the array (or the range) ends; pos is after it
BROKEN = 5  # malformed JSON between elements at pos: the standard library's reader reports it

NONE = np.iinfo(np.int64).min  # a width or height that is null or absent
USER_CODE, GPT_CODE = 0, 1
SPEAKERS = ("user", "gpt")

# counters (the ``state`` array): turns, text bytes and samples written
TURNS, TEXT_BYTES, SAMPLES = 0, 1, 2

_OK, _CUT = -1, -2  # internal results of the helpers below (a position is >= 0)
_KEYS = (b"image_id", b"conversations", b"width", b"height", b"content", b"from", b"value")
_INT32 = 1 << 31
_PLAIN = np.array([32 <= c < 128 and c not in (34, 92) for c in range(256)], np.bool_)  # copied as they are


def key_codes() -> np.ndarray:
    """The known keys as one padded byte matrix (numba reads it; index = key code)."""
    table = np.zeros((len(_KEYS), 16), np.uint8)
    for k, key in enumerate(_KEYS):
        table[k, : len(key)] = np.frombuffer(key, np.uint8)
        table[k, 15] = len(key)
    return table


@numba.njit(cache=True, nogil=True, inline="always")
def _ws(buf, i, stop):  # pragma: no cover - compiled
    while i < stop:
        c = buf[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _key(buf, i, stop, keys):  # pragma: no cover - compiled
    """At the byte after a key's opening quote: (key code or -1 for another key, position after the closing
    quote), or (_CUT, i) when the buffer ends first; escapes make it another key."""
    start = i
    while i < stop:
        c = buf[i]
        if c == 34:
            length = i - start
            for k in range(keys.shape[0]):
                if keys[k, 15] == length:
                    same = True
                    for j in range(length):
                        if buf[start + j] != keys[k, j]:
                            same = False
                            break
                    if same:
                        return k, i + 1
            return -1, i + 1
        if c == 92 or c < 32:
            return -1, i
        i += 1
    return _CUT, i


@numba.njit(cache=True, nogil=True)
def _int(buf, i, stop):  # pragma: no cover - compiled
    """A JSON integer at ``i`` that fits int64 with room: (value, position after it, status); status _OK,
    _CUT (the buffer ends inside it) or -3 (not such an integer: a float, a leading zero, too long...)."""
    negative = False
    if i < stop and buf[i] == 45:
        negative = True
        i += 1
    start, value = i, 0
    while i < stop and 48 <= buf[i] <= 57:
        value = value * 10 + (buf[i] - 48)
        i += 1
    if i >= stop:
        return 0, i, _CUT
    digits = i - start
    c = buf[i]
    if digits == 0 or digits > 17 or (digits > 1 and buf[start] == 48) or c == 46 or c == 101 or c == 69:
        return 0, i, -3
    return (-value if negative else value), i, _OK


@numba.njit(cache=True, nogil=True)
def _utf8_length(buf, i, stop):  # pragma: no cover - compiled
    """Length of the valid UTF-8 sequence of a non-ASCII lead byte at ``i``; 0 if invalid, -1 if cut."""
    c = buf[i]
    if 0xC2 <= c <= 0xDF:
        n, low, high = 2, 0x80, 0xBF
    elif 0xE0 <= c <= 0xEF:
        n = 3
        low = 0xA0 if c == 0xE0 else 0x80
        high = 0x9F if c == 0xED else 0xBF
    elif 0xF0 <= c <= 0xF4:
        n = 4
        low = 0x90 if c == 0xF0 else 0x80
        high = 0x8F if c == 0xF4 else 0xBF
    else:
        return 0
    if i + n > stop:
        return -1
    if not (low <= buf[i + 1] <= high):
        return 0
    for j in range(2, n):
        if not (0x80 <= buf[i + j] <= 0xBF):
            return 0
    return n


@numba.njit(cache=True, nogil=True)
def _hex4(buf, i):  # pragma: no cover - compiled
    value = 0
    for j in range(4):
        c = buf[i + j]
        if 48 <= c <= 57:
            d = c - 48
        elif 97 <= c <= 102:
            d = c - 87
        elif 65 <= c <= 70:
            d = c - 55
        else:
            return -1
        value = value * 16 + d
    return value


@numba.njit(cache=True, nogil=True)
def _text(buf, i, stop, out, n):  # pragma: no cover - compiled
    """Copy the JSON string whose opening quote is before ``i`` into ``out`` from ``n`` as UTF-8; (status,
    position after the closing quote, bytes written up to). Status _OK, _CUT, OTHER (not decided here)
    or OUT_FULL. No input byte makes more than one output byte (an escape is shorter than what it
    stands for), so reading input up to the free room's length (less the 8 bytes one word, escape or
    character may write past it) needs no other bound check. Plain ASCII is copied a word at a time
    (:mod:`svit_data.quality.swar`)."""
    end = min(stop, i + out.shape[0] - n - 8)
    while i < end:
        while i + 8 <= end:  # eight bytes at a time up to the first byte that is not copied as it is
            word = load8(buf, i)
            store8(out, n, word)
            special = (word & HIGH) | (~at_least(word & LOW7, 32) & HIGH) | equal(word, 34) | equal(word, 92)
            if special:
                skip = np.int64(trailing_zeros(special) >> np.uint64(3))
                i += skip
                n += skip
                break
            i += 8
            n += 8
        while i < end and _PLAIN[buf[i]]:
            out[n] = buf[i]
            i += 1
            n += 1
        if i >= end:
            break
        c = buf[i]
        if c == 34:
            return _OK, i + 1, n
        if c == 92:
            if i + 1 >= stop:
                return _CUT, i, n
            e = buf[i + 1]
            if e == 117:  # \uXXXX
                if i + 6 > stop:
                    return _CUT, i, n
                code = _hex4(buf, i + 2)
                if code < 0 or 0xDC00 <= code <= 0xDFFF:
                    return OTHER, i, n
                if 0xD800 <= code <= 0xDBFF:  # a pair, or the standard library decides
                    if i + 12 > stop:
                        return _CUT, i, n
                    if buf[i + 6] != 92 or buf[i + 7] != 117:
                        return OTHER, i, n
                    low = _hex4(buf, i + 8)
                    if not 0xDC00 <= low <= 0xDFFF:
                        return OTHER, i, n
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                i += 6
                if code < 0x80:
                    out[n] = code
                    n += 1
                elif code < 0x800:
                    out[n] = 0xC0 | (code >> 6)
                    out[n + 1] = 0x80 | (code & 0x3F)
                    n += 2
                elif code < 0x10000:
                    out[n] = 0xE0 | (code >> 12)
                    out[n + 1] = 0x80 | ((code >> 6) & 0x3F)
                    out[n + 2] = 0x80 | (code & 0x3F)
                    n += 3
                else:
                    out[n] = 0xF0 | (code >> 18)
                    out[n + 1] = 0x80 | ((code >> 12) & 0x3F)
                    out[n + 2] = 0x80 | ((code >> 6) & 0x3F)
                    out[n + 3] = 0x80 | (code & 0x3F)
                    n += 4
                continue
            if e == 110:
                out[n] = 10
            elif e == 34 or e == 92 or e == 47:
                out[n] = e
            elif e == 116:
                out[n] = 9
            elif e == 114:
                out[n] = 13
            elif e == 98:
                out[n] = 8
            elif e == 102:
                out[n] = 12
            else:
                return OTHER, i, n
            n += 1
            i += 2
        elif c < 32:
            return OTHER, i, n
        else:
            length = _utf8_length(buf, i, stop)
            if length == 0:
                return OTHER, i, n
            if length < 0:
                return _CUT, i, n
            out[n : n + length] = buf[i : i + length]
            n += length
            i += length
    return (_CUT if end == stop else OUT_FULL), i, n


@numba.njit(cache=True, nogil=True)
def _speaker(buf, i, stop):  # pragma: no cover - compiled
    """At a value that should be "user" or "gpt": (code, position after it), (-1, i) for anything else or
    (_CUT, i) when cut."""
    if i + 6 > stop:
        return _CUT, i
    if buf[i] != 34:
        return -1, i
    if (
        buf[i + 1] == 117
        and buf[i + 2] == 115
        and buf[i + 3] == 101
        and buf[i + 4] == 114
        and buf[i + 5] == 34
    ):
        return USER_CODE, i + 6
    if buf[i + 1] == 103 and buf[i + 2] == 112 and buf[i + 3] == 116 and buf[i + 4] == 34:
        return GPT_CODE, i + 5
    return -1, i


@numba.njit(cache=True, nogil=True)
def _turns(buf, i, stop, keys, codes, ends, text, nt, nb):  # pragma: no cover - compiled
    """The turns of one ``content`` array, ``[`` before ``i``; (status, position after ``]``, turns,
    bytes). Status _OK, _CUT, OTHER or OUT_FULL."""
    i = _ws(buf, i, stop)
    if i < stop and buf[i] == 93:
        return _OK, i + 1, nt, nb
    while True:
        i = _ws(buf, i, stop)
        if i >= stop:
            return _CUT, i, nt, nb
        if buf[i] != 123:
            return OTHER, i, nt, nb
        if nt >= codes.shape[0]:
            return OUT_FULL, i, nt, nb
        i += 1
        code, start, end = -1, -1, -1
        while True:  # the turn's members
            i = _ws(buf, i, stop)
            if i >= stop:
                return _CUT, i, nt, nb
            if buf[i] != 34:
                return OTHER, i, nt, nb
            key, i = _key(buf, i + 1, stop, keys)
            if key == _CUT:
                return _CUT, i, nt, nb
            i = _ws(buf, i, stop)
            if i >= stop:
                return _CUT, i, nt, nb
            if buf[i] != 58:
                return OTHER, i, nt, nb
            i = _ws(buf, i + 1, stop)
            if key == 5 and code < 0:  # from
                code, i = _speaker(buf, i, stop)
                if code == _CUT:
                    return _CUT, i, nt, nb
                if code < 0:
                    return OTHER, i, nt, nb
            elif key == 6 and start < 0:  # value
                if i >= stop:
                    return _CUT, i, nt, nb
                if buf[i] != 34:
                    return OTHER, i, nt, nb
                start = nb
                status, i, nb = _text(buf, i + 1, stop, text, nb)
                if status != _OK:
                    return status, i, nt, nb
                end = nb
            else:
                return OTHER, i, nt, nb
            i = _ws(buf, i, stop)
            if i >= stop:
                return _CUT, i, nt, nb
            if buf[i] == 44:
                i += 1
            elif buf[i] == 125:
                i += 1
                break
            else:
                return OTHER, i, nt, nb
        if code < 0 or start < 0:
            return OTHER, i, nt, nb
        codes[nt] = code
        ends[nt] = end
        nt += 1
        i = _ws(buf, i, stop)
        if i >= stop:
            return _CUT, i, nt, nb
        if buf[i] == 44:
            i += 1
        elif buf[i] == 93:
            return _OK, i + 1, nt, nb
        else:
            return OTHER, i, nt, nb


@numba.njit(cache=True, nogil=True)
def _samples(
    codes, first, turns, conversation, k, per_qa, s_end, s_conv, s_pairs, s_first, s_k, ns
):  # pragma: no cover - compiled
    """Append the samples of one conversation (turns ``first:first+turns``): one per QA pair when ``per_qa``
    and its turns alternate user, gpt, ...; else one. Returns (samples, k), or (-1, k) when full."""
    alternate = turns % 2 == 0
    if per_qa and alternate:
        for t in range(turns):
            if codes[first + t] != t % 2:
                alternate = False
                break
    if per_qa and alternate:
        count = turns // 2
        if ns + count > s_end.shape[0]:
            return -1, k
        for p in range(count):
            s_end[ns] = first + 2 * p + 2
            s_conv[ns] = conversation
            s_pairs[ns] = count
            s_first[ns] = 2 * p
            s_k[ns] = k
            ns += 1
            k += 1
        return ns, k
    if ns + 1 > s_end.shape[0]:
        return -1, k
    s_end[ns] = first + turns
    s_conv[ns] = conversation
    s_pairs[ns] = -1 if per_qa else turns // 2
    s_first[ns] = 0
    s_k[ns] = k
    return ns + 1, k + 1


@numba.njit(cache=True, nogil=True)
def _record(buf, i, stop, keys, per_qa, out, nt, nb, ns):  # pragma: no cover - compiled
    """One record, ``{`` at ``i``: (status, position after ``}``, turns, bytes, samples, image_id, width,
    height). Status _OK, _CUT, OTHER or OUT_FULL."""
    codes, ends, text, s_end, s_conv, s_pairs, s_first, s_k = out
    image_id, width, height = NONE, NONE, NONE
    seen = 0  # bit per record key met
    k = 0
    i += 1
    while True:
        i = _ws(buf, i, stop)
        if i >= stop:
            return _CUT, i, nt, nb, ns, image_id, width, height
        if buf[i] != 34:
            return OTHER, i, nt, nb, ns, image_id, width, height
        key, i = _key(buf, i + 1, stop, keys)
        if key == _CUT:
            return _CUT, i, nt, nb, ns, image_id, width, height
        if key < 0 or key > 3 or seen & (1 << key):
            return OTHER, i, nt, nb, ns, image_id, width, height
        seen |= 1 << key
        i = _ws(buf, i, stop)
        if i >= stop:
            return _CUT, i, nt, nb, ns, image_id, width, height
        if buf[i] != 58:
            return OTHER, i, nt, nb, ns, image_id, width, height
        i = _ws(buf, i + 1, stop)
        if i >= stop:
            return _CUT, i, nt, nb, ns, image_id, width, height
        if key == 1:  # conversations
            if buf[i] != 91:
                return OTHER, i, nt, nb, ns, image_id, width, height
            i = _ws(buf, i + 1, stop)
            if i >= stop:
                return _CUT, i, nt, nb, ns, image_id, width, height
            conversation = 0
            if buf[i] == 93:
                i += 1
            else:
                while True:
                    i = _ws(buf, i, stop)
                    if i >= stop:
                        return _CUT, i, nt, nb, ns, image_id, width, height
                    if buf[i] != 123:
                        return OTHER, i, nt, nb, ns, image_id, width, height
                    i = _ws(buf, i + 1, stop)
                    if i >= stop:
                        return _CUT, i, nt, nb, ns, image_id, width, height
                    if buf[i] != 34:
                        return OTHER, i, nt, nb, ns, image_id, width, height
                    member, i = _key(buf, i + 1, stop, keys)
                    if member == _CUT:
                        return _CUT, i, nt, nb, ns, image_id, width, height
                    if member != 4:  # only "content"
                        return OTHER, i, nt, nb, ns, image_id, width, height
                    i = _ws(buf, i, stop)
                    if i < stop and buf[i] != 58:
                        return OTHER, i, nt, nb, ns, image_id, width, height
                    i = _ws(buf, i + 1, stop)
                    if i >= stop:
                        return _CUT, i, nt, nb, ns, image_id, width, height
                    if buf[i] != 91:
                        return OTHER, i, nt, nb, ns, image_id, width, height
                    first = nt
                    status, i, nt, nb = _turns(buf, i + 1, stop, keys, codes, ends, text, nt, nb)
                    if status != _OK:
                        return status, i, nt, nb, ns, image_id, width, height
                    ns, k = _samples(
                        codes,
                        first,
                        nt - first,
                        conversation,
                        k,
                        per_qa,
                        s_end,
                        s_conv,
                        s_pairs,
                        s_first,
                        s_k,
                        ns,
                    )
                    if ns < 0:
                        return OUT_FULL, i, nt, nb, ns, image_id, width, height
                    conversation += 1
                    i = _ws(buf, i, stop)
                    if i >= stop:
                        return _CUT, i, nt, nb, ns, image_id, width, height
                    if buf[i] != 125:  # the conversation object ends after content
                        return OTHER, i, nt, nb, ns, image_id, width, height
                    i = _ws(buf, i + 1, stop)
                    if i >= stop:
                        return _CUT, i, nt, nb, ns, image_id, width, height
                    if buf[i] == 44:
                        i += 1
                    elif buf[i] == 93:
                        i += 1
                        break
                    else:
                        return OTHER, i, nt, nb, ns, image_id, width, height
        elif key == 0 or buf[i] != 110:  # image_id, or a width or height that is not null
            value, i, status = _int(buf, i, stop)
            if status != _OK:
                return (_CUT if status == _CUT else OTHER), i, nt, nb, ns, image_id, width, height
            if key == 0:
                image_id = value
            elif -_INT32 <= value < _INT32:
                if key == 2:
                    width = value
                else:
                    height = value
            else:
                return OTHER, i, nt, nb, ns, image_id, width, height
        else:  # null
            if i + 4 > stop:
                return _CUT, i, nt, nb, ns, image_id, width, height
            if buf[i + 1] != 117 or buf[i + 2] != 108 or buf[i + 3] != 108:
                return OTHER, i, nt, nb, ns, image_id, width, height
            i += 4
        i = _ws(buf, i, stop)
        if i >= stop:
            return _CUT, i, nt, nb, ns, image_id, width, height
        if buf[i] == 44:
            i += 1
        elif buf[i] == 125:
            if seen & 3 != 3:  # image_id and conversations are required
                return OTHER, i, nt, nb, ns, image_id, width, height
            return _OK, i + 1, nt, nb, ns, image_id, width, height
        else:
            return OTHER, i, nt, nb, ns, image_id, width, height


@numba.njit(cache=True, nogil=True)
def parse_records(
    buf, pos, stop, final, bounded, until, per_qa, limit, keys, sizes, record, out, rows, state
):  # pragma: no cover - compiled
    """Read the top-level array's elements from ``buf[pos:stop]`` (``pos`` at an element's start, after
    '[' or ','), appending to ``out`` (per turn: speaker code, end of its text; the texts; per sample:
    end turn, conversation, its QA count or -1, first turn in its conversation, number in its record)
    and ``rows`` (per sample: record index, image_id, width, height) after the counters in ``state``.

    ``final``: no bytes come after ``stop``; ``bounded``: the range ends there (after an element's ',').
    ``until``: the range ends after the first ',' between elements at this offset of ``buf`` or later
    (:func:`svit_data.formats.jsonsplit.open_range`).
    ``limit``: return :data:`BATCH_FULL` once this many samples are written. ``sizes`` (sorted image ids,
    widths, heights) fill a size the record leaves null. Returns (status, pos, record index).
    """
    s_rec, s_img, s_width, s_height = rows
    keys_sorted, widths, heights = sizes
    nt, nb, ns = state[TURNS], state[TEXT_BYTES], state[SAMPLES]
    while True:
        i = _ws(buf, pos, stop)
        if i >= stop:
            if not final:
                return NEED_MORE, pos, record
            return (END if bounded else BROKEN), i, record
        if buf[i] != 123:
            return OTHER, i, record
        status, j, nt2, nb2, ns2, image_id, width, height = _record(
            buf, i, stop, keys, per_qa, out, nt, nb, ns
        )
        if status == _OK:
            j = _ws(buf, j, stop)
            if j >= stop:
                status = _CUT
            elif buf[j] != 44 and buf[j] != 93:
                return BROKEN, i, record
        if status == _CUT:
            return (BROKEN if final else NEED_MORE), i, record
        if status != _OK:
            return status, i, record
        if width == NONE and keys_sorted.shape[0]:
            at = np.searchsorted(keys_sorted, image_id)
            if at < keys_sorted.shape[0] and keys_sorted[at] == image_id:
                width, height = widths[at], heights[at]
        for s in range(ns, ns2):
            s_rec[s] = record
            s_img[s] = image_id
            s_width[s] = width
            s_height[s] = height
        nt, nb, ns = nt2, nb2, ns2
        state[TURNS], state[TEXT_BYTES], state[SAMPLES] = nt, nb, ns
        record += 1
        if buf[j] == 93 or j >= until:
            return END, j + 1, record
        pos = j + 1
        if ns >= limit:
            return BATCH_FULL, pos, record


@numba.njit(cache=True, nogil=True)
def element_end(buf, i, stop):  # pragma: no cover - compiled
    """Where the JSON value at ``i`` ends, by its strings and brackets only (the standard library then
    decodes it); -1 when the buffer ends first, -2 when it closes a bracket it did not open."""
    depth, start = 0, i
    while i < stop:
        c = buf[i]
        if c == 34:
            i += 1
            while i < stop:
                c = buf[i]
                if c == 92:
                    i += 2
                    continue
                i += 1
                if c == 34:
                    break
            else:
                return -1
            if depth == 0:
                return i
            continue
        if c == 91 or c == 123:
            depth += 1
        elif c == 93 or c == 125:
            if depth == 0:
                return -2 if i == start else i
            depth -= 1
            if depth == 0:
                return i + 1
        elif depth == 0 and (c == 44 or c == 32 or c == 10 or c == 13 or c == 9):
            return i
        i += 1
    return -1
