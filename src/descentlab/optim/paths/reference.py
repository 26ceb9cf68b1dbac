"""The reference path: the chain on one tensor at a time, the specification the other paths trace.

Sparse gradients take the lazy path: the rows present in the gradient are gathered from the
parameter and its state, run through the same dense step, and scattered back; rows absent from
the batch keep their parameter and state untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from descentlab.optim.contract import ChainLike
from descentlab.optim.paths.base import gradients, real_operands, step_and_lr
from descentlab.rules import Hyper


def plan(chain: ChainLike, params: list[Tensor], state: dict, hp: Hyper, undo: list) -> Callable[[], None]:
    """Gather and clip the gradients now; the returned function steps each parameter that has one."""
    params = [p for p in params if p.grad is not None]
    grads = gradients(params, hp)

    def apply() -> None:
        for p, grad in zip(params, grads, strict=True):
            step_param(chain, p, grad, state[p], hp)

    return apply


def step_param(chain: ChainLike, p: Tensor, grad: Tensor, state: dict, hp: Hyper) -> None:
    """One step of one parameter (dense or sparse ``grad``, already clipped)."""
    chain.initialize(p, state, hp)
    step, lr = step_and_lr(state["step"].item(), hp)
    state["step"] += 1
    if grad.is_sparse:
        lazy_update(chain, p, grad, state, hp, lr, step)
    else:
        chain.update(*real_operands(p, grad, state), hp, lr, step)


def _rows(p: Tensor, grad: Tensor) -> tuple[Tensor, tuple]:
    """The rows of ``p`` (its sparse dimensions flattened into one) present in the coalesced sparse ``grad``, and
    the shape of ``p`` seen as rows."""
    sparse_dims = grad.sparse_dim()
    indices = grad._indices()
    rows = indices[0]
    for dim in range(1, sparse_dims):
        rows = rows * p.shape[dim] + indices[dim]
    return rows, (math.prod(p.shape[:sparse_dims]), *p.shape[sparse_dims:])


def lazy_update(chain: ChainLike, p: Tensor, grad: Tensor, state: dict, hp: Hyper, lr: float, step: float) -> None:
    """Run the dense step on the rows of ``p`` present in the (coalesced) sparse ``grad``."""
    rows, row_shape = _rows(p, grad)
    full = {key: value for key, value in state.items() if torch.is_tensor(value) and value.shape == p.shape}
    sub_state = {
        key: full[key].view(row_shape).index_select(0, rows) if key in full else value
        for key, value in state.items()
    }
    p_rows = p.view(row_shape)
    sub_p = p_rows.index_select(0, rows)
    chain.update(*real_operands(sub_p, grad._values(), sub_state), hp, lr, step)
    p_rows.index_copy_(0, rows, sub_p)
    for key, value in sub_state.items():
        if key in full:
            full[key].view(row_shape).index_copy_(0, rows, value)
        elif key not in state:  # created by a rule on this step (the momentum buffer): zero elsewhere
            state[key] = torch.zeros_like(p)
            state[key].view(row_shape).index_copy_(0, rows, value)
