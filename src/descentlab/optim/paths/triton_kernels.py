"""The CUDA backend of the fused path: a traced step as one Triton kernel over the flat buffers.

The same trace the CPU backend renders as a numba loop is rendered here as a Triton program:
each program instance loads a block of every array it reads, runs the body on the block, and
stores what changed. Arithmetic is in float32 for float32 and half-precision (bfloat16, float16)
buffers and in float64 for float64 ones; loads are cast up and stores round once. Divisions and
square roots are the correctly rounded ones (``div_rn``, ``sqrt_rn``) and no FMA contraction is
allowed, except the ones torch's own kernels round once (``x + α·y``, ``addcmul``, ``lerp``),
spelled ``tl.fma``, so each operation rounds as torch's does. The per-step scalars are kernel arguments,
typed in the arithmetic's dtype (``c0: tl.float64``): nothing is copied to the device before a
launch, and a step makes no host-device sync.

Triton's interpreter (``TRITON_INTERPRET=1``) runs the same kernels on CPU tensors, which is how
the test suite checks them without a GPU. The interpreter has no ``libdevice``, so there ``x**y``
is spelled ``exp2(y·log2 x)``, in float64; on a GPU it is libdevice's ``pow``. Compiled kernels are cached by
Triton (``~/.triton/cache``), their sources by :mod:`.kernel_cache`.
"""

from __future__ import annotations

import os
from functools import cache

import numpy as np
import torch

from descentlab.optim.paths.kernel_cache import load_module
from descentlab.optim.paths.trace import ARITHMETIC, Trace, fused_multiply_adds

BLOCK = 2048
NUM_WARPS = 8
COMPUTE = {torch.float32: "tl.float32", torch.float64: "tl.float64", torch.bfloat16: "tl.float32",
           torch.float16: "tl.float32"}

SPELLING = {
    **ARITHMETIC,
    **fused_multiply_adds("tl.fma({a}, {b}, {c})"),
    "sqrt": "tl.sqrt({0})",  # correctly rounded in float64
    "abs": "tl.abs({0})",
    "pow": "libdevice.pow({0}, {1})",
    "clamp": "tl.where({0} < {1}, {1}, tl.where({0} > {2}, {2}, {0}))",
    "maximum": "tl.where(({0} > {1}) | ({0} != {0}), {0}, {1})",
}
# float32's / and sqrt are approximate in Triton; these are the correctly rounded ones
FLOAT32_SPELLING = {"div": "tl.div_rn({0}, {1})", "sqrt": "tl.sqrt_rn({0})"}
# the interpreter has no libdevice: x**y as exp2(y·log2 x), in float64 so that it rounds like pow
INTERPRETER_SPELLING = {"pow": "tl.exp2({1} * tl.log2({0}.to(tl.float64))).to({0}.dtype)"}
# nor a true fma (its tl.fma rounds a·b, then the sum, and takes a scalar argument as float32):
# float32's a·b is exact in float64, so the float32 sum is rounded there once; float64 rounds twice
INTERPRETER_FMA = {"tl.float32": fused_multiply_adds(
    "tl.cast(tl.cast({a}, tl.float64) * tl.cast({b}, tl.float64) + tl.cast({c}, tl.float64), tl.float32)"),
    "tl.float64": fused_multiply_adds("(({a}) * ({b}) + ({c}))")}


def spelling(dtype: torch.dtype) -> dict[str, str]:
    """How each traced operation is written for buffers of ``dtype`` (here or in the interpreter)."""
    spelled = dict(SPELLING)
    if COMPUTE[dtype] == "tl.float32":
        spelled.update(FLOAT32_SPELLING)
    if interpreted():
        spelled.update(INTERPRETER_SPELLING)
        spelled.update(INTERPRETER_FMA[COMPUTE[dtype]])
    return spelled


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@cache
def unavailable_reason() -> str | None:
    """Why Triton kernels cannot run here, or None if they can."""
    if os.environ.get("DESCENTLAB_FUSED", "1") == "0":
        return "the fused path is turned off by DESCENTLAB_FUSED=0"
    try:
        import triton  # noqa: F401
    except ImportError as error:
        return f"triton cannot be imported ({error}); install it with `pip install 'descentlab[cuda]'`"
    return None


ELEMENT = {torch.float32: "tl.float32", torch.float64: "tl.float64", torch.bfloat16: "tl.bfloat16",
           torch.float16: "tl.float16"}


def _module(trace: Trace, dtype: torch.dtype, arguments: list[str], prologue: list[str]) -> str:
    """A module with one ``@triton.jit`` function, ``step``; its ``prologue`` sets ``i`` and ``mask`` (and pointers)."""
    compute = COMPUTE[dtype]
    scalars = [f"c{k}: {compute}" for k in range(len(trace.scalars))]
    signature = ", ".join([*arguments, *scalars, "BLOCK: tl.constexpr"])
    body = [*prologue]
    body += [f"x_{argument} = tl.load({argument} + i, mask=mask).to({compute})" for argument in trace.loaded]
    body += trace.render(spelling(dtype))
    body += [f"tl.store({argument} + i, {value}, mask=mask)" for argument, value in trace.stores()]
    header = ["import triton", "import triton.language as tl"]
    if not interpreted():
        header.append("from triton.language.extra import libdevice")
    return "\n".join([*header, "", "", "@triton.jit", f"def step({signature}):", *(f"    {line}" for line in body), ""])


def source(trace: Trace, dtype: torch.dtype) -> str:
    """A module with one ``@triton.jit`` function, ``step``, over blocks of the flat buffers."""
    prologue = ["i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)", "mask = i < n"]
    return _module(trace, dtype, [*trace.arguments(), "n"], prologue)


def table_source(trace: Trace, dtype: torch.dtype) -> str:
    """A module whose ``step`` runs over tensors that stay where they are, through a table of their addresses.

    Program ``b`` steps the block starting at element ``starts[b]`` of tensor ``rows[b]``, whose
    length is ``lengths[rows[b]]``; ``addresses[t, k]`` is where argument ``k``'s tensor ``t`` lives.
    """
    count = len(trace.arguments())
    prologue = ["b = tl.program_id(0)", "t = tl.load(rows + b)", "i = tl.load(starts + b) + tl.arange(0, BLOCK)",
                "mask = i < tl.load(lengths + t)"]
    prologue += [f"{argument} = tl.load(addresses + t * {count} + {k}).to(tl.pointer_type({ELEMENT[dtype]}))"
                 for k, argument in enumerate(trace.arguments())]
    return _module(trace, dtype, ["addresses", "lengths", "rows", "starts"], prologue)


class Kernel:
    """One compiled Triton kernel over slices of flat buffers; ``kernel()`` launches it."""

    def __init__(self, function, buffers: list[torch.Tensor], scalars: list[float]) -> None:
        self.function = function
        self.n = buffers[0].numel()
        self.grid = (max(1, -(-self.n // BLOCK)),)
        self.arguments = (*buffers, self.n, *scalars)
        self.device = buffers[0].device

    def __call__(self) -> None:
        if not self.n:
            return
        if interpreted():
            with np.errstate(all="ignore"):  # inf and NaN arise silently, as in torch
                self._launch()
        elif self.device.index is not None and self.device.index != torch.cuda.current_device():
            with torch.cuda.device(self.device):  # Triton launches on the current device
                self._launch()
        else:
            self._launch()

    def _launch(self, warmup: bool = False) -> None:
        launcher = self.function.warmup if warmup else self.function[self.grid]
        extra = {"grid": self.grid} if warmup else {}
        launcher(*self.arguments, BLOCK=BLOCK, num_warps=NUM_WARPS, enable_fp_fusion=False, **extra)


class TableKernel(Kernel):
    """One compiled Triton kernel over a table of tensors that stay where they are; ``kernel()`` launches it.

    Row ``t`` of ``addresses`` holds where each argument's tensor ``t`` starts, ``lengths[t]`` its
    element count (of the real view: all of one dtype); ``keep`` holds what owns those addresses.
    The table is copied to the device from pinned memory without waiting (no host sync).
    """

    def __init__(self, function, addresses: np.ndarray, lengths: np.ndarray, scalars: list[float],
                 device: torch.device, keep: object) -> None:
        blocks = -(-lengths // BLOCK)
        rows = np.repeat(np.arange(lengths.size), blocks)
        starts = (np.arange(rows.size) - np.repeat(np.cumsum(blocks) - blocks, blocks)) * BLOCK
        self.device = device
        table = [self._on_device(np.ascontiguousarray(array)) for array in (addresses, lengths, rows, starts)]
        self.keep = keep
        self.function = function
        self.n = int(rows.size)
        self.grid = (max(1, self.n),)
        self.arguments = (*table, *scalars)

    def _on_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type != "cuda":
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)


_compiled: dict[tuple, object] = {}
_compiled_tables: dict[tuple, object] = {}


def table_kernel(trace: Trace, addresses: np.ndarray, lengths: np.ndarray, dtype: torch.dtype,
                 keep: list[torch.Tensor]) -> TableKernel:
    """The Triton kernel of ``trace`` over the tensors at ``addresses`` (see :class:`TableKernel`)."""
    key = (trace.structure(), dtype, interpreted())
    function = _compiled_tables.get(key)
    if function is None:
        function = _compiled_tables[key] = load_module(table_source(trace, dtype), "q").step
    return TableKernel(function, addresses, lengths, trace.scalars, keep[0].device, keep)


def kernel(trace: Trace, buffers: list[torch.Tensor], dtype: torch.dtype) -> Kernel:
    """The Triton kernel of ``trace`` over ``buffers``, compiled (or read from Triton's cache) now.

    Compiling when a kernel is first planned, not when it is launched, lets a kernel that fails to
    compile fail the step before anything has changed. (A later launch that Triton specializes
    anew, for a slice of other alignment, compiles at launch, before any count moves.)
    """
    # the source is written only on a miss (this runs every step); an interpreted function must
    # not serve a GPU, nor the reverse
    key = (trace.structure(), dtype, interpreted())
    function = _compiled.get(key)
    fresh = function is None
    if fresh:
        function = _compiled[key] = load_module(source(trace, dtype), "t").step
    launch = Kernel(function, buffers, trace.scalars)
    if fresh and launch.n and not interpreted():
        launch._launch(warmup=True)
    return launch
