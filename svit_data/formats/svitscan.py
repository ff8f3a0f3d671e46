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

from svit_data.formats import jsonbytes
from svit_data.formats.jsonbytes import CUT as _CUT
from svit_data.formats.jsonbytes import OK as _OK
from svit_data.formats.jsonbytes import copy_string, integer, skip_ws

# statuses of parse_records
NEED_MORE = 0  # the element at pos is cut by the end of the buffer: call again with more bytes
BATCH_FULL = 1  # the batch holds enough samples: flush, then call again at pos
OUT_FULL = jsonbytes.OUT_FULL  # an output array is full: grow them, then call again at pos
OTHER = jsonbytes.OTHER  # the element at pos is not in the compiled shape: the caller decodes it
END = 4  # the array (or the range) ends; pos is after it
BROKEN = 5  # malformed JSON between elements at pos: the standard library's reader reports it

NONE = np.iinfo(np.int64).min  # a width or height that is null or absent
USER_CODE, GPT_CODE = 0, 1
SPEAKERS = ("user", "gpt")

# counters (the ``state`` array): turns, text bytes and samples written
TURNS, TEXT_BYTES, SAMPLES = 0, 1, 2

_KEYS = (b"image_id", b"conversations", b"width", b"height", b"content", b"from", b"value")
IMAGE_ID, CONVERSATIONS, WIDTH, HEIGHT, CONTENT, FROM, VALUE = range(
    len(_KEYS)
)  # key codes: record keys first
_INT32 = 1 << 31


def key_codes() -> np.ndarray:
    """The known keys as one padded byte matrix (numba reads it; index = key code)."""
    table = np.zeros((len(_KEYS), 16), np.uint8)
    for k, key in enumerate(_KEYS):
        table[k, : len(key)] = np.frombuffer(key, np.uint8)
        table[k, 15] = len(key)
    return table


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


@numba.njit(cache=True, nogil=True, inline="always")
def _expect(buf, i, stop, char):  # pragma: no cover - compiled
    """Past whitespace, the byte ``char``: (_OK, position after it), or (_CUT or OTHER, where it stopped)."""
    i = skip_ws(buf, i, stop)
    if i >= stop:
        return _CUT, i
    return (_OK, i + 1) if buf[i] == char else (OTHER, i)


@numba.njit(cache=True, nogil=True)
def _member(buf, i, stop, keys):  # pragma: no cover - compiled
    """Past whitespace, a member's key and ':': (status, key code or -1, its value's first byte)."""
    status, i = _expect(buf, i, stop, 34)
    if status != _OK:
        return status, -1, i
    key, i = _key(buf, i, stop, keys)
    if key == _CUT:
        return _CUT, -1, i
    status, i = _expect(buf, i, stop, 58)
    if status != _OK:
        return status, -1, i
    i = skip_ws(buf, i, stop)
    return (_OK if i < stop else _CUT), key, i


@numba.njit(cache=True, nogil=True, inline="always")
def _after(buf, i, stop, close):  # pragma: no cover - compiled
    """Past whitespace, ',' (more follows) or ``close``: (status, position after it, whether it closed)."""
    i = skip_ws(buf, i, stop)
    if i >= stop:
        return _CUT, i, False
    if buf[i] == 44:
        return _OK, i + 1, False
    return (_OK, i + 1, True) if buf[i] == close else (OTHER, i, False)


@numba.njit(cache=True, nogil=True)
def _turns(buf, i, stop, keys, codes, ends, text, nt, nb):  # pragma: no cover - compiled
    """The turns of one ``content`` array, ``[`` before ``i``; (status, position after ``]``, turns,
    bytes). Status _OK, _CUT, OTHER or OUT_FULL."""
    i = skip_ws(buf, i, stop)
    if i < stop and buf[i] == 93:
        return _OK, i + 1, nt, nb
    while True:
        status, i = _expect(buf, i, stop, 123)
        if status != _OK:
            return status, i, nt, nb
        if nt >= codes.shape[0]:
            return OUT_FULL, i, nt, nb
        code, start, end = -1, -1, -1
        closed = False
        while not closed:  # the turn's members
            status, key, i = _member(buf, i, stop, keys)
            if status != _OK:
                return status, i, nt, nb
            if key == FROM and code < 0:
                code, i = _speaker(buf, i, stop)
                if code < 0:
                    return (_CUT if code == _CUT else OTHER), i, nt, nb
            elif key == VALUE and start < 0 and buf[i] == 34:
                start = nb
                status, i, nb = copy_string(buf, i + 1, stop, text, nb)
                if status != _OK:
                    return status, i, nt, nb
                end = nb
            else:
                return OTHER, i, nt, nb
            status, i, closed = _after(buf, i, stop, 125)
            if status != _OK:
                return status, i, nt, nb
        if code < 0 or start < 0:
            return OTHER, i, nt, nb
        codes[nt] = code
        ends[nt] = end
        nt += 1
        status, i, closed = _after(buf, i, stop, 93)
        if status != _OK or closed:
            return status, i, nt, nb


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
def _conversations(buf, i, stop, keys, per_qa, out, nt, nb, ns):  # pragma: no cover - compiled
    """A record's ``[{"content": [turns]}, ...]`` at ``i`` and its samples: (status, position after ``]``,
    turns, bytes, samples). Status _OK, _CUT, OTHER or OUT_FULL."""
    codes, ends, text, s_end, s_conv, s_pairs, s_first, s_k = out
    status, i = _expect(buf, i, stop, 91)
    if status != _OK:
        return status, i, nt, nb, ns
    i = skip_ws(buf, i, stop)
    if i < stop and buf[i] == 93:  # no conversation
        return _OK, i + 1, nt, nb, ns
    conversation, k, closed = 0, 0, False
    while not closed:
        status, i = _expect(buf, i, stop, 123)
        if status != _OK:
            return status, i, nt, nb, ns
        status, member, i = _member(buf, i, stop, keys)
        if status == _OK and member != CONTENT:  # its only member
            status = OTHER
        if status == _OK:
            status, i = _expect(buf, i, stop, 91)
        if status != _OK:
            return status, i, nt, nb, ns
        first = nt
        status, i, nt, nb = _turns(buf, i, stop, keys, codes, ends, text, nt, nb)
        if status != _OK:
            return status, i, nt, nb, ns
        ns, k = _samples(
            codes, first, nt - first, conversation, k, per_qa, s_end, s_conv, s_pairs, s_first, s_k, ns
        )
        if ns < 0:
            return OUT_FULL, i, nt, nb, ns
        conversation += 1
        status, i = _expect(buf, i, stop, 125)
        if status == _OK:
            status, i, closed = _after(buf, i, stop, 93)
        if status != _OK:
            return status, i, nt, nb, ns
    return _OK, i, nt, nb, ns


@numba.njit(cache=True, nogil=True)
def _record(buf, i, stop, keys, per_qa, out, nt, nb, ns):  # pragma: no cover - compiled
    """One record, ``{`` at ``i``: (status, position after ``}``, turns, bytes, samples, image_id, width,
    height). Status _OK, _CUT, OTHER or OUT_FULL."""
    image_id, width, height = NONE, NONE, NONE
    seen = 0  # bit per record key met
    i += 1
    closed = False
    while not closed:
        status, key, i = _member(buf, i, stop, keys)
        if status == _OK and (key < 0 or key > HEIGHT or seen & (1 << key)):
            status = OTHER
        if status != _OK:
            return status, i, nt, nb, ns, image_id, width, height
        seen |= 1 << key
        if key == CONVERSATIONS:
            status, i, nt, nb, ns = _conversations(buf, i, stop, keys, per_qa, out, nt, nb, ns)
            if status != _OK:
                return status, i, nt, nb, ns, image_id, width, height
        elif key == IMAGE_ID or buf[i] != 110:  # image_id, or a width or height that is not null
            value, i, status = integer(buf, i, stop)
            if status == _OK and key != IMAGE_ID and not -_INT32 <= value < _INT32:
                status = OTHER
            if status != _OK:
                return (_CUT if status == _CUT else OTHER), i, nt, nb, ns, image_id, width, height
            if key == IMAGE_ID:
                image_id = value
            elif key == WIDTH:
                width = value
            else:
                height = value
        else:  # null
            if i + 4 > stop:
                return _CUT, i, nt, nb, ns, image_id, width, height
            if buf[i + 1] != 117 or buf[i + 2] != 108 or buf[i + 3] != 108:
                return OTHER, i, nt, nb, ns, image_id, width, height
            i += 4
        status, i, closed = _after(buf, i, stop, 125)
        if status != _OK:
            return status, i, nt, nb, ns, image_id, width, height
    required = (1 << IMAGE_ID) | (1 << CONVERSATIONS)
    if seen & required != required:
        return OTHER, i, nt, nb, ns, image_id, width, height
    return _OK, i, nt, nb, ns, image_id, width, height


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
        i = skip_ws(buf, pos, stop)
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
            j = skip_ws(buf, j, stop)
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
