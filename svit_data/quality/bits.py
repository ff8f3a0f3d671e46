"""Two machine operations for compiled byte loops that work on 8 bytes at a time.

``load8(array, index)`` reads ``array[index:index + 8]`` of a uint8 array as one little-endian uint64
(any alignment; on a big-endian machine the bytes are swapped, so the value is the same everywhere).
The 8 bytes must lie within the array: the load reads no bounds. ``trailing_zeros(x)`` counts the zero
bits below the lowest set bit of a uint64 (64 for zero).
"""

from __future__ import annotations

import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def load8(typingctx, array, index):  # pragma: no cover - compiled
    """``array[index:index + 8]`` of a uint8 array, little-endian, as a uint64 (numba-compiled code only)."""
    if not (
        isinstance(array, types.Array)
        and array.ndim == 1
        and array.dtype == types.uint8
        and isinstance(index, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        data, at = args
        kind = signature.args[0]
        pointer = cgutils.get_item_pointer(
            context, builder, kind, context.make_array(kind)(context, builder, data), [at]
        )
        i64 = ir.IntType(64)
        value = builder.load(builder.bitcast(pointer, i64.as_pointer()), align=1)
        return builder.bswap(value) if sys.byteorder == "big" else value

    return types.uint64(array, index), codegen


@intrinsic
def trailing_zeros(typingctx, value):  # pragma: no cover - compiled
    """The number of zero bits below the lowest set bit of a uint64 (numba-compiled code only)."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.uint64(value), codegen
