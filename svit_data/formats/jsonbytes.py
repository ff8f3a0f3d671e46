"""Compiled helpers over the bytes of JSON text (numba): whitespace, integers, strings and where an
element ends. :mod:`svit_data.formats.svitscan` reads SVIT records with them.

Each helper answers only what it can decide from the bytes it is given: a value cut by the end of the
buffer is :data:`CUT` (the caller reads on), and anything it does not decode (an escape it does not
know, a lone surrogate, a control character, a byte that is not UTF-8) is :data:`OTHER`, left to the
standard library, which accepts or reports it.
"""

from __future__ import annotations

import numba
import numpy as np

from svit_data.quality.swar import HIGH, LOW7, at_least, equal, load8, store8, trailing_zeros

OK, CUT = -1, -2  # a position is >= 0
OTHER = 3  # not decided here (svitscan.OTHER)
OUT_FULL = 2  # the output array is full (svitscan.OUT_FULL)
_PLAIN = np.array([32 <= c < 128 and c not in (34, 92) for c in range(256)], np.bool_)  # copied as they are


@numba.njit(cache=True, nogil=True, inline="always")
def skip_ws(buf, i, stop):  # pragma: no cover - compiled
    while i < stop:
        c = buf[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def integer(buf, i, stop):  # pragma: no cover - compiled
    """A JSON integer at ``i`` that fits int64 with room: (value, position after it, status); status OK,
    CUT (the buffer ends inside it) or -3 (not such an integer: a float, a leading zero, too long...)."""
    negative = False
    if i < stop and buf[i] == 45:
        negative = True
        i += 1
    start, value = i, 0
    while i < stop and 48 <= buf[i] <= 57:
        value = value * 10 + (buf[i] - 48)
        i += 1
    if i >= stop:
        return 0, i, CUT
    digits = i - start
    c = buf[i]
    if digits == 0 or digits > 17 or (digits > 1 and buf[start] == 48) or c == 46 or c == 101 or c == 69:
        return 0, i, -3
    return (-value if negative else value), i, OK


@numba.njit(cache=True, nogil=True)
def utf8_length(buf, i, stop):  # pragma: no cover - compiled
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
def hex4(buf, i):  # pragma: no cover - compiled
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
def copy_string(buf, i, stop, out, n):  # pragma: no cover - compiled
    """Copy the JSON string whose opening quote is before ``i`` into ``out`` from ``n`` as UTF-8; (status,
    position after the closing quote, bytes written up to). Status OK, CUT, OTHER (not decided here)
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
            return OK, i + 1, n
        if c == 92:
            if i + 1 >= stop:
                return CUT, i, n
            e = buf[i + 1]
            if e == 117:  # \uXXXX
                if i + 6 > stop:
                    return CUT, i, n
                code = hex4(buf, i + 2)
                if code < 0 or 0xDC00 <= code <= 0xDFFF:
                    return OTHER, i, n
                if 0xD800 <= code <= 0xDBFF:  # a pair, or the standard library decides
                    if i + 12 > stop:
                        return CUT, i, n
                    if buf[i + 6] != 92 or buf[i + 7] != 117:
                        return OTHER, i, n
                    low = hex4(buf, i + 8)
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
            length = utf8_length(buf, i, stop)
            if length == 0:
                return OTHER, i, n
            if length < 0:
                return CUT, i, n
            out[n : n + length] = buf[i : i + length]
            n += length
            i += length
    return (CUT if end == stop else OUT_FULL), i, n


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
