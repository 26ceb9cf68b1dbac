"""A fused multiply-add for numba kernels: torch's CPU kernels round ``x + α·y``, ``addcmul`` and
``lerp`` once, and numba has no ``fma`` of its own (Python's ``math.fma`` arrives in 3.13).

Imported by the generated kernels only, so that descentlab imports without numba.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):
    """``a·b + c`` rounded once (LLVM's ``llvm.fma``), for three floats of one type."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    return a(a, b, c), lambda context, builder, signature, arguments: builder.fma(*arguments)
