"""The pointer-table path: the fused kernel over tensors that stay where their owners keep them.

A group whose parameters' storage someone else holds (a ZeRO bucket, Hogwild's shared memory, a
user's alias: :func:`~descentlab.optim.paths.fused.held_elsewhere`) cannot be moved into flat
buffers. This path steps it in place, still in one generated kernel per batch: the same trace as
the fused path (:mod:`.trace`), compiled by numba over a table holding, for every chunk of every
tensor, the address of the parameter, of its gradient and of each state entry, and the chunk's
length (:func:`.numba_kernels.table_kernel`); on CUDA by Triton, one program per block of a
tensor (:func:`.triton_kernels.table_kernel`). Parameters, gradients and state stay the user's
tensors, under torch's keys; nothing is copied, and gradients are read where autograd put them.

Batches are the foreach path's (:func:`.foreach.batches`: parameters agreeing on state keys and
0-d state); sparse gradients take the reference path's lazy step. A batch whose gradients or
state are not contiguous tensors of the parameters' dtype (state loaded from elsewhere, say) is
stepped by the foreach path instead, as is any tensor of a subclass (a DTensor's elements are
its local shard's, not at its own address).
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch import Tensor

from descentlab.optim.paths import foreach, fused
from descentlab.optim.paths.base import gradients, step_and_lr
from descentlab.optim.paths.trace import SymbolicState, Trace
from descentlab.rules import Hyper, as_real


def plan(chain, params: list[Tensor], state: dict, hp: Hyper, undo: list) -> Callable[[], None]:
    """Gather and clip the gradients now; the returned function steps the batches."""
    params = [p for p in params if p.grad is not None]
    grads = gradients(params, hp)

    def apply() -> None:
        for scalars, batch in foreach.batches(chain, params, grads, state, hp):
            if not step_batch(chain, batch, scalars, hp):
                foreach.step_batch(chain, batch, scalars, hp)

    return apply


_DTYPE = operator.attrgetter("dtype")
_DEVICE = operator.attrgetter("device")
_LAYOUT = operator.attrgetter("layout")
_SHAPE = operator.attrgetter("shape")
_PLAIN = (Tensor, torch.nn.Parameter)  # a subclass (a DTensor, say) may keep its elements elsewhere


def _plain(tensor: Tensor) -> bool:
    return type(tensor) in _PLAIN


def _steppable(ps: list[Tensor], columns: list[list[Tensor]]) -> bool:
    """Whether the kernel can read and write every tensor of ``columns`` (row ``t`` of ``ps[t]``) by its address."""
    shapes = list(map(_SHAPE, ps))
    return all(
        all(map(_plain, column)) and set(map(_DEVICE, column)) == {ps[0].device}
        and set(map(_DTYPE, column)) == {ps[0].dtype} and set(map(_LAYOUT, column)) == {torch.strided}
        and all(map(Tensor.is_contiguous, column))
        and list(map(_SHAPE, column)) == shapes
        for column in columns
    )


def step_batch(chain, batch: list[tuple], scalars: dict, hp: Hyper) -> bool:
    """One kernel over the batch's tensors where they are; False (nothing changed) if it cannot read them."""
    ps, raw, states = zip(*batch, strict=True)
    gs = [grad if grad.is_contiguous() else grad.contiguous() for grad in raw]
    step_number, lr = step_and_lr(scalars["step"], hp)
    trace = Trace()
    p, g = trace.array("p"), trace.array("g")
    values = {key: torch.stack([entries[key] for entries in states]) for key in scalars if key != "step"}
    symbolic = SymbolicState(trace, values, frozenset(states[0]))
    chain.update(p, g, symbolic, hp, lr, step_number)

    created = {key: [torch.empty_like(param) for param in ps] for key in symbolic.created}
    tensors: dict[str, list[Tensor]] = {"p": list(ps), "g": gs}
    for key, argument in trace.state_keys.items():
        tensors[argument] = created[key] if key in created else [entries[key] for entries in states]
    columns = [tensors[argument] for argument in trace.arguments()]
    if not _steppable(list(ps), columns):
        return False
    kernel = fused.backend(ps[0].device).table_kernel(trace, columns, as_real(ps[0]).dtype)
    kernel()  # first: if it fails, no count has moved
    torch._foreach_add_([entries["step"] for entries in states], 1)
    symbolic.commit()
    for key, stacked in values.items():
        torch._foreach_copy_([entries[key] for entries in states], list(stacked.unbind()))
    for key, made in created.items():
        for entries, tensor in zip(states, made, strict=True):
            entries[key] = tensor
    return True
