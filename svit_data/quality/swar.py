"""Eight bytes at a time in one 64-bit integer, for compiled passes over text bytes (numba only).

A pass loads eight bytes of a text with :func:`load8` and tests them all at once: each test gives a
*mask*, the high bit (0x80) of every byte lane where the test holds, and :func:`lanes` counts them.
The tests are exact per lane (no carry crosses a lane): :func:`at_least` on the low seven bits of each
byte, :func:`equal` on the whole byte. Lanes are in text order from the low byte up (little-endian).
"""

from __future__ import annotations

import sys

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from svit_data.quality.intrinsic_util import array_and_index, element_pointer

if sys.byteorder != "little":  # pragma: no cover - every platform svit supports is little-endian
    raise ImportError("svit_data.quality.swar reads bytes as little-endian words")

ONES = np.uint64(0x0101010101010101)
HIGH = np.uint64(0x8080808080808080)
LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_FIN1 = np.uint64(0xBF58476D1CE4E5B9)
_FIN2 = np.uint64(0x94D049BB133111EB)


@intrinsic
def load8(typingctx, array, index):  # pragma: no cover - compiled
    """The eight bytes ``array[index:index + 8]`` of a one-dimensional uint8 array as one uint64, read
    at any alignment. Reads no bounds: ``index + 8 <= len(array)`` is the caller's to ensure."""
    if not array_and_index(array, index):
        return None

    def codegen(context, builder, signature, args):
        pointer = element_pointer(context, builder, signature, args)
        word = ir.IntType(64).as_pointer()
        return builder.load(builder.bitcast(pointer, word), align=1)

    return types.uint64(array, index), codegen


@intrinsic
def store8(typingctx, array, index, word):  # pragma: no cover - compiled
    """Write the uint64 ``word`` as the eight bytes ``array[index:index + 8]`` of a one-dimensional uint8
    array, at any alignment. Writes no bounds: ``index + 8 <= len(array)`` is the caller's to ensure."""
    if not array_and_index(array, index) or word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        pointer = element_pointer(context, builder, signature.replace(args=signature.args[:2]), args[:2])
        builder.store(args[2], builder.bitcast(pointer, ir.IntType(64).as_pointer()), align=1)
        return context.get_dummy_value()

    return types.void(array, index, word), codegen


@intrinsic
def trailing_zeros(typingctx, value):  # pragma: no cover - compiled
    """The number of zero bits below the lowest set bit of a uint64 (64 for zero)."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.uint64(value), codegen


@numba.njit(inline="always")
def load_text(data, k, end):  # pragma: no cover - compiled
    """The bytes ``data[k:min(k + 8, end)]`` as a uint64 (zero above ``end``) and the mask of their lanes."""
    rest = end - k
    if rest >= 8:  # within the buffer too, as end is
        return load8(data, k), HIGH
    keep = (np.uint64(1) << np.uint64(8 * rest)) - np.uint64(1)
    if k + 8 <= len(data):
        return load8(data, k) & keep, HIGH & keep
    word = np.uint64(0)  # the last bytes of the buffer: no 8-byte load past its end
    for j in range(rest):
        word |= np.uint64(data[k + j]) << np.uint64(8 * j)
    return word, HIGH & keep


@numba.njit(inline="always")
def at_least(low7, bound):  # pragma: no cover - compiled
    """Mask of the lanes of ``low7`` (bytes of at most 0x7f) that are ``>= bound`` (1 to 128)."""
    return (low7 + np.uint64(128 - bound) * ONES) & HIGH


@numba.njit(inline="always")
def equal(word, byte):  # pragma: no cover - compiled
    """Mask of the lanes of ``word`` equal to ``byte``."""
    x = word ^ (np.uint64(byte) * ONES)
    return ~(((x & LOW7) + LOW7) | x) & HIGH


@numba.njit(inline="always")
def lanes(mask):  # pragma: no cover - compiled
    """How many lanes a mask holds."""
    return np.int64(((mask >> np.uint64(7)) * ONES) >> np.uint64(56))


@numba.njit(inline="always")
def mix(state, word):  # pragma: no cover - compiled
    """One step of a 64-bit hash over 8-byte words (each step a bijection of the state)."""
    state = (state ^ word) * _MIX
    return state ^ (state >> np.uint64(32))


@numba.njit(inline="always")
def finish(state, length):  # pragma: no cover - compiled
    """The hash of a byte string of ``length`` bytes whose words were mixed into ``state``."""
    state ^= np.uint64(length)
    state = (state ^ (state >> np.uint64(30))) * _FIN1
    state = (state ^ (state >> np.uint64(27))) * _FIN2
    return state ^ (state >> np.uint64(31))
