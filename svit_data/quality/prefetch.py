"""A cache prefetch hint for compiled loops that read memory at random.

``prefetch(array, index)`` asks the CPU to start loading the cache line of ``array[index]`` (an array
of one dimension) and returns at once: nothing is read, nothing can fail, and the program's result does
not depend on it, only how long it waits when the element is read later. A loop that knows a few steps
ahead which random elements it will read (the near-duplicate bucket walk: table slots and the signatures
of bucket heads) issues the hints that far ahead, so that several loads from memory overlap instead of
each stalling the loop. The index must be within the array (the hint reads no bounds).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from svit_data.quality.intrinsic_util import array_and_index, element_pointer

# llvm.prefetch(address, rw=0: read, locality=3: keep in all cache levels, cache=1: data); the name
# with the typed pointer is the one LLVM 14 (numba 0.60) knows, later LLVMs read it as llvm.prefetch.p0
_PREFETCH = "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, array, index):  # pragma: no cover - compiled
    """Hint that ``array[index]`` will be read soon (numba-compiled code only)."""
    if not array_and_index(array, index):
        return None

    def codegen(context, builder, signature, args):
        pointer = element_pointer(context, builder, signature, args)
        byte_pointer, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), _PREFETCH
        )
        flags = [ir.Constant(i32, value) for value in (0, 3, 1)]
        builder.call(hint, [builder.bitcast(pointer, byte_pointer), *flags])
        return context.get_dummy_value()

    return types.void(array, index), codegen
