"""An address as a typed pointer, for numba kernels that step tensors where they are (:mod:`.table`).

Imported by the generated kernels only, so that descentlab imports without numba.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic


@intrinsic
def pointer_like(typingctx, address, array):
    """The integer ``address`` as a pointer to elements of ``array``'s dtype (LLVM's ``inttoptr``)."""
    if not isinstance(address, types.Integer) or not isinstance(array, types.Array):
        return None
    pointer = types.CPointer(array.dtype)

    def codegen(context, builder, signature, arguments):
        return builder.inttoptr(arguments[0], context.get_value_type(pointer))

    return pointer(address, array), codegen
