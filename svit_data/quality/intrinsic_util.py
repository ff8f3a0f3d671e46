"""What the numba intrinsics over one-dimensional arrays share (:mod:`~svit_data.quality.prefetch`,
:mod:`~svit_data.quality.swar`): the check of their ``(array, index)`` arguments and the address of the
element."""

from __future__ import annotations

from numba import types
from numba.core import cgutils


def array_and_index(array, index) -> bool:
    """The argument types an intrinsic of ``(array, index)`` takes: a 1-D array and an integer."""
    return isinstance(array, types.Array) and array.ndim == 1 and isinstance(index, types.Integer)


def element_pointer(context, builder, signature, args):
    """In an intrinsic's code generation: the address of ``array[index]`` (no bounds are read)."""
    data, at = args
    kind = signature.args[0]
    return cgutils.get_item_pointer(
        context, builder, kind, context.make_array(kind)(context, builder, data), [at]
    )
