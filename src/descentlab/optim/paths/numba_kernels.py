"""The CPU backend of the fused path: a traced step as a numba loop, cached on disk across processes.

The loop is compiled with ``@njit(cache=True)`` from its file in the kernel cache
(:mod:`.kernel_cache`), so numba keeps the machine code next to it; ``DESCENTLAB_FUSED=0`` turns
the fused path off.

Why numba (docs/design.md): it reached the bandwidth bound for every rule in the prototype,
compiles one kernel in well under a second, caches to disk, and installs as two wheels; a cold
``torch.compile`` took ~11 s here and needs a C compiler at run time.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np
import torch

from descentlab.optim.paths.kernel_cache import load_module
from descentlab.optim.paths.trace import ARITHMETIC, Trace, fused_multiply_adds

# No fast-math: NaN and inf propagate as in torch (the lab detects divergence by them), a division
# is a division, and no product is contracted into an FMA except where torch's kernel has one
# (spelled with :func:`.numba_fma.fma`), so that every element rounds as torch rounds it.
FASTMATH = False
# Below this many elements one thread is faster: waking the thread pool costs more than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 16
DTYPES = {torch.float32: np.float32, torch.float64: np.float64}  # of the parameters' real view

SPELLING = {
    **ARITHMETIC,
    **fused_multiply_adds("fma({a}, {b}, {c})"),
    "sqrt": "np.sqrt({0})",
    "abs": "abs({0})",
    "pow": "({0} ** {1})",
    "clamp": "({1} if {0} < {1} else ({2} if {0} > {2} else {0}))",
    "maximum": "({0} if ({0} > {1} or {0} != {0}) else {1})",
}


@cache
def unavailable_reason() -> str | None:
    """Why the CPU fused path cannot run here, or None if it can."""
    if os.environ.get("DESCENTLAB_FUSED", "1") == "0":
        return "the fused path is turned off by DESCENTLAB_FUSED=0"
    try:
        import numba  # noqa: F401
    except ImportError as error:  # pragma: no cover - numba is a dependency
        return f"numba cannot be imported ({error}); install it with `pip install numba`"
    return None


LOOPS = (("parallel_step", "prange"), ("serial_step", "range"))


def _prologue_and_body(trace: Trace) -> tuple[list[str], list[str]]:
    """The scalars read before the loop, and the loop body at index ``i``."""
    prologue = [f"    c{k} = scalars[{k}]" for k in range(len(trace.scalars))]
    body = [f"x_{argument} = {argument}[i]" for argument in trace.loaded]
    body += trace.render(SPELLING)
    body += [f"{argument}[i] = {value}" for argument, value in trace.stores()]
    return prologue, body


def source(trace: Trace) -> str:
    """A module with the body as a parallel (``prange``) and a serial function over flat arrays."""
    arguments = ", ".join([*trace.arguments(), "scalars"])
    prologue, body = _prologue_and_body(trace)
    functions = []
    for name, loop in LOOPS:
        first = trace.arguments()[0]
        functions += [f"def {name}({arguments}):", *prologue, f"    for i in {loop}({first}.shape[0]):",
                      *(f"        {line}" for line in body), ""]
    header = ["import numpy as np", "from numba import prange", "from descentlab.optim.paths.numba_fma import fma"]
    return "\n".join([*header, "", *functions])


def table_source(trace: Trace) -> str:
    """A module with the body over a table of chunks (an address per argument, a length), in parallel and serially.

    Row ``r`` of ``addresses`` holds, for each argument, where chunk ``r`` of that argument starts;
    ``lengths[r]`` its element count. The tensors stay where their owners keep them.
    """
    prologue, body = _prologue_and_body(trace)
    views = [f"{argument} = carray(pointer_like(addresses[r, {k}], scalars), n)"
             for k, argument in enumerate(trace.arguments())]
    functions = []
    for name, loop in LOOPS:
        functions += [f"def {name}(addresses, lengths, scalars):", *prologue,
                      f"    for r in {loop}(lengths.shape[0]):", "        n = lengths[r]",
                      *(f"        {line}" for line in views), "        for i in range(n):",
                      *(f"            {line}" for line in body), ""]
    header = ["import numpy as np", "from numba import carray, prange",
              "from descentlab.optim.paths.numba_fma import fma",
              "from descentlab.optim.paths.numba_pointers import pointer_like"]
    return "\n".join([*header, "", *functions])


class Kernel:
    """One compiled loop over slices of flat CPU buffers; ``kernel()`` runs it."""

    def __init__(self, module, buffers: list[torch.Tensor], scalars: list[float], dtype: torch.dtype) -> None:
        self.function = module.parallel_step if buffers[0].numel() >= PARALLEL_MIN_ELEMENTS else module.serial_step
        self.arrays = [buffer.numpy() for buffer in buffers]
        self.scalars = np.array(scalars, dtype=DTYPES[dtype])

    def __call__(self) -> None:
        self.function(*self.arrays, self.scalars)


class TableKernel:
    """One compiled loop over a table of chunks of tensors that stay where they are; ``kernel()`` runs it.

    Row ``t`` of ``addresses`` holds where each argument's tensor ``t`` starts, ``lengths[t]`` its
    element count (of the real view: all of one dtype). Each tensor is cut into chunks of at most
    ``CHUNK`` elements, so that one large tensor is shared between threads too. ``keep`` holds
    what owns those addresses for as long as the kernel may run.
    """

    CHUNK = PARALLEL_MIN_ELEMENTS

    def __init__(self, module, addresses: np.ndarray, lengths: np.ndarray, scalars: list[float],
                 dtype: torch.dtype, keep: list[torch.Tensor]) -> None:
        self.keep = keep
        chunks = -(-lengths // self.CHUNK)
        starts = np.repeat(np.cumsum(chunks) - chunks, chunks)
        offsets = (np.arange(starts.size) - starts) * self.CHUNK  # of each chunk in its tensor
        owner = np.repeat(np.arange(lengths.size), chunks)
        self.lengths = np.minimum(lengths[owner] - offsets, self.CHUNK)
        itemsize = torch.finfo(dtype).bits // 8
        self.addresses = np.ascontiguousarray(addresses[owner] + (offsets * itemsize)[:, None])
        self.function = module.parallel_step if int(lengths.sum()) >= PARALLEL_MIN_ELEMENTS else module.serial_step
        self.scalars = np.array(scalars, dtype=DTYPES[dtype])

    def __call__(self) -> None:
        if self.lengths.size:
            self.function(self.addresses, self.lengths, self.scalars)


_compiled: dict[tuple, object] = {}
_compiled_tables: dict[tuple, object] = {}


def kernel(trace: Trace, buffers: list[torch.Tensor], dtype: torch.dtype) -> Kernel:
    """The compiled kernel of ``trace`` over ``buffers`` (memory, then disk cache, then numba)."""
    key = trace.structure()  # the source is written only on a miss: this runs every step
    module = _compiled.get(key)
    if module is None:
        module = _compiled[key] = _compile(source(trace))
    return Kernel(module, buffers, trace.scalars, dtype)


def table_kernel(trace: Trace, addresses: np.ndarray, lengths: np.ndarray, dtype: torch.dtype,
                 keep: list[torch.Tensor]) -> TableKernel:
    """The compiled kernel of ``trace`` over the tensors at ``addresses`` (see :class:`TableKernel`)."""
    key = trace.structure()
    module = _compiled_tables.get(key)
    if module is None:
        module = _compiled_tables[key] = _compile(table_source(trace), prefix="p")
    return TableKernel(module, addresses, lengths, trace.scalars, dtype, keep)


def _compile(text: str, prefix: str = "k"):
    from numba import njit

    module = load_module(text, prefix)
    options: dict[str, Any] = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")
    module.parallel_step = njit(parallel=True, **options)(module.parallel_step)
    module.serial_step = njit(**options)(module.serial_step)
    return module
