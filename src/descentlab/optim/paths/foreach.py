"""The foreach path: the reference step run on lists of tensors with ``torch._foreach_*``.

Like the fused path, it re-implements nothing: :class:`TensorList` has the tensor methods the
rules call, each one ``torch._foreach_*`` call over the list, and :class:`ListState` is the
state dicts of the list's parameters seen as one. Parameters are batched only when everything
a rule reads from them agrees (device, dtype, step, state keys, ``mu_product``), so every
per-step scalar is the same across the list. Those 0-d entries live on the CPU and are read
all at once, so a step waits for no device.

Under ``torch.compile`` the step is traced instead (:func:`traced_step`): reading a scalar would
break the graph and specialize it on the value, so nothing is read. The batches are formed by
what is fixed (device, dtype, state keys), and the per-step scalars (the step, the bias
corrections, ``mu_product``) flow through the rules as lists of per-parameter 0-d tensors, as in
torch's compiled foreach Adam; the graph then serves every step, and inductor can fuse it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from descentlab.optim._operators import TensorOperators
from descentlab.optim.contract import ChainLike
from descentlab.optim.paths import reference
from descentlab.optim.paths.base import gradients, real_operands, step_and_lr
from descentlab.rules import Hyper


def plan(chain: ChainLike, params: list[Tensor], state: dict, hp: Hyper, undo: list) -> Callable[[], None]:
    """Gather and clip the gradients now; the returned function steps the batches."""
    params = [p for p in params if p.grad is not None]
    grads = gradients(params, hp)
    return lambda: step(chain, params, grads, state, hp)


def step(chain: ChainLike, params: list[Tensor], grads: list[Tensor], state: dict, hp: Hyper) -> None:
    """Batch the dense parameters whose rules read the same scalars; sparse ones go one by one."""
    dense = []
    for p, grad in zip(params, grads, strict=True):
        if grad.is_sparse:
            reference.step_param(chain, p, grad, state[p], hp)
        else:
            chain.initialize(p, state[p], hp)
            dense.append((p, grad, state[p]))
    if not dense:
        return
    keys = sorted(chain.scalar_keys & set(dense[0][2]))
    # one read per key for the whole group (the entries are CPU scalars: no device waits)
    values = zip(*(torch.stack([entries[key] for _, _, entries in dense]).tolist() for key in keys), strict=True)
    batches: dict[tuple, list] = {}
    for (p, grad, entries), scalars in zip(dense, values, strict=True):
        signature = (p.device, p.dtype, frozenset(entries), scalars)
        batches.setdefault(signature, []).append(real_operands(p, grad, entries))
    for (*_, scalars), batch in batches.items():
        ps, gs, states = zip(*batch, strict=True)
        step_number, lr = step_and_lr(scalars[keys.index("step")], hp)
        torch._foreach_add_([entries["step"] for entries in states], 1)
        chain.update(TensorList(list(ps)), TensorList(list(gs)), ListState(list(states)), hp, lr, step_number)


def traced_step(chain: ChainLike, params: list[Tensor], state: dict, hp: Hyper) -> None:
    """The step :func:`step` takes, written for dynamo: dense gradients, state already initialized.

    Each batch's step counts are incremented in place and their float64 copies are the rules'
    ``step``: the scalar arithmetic then rounds as the eager path's Python floats do. A Tensor
    ``hp.lr`` stays a tensor (one 0-d entry per parameter), so that a scheduler changing it does
    not change the graph.
    """
    params = [p for p in params if p.grad is not None]
    grads = gradients(params, hp)
    batches: dict[tuple, list] = {}
    for p, grad in zip(params, grads, strict=True):
        entries = state[p]
        batches.setdefault((p.device, p.dtype, tuple(entries)), []).append(real_operands(p, grad, entries))
    for batch in batches.values():
        ps, gs, states = zip(*batch, strict=True)
        counts = [entries["step"] for entries in states]
        torch._foreach_add_(counts, 1)
        steps = TensorList([count.to(torch.float64) for count in counts])
        lr = TensorList([hp.lr.to(torch.float64)] * len(ps)) if torch.is_tensor(hp.lr) else hp.lr
        chain.update(TensorList(list(ps)), TensorList(list(gs)), ListState(list(states)), hp, lr, steps)


def _tensors(value):
    return value.tensors if isinstance(value, TensorList) else value


class TensorList(TensorOperators):
    """A list of same-shaped-role tensors that behaves like one tensor for the rules."""

    __slots__ = ("tensors",)

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        self.tensors = tensors

    def _out(self, tensors) -> TensorList:
        return TensorList(list(tensors))

    def add(self, other, alpha=1):
        if isinstance(other, TensorList):
            return self._out(torch._foreach_add(self.tensors, other.tensors, alpha=alpha))
        return self._out(torch._foreach_add(self.tensors, other * alpha))

    def sub(self, other, alpha=1):
        return self.add(other, alpha=-alpha)

    def mul(self, other):
        return self._out(torch._foreach_mul(self.tensors, _tensors(other)))

    def div(self, other):
        return self._out(torch._foreach_div(self.tensors, _tensors(other)))

    def addcmul(self, tensor1, tensor2, value=1):
        return self._out(torch._foreach_addcmul(self.tensors, tensor1.tensors, tensor2.tensors, value=value))

    def lerp(self, end, weight):
        return self._out(torch._foreach_lerp(self.tensors, end.tensors, weight))

    def sqrt(self):
        return self._out(torch._foreach_sqrt(self.tensors))

    def abs(self):
        return self._out(torch._foreach_abs(self.tensors))

    def pow(self, exponent):
        return self._out(torch._foreach_pow(self.tensors, exponent))

    __pow__ = pow

    def __rpow__(self, base):
        return self._out(torch._foreach_pow(base, self.tensors))

    def clamp(self, min, max):  # noqa: A002 - torch's argument names
        return self._out(torch._foreach_clamp_max(torch._foreach_clamp_min(self.tensors, min), max))

    def maximum(self, other):
        return self._out(torch._foreach_maximum(self.tensors, other.tensors))

    def neg(self):
        return self._out(torch._foreach_neg(self.tensors))

    def clone(self):
        return self._out(t.clone() for t in self.tensors)

    def detach(self):
        return self._out(t.detach() for t in self.tensors)

    def __rsub__(self, other):
        return self.neg().add(other)

    def __rtruediv__(self, other):
        return self._out(torch.div(other, t) for t in self.tensors)

    def add_(self, other, alpha=1):
        if isinstance(other, TensorList):
            torch._foreach_add_(self.tensors, other.tensors, alpha=alpha)
        else:
            torch._foreach_add_(self.tensors, other * alpha)
        return self

    def sub_(self, other, alpha=1):
        return self.add_(other, alpha=-alpha)

    def mul_(self, other):
        torch._foreach_mul_(self.tensors, _tensors(other))
        return self

    def div_(self, other):
        torch._foreach_div_(self.tensors, _tensors(other))
        return self

    def addcmul_(self, tensor1, tensor2, value=1):
        torch._foreach_addcmul_(self.tensors, tensor1.tensors, tensor2.tensors, value=value)
        return self

    def lerp_(self, end, weight):
        torch._foreach_lerp_(self.tensors, end.tensors, weight)
        return self

    def sqrt_(self):
        torch._foreach_sqrt_(self.tensors)
        return self

    def maximum_(self, other):
        torch._foreach_maximum_(self.tensors, other.tensors)
        return self

    def copy_(self, source):
        torch._foreach_copy_(self.tensors, source.tensors)
        return self

    def __imul__(self, factor):
        return self.mul_(factor)

    def item(self):
        """The value of a batch of equal 0-d entries (batching guarantees they are equal).

        Under ``torch.compile`` nothing is read (:func:`traced_step`): the 0-d entries themselves,
        one per parameter, serve as the values.
        """
        if torch.compiler.is_compiling():
            return self
        return self.tensors[0].item()


class ListState:
    """The state dicts of a batch of parameters, read and written as one."""

    __slots__ = ("states",)

    def __init__(self, states: list[dict]) -> None:
        self.states = states

    def __contains__(self, key: str) -> bool:
        return key in self.states[0]

    def __getitem__(self, key: str) -> TensorList:
        return TensorList([state[key] for state in self.states])

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def __setitem__(self, key: str, value: TensorList) -> None:
        for state, tensor in zip(self.states, value.tensors, strict=True):
            state[key] = tensor
