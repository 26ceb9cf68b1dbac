"""The pointer-table path: the fused kernel over parameters that stay where their owners keep them.

A group whose parameters' storage someone else holds (a ZeRO bucket, Hogwild's shared memory, a
user's alias: :func:`~descentlab.optim.paths.fused.held_elsewhere`) cannot be moved into flat
buffers. :class:`TableGroup` steps it in place, still in one generated kernel per step: the same
trace as the fused path (:mod:`.trace`), compiled over a table holding, for every tensor, the
address of the parameter, of its gradient and of each state entry, and its length
(:func:`.numba_kernels.table_kernel`, cut into chunks for the threads; on CUDA
:func:`.triton_kernels.table_kernel`, one program per block of a tensor). Parameters,
gradients and full-shaped state stay the user's tensors, under torch's keys: nothing is copied,
and gradients are read where autograd (or DDP's bucket) put them.

It is the fused path's :class:`~descentlab.optim.paths.fused.FlatGroup` with the flat buffers
taken out, so everything else is shared: the group is checked once when it is built (one device
and dtype, contiguous, the backend importable) and then costs per step a look at the tensors'
addresses, not a per-tensor Python step; 0-d state (``step``) lives in one CPU tensor per key,
so the step counts move in one call; parameters without gradients, sparse gradients (the lazy
reference step), clipping (into a scratch buffer), state created by the first step and rollback
on failure behave as on the fused path. A gradient the kernel cannot read by its address (a
non-contiguous view, another dtype) is copied into the scratch buffer for the step; a state
entry it cannot read (loaded non-contiguous, say) is replaced by a contiguous copy once.
"""

from __future__ import annotations

import operator
from itertools import repeat

import numpy as np
import torch
from torch import Tensor

from descentlab.optim.paths.fused import FlatGroup

_DTYPE = operator.attrgetter("dtype")
_DEVICE = operator.attrgetter("device")
_SHAPE = operator.attrgetter("shape")
_SPARSE = operator.attrgetter("is_sparse")
_PLAIN = (Tensor, torch.nn.Parameter)  # a subclass (a DTensor, say) may keep its elements elsewhere


def _plain(tensor: Tensor) -> bool:
    return type(tensor) in _PLAIN


class TableGroup(FlatGroup):
    """A param group stepped in place by the fused kernel through a table of its tensors' addresses."""

    path = "table"

    def _state_dtype(self) -> torch.dtype:
        return self.dtype  # the state is the parameters' dtype, as torch keeps it: one dtype per table

    def _place(self) -> None:
        """Nothing moves: remember the parameters' lengths and their addresses' column of the table."""
        self.tensor_dtype = self.params[0].dtype
        self.lengths = np.diff(np.array(self.offsets, dtype=np.int64))
        self.itemsize = torch.finfo(self.dtype).bits // 8
        self.columns: dict[tuple, list[Tensor]] = {}  # per (run, state key): the state tensors the table points at

    def _addressable(self, tensors: list[Tensor]) -> bool:
        """Whether the kernel reads each of ``tensors`` by its address (plain, dense, contiguous, our dtype)."""
        return (all(map(_plain, tensors)) and all(map(Tensor.is_contiguous, tensors))
                and set(map(_DTYPE, tensors)) <= {self.tensor_dtype} and set(map(_DEVICE, tensors)) <= {self.device})

    def _slot(self, key: str, value: Tensor, i: int) -> Tensor | None:
        if key in self.scalar_keys and value.dim() == 0:
            return super()._slot(key, value, i)
        p = self.params[i]
        if value.shape == p.shape and not self._addressable([value]):
            return torch.empty_like(p)  # stepped in place from now on: it must be readable by its address
        return None

    def _gather(self, grads: list) -> tuple[list[int], list[int], list] | None:
        """Where this step's gradients are: ``(present, sparse, source)``, or None if one's shape changed.

        ``source[i]`` is the tensor the kernel reads for ``params[i]``: its gradient where autograd
        put it, or a copy in the scratch buffer where its address cannot be read.
        """
        if any(map(operator.is_, grads, repeat(None))) or any(map(_SPARSE, grads)):
            present = [i for i, grad in enumerate(grads) if grad is not None and not grad.is_sparse]
            sparse = [i for i, grad in enumerate(grads) if grad is not None and grad.is_sparse]
        else:
            present, sparse = self.indices, []
        dense = [grads[i] for i in present]
        if list(map(_SHAPE, dense)) != [self.shapes[i] for i in present]:
            return None
        source = list(grads)
        if not self._addressable(dense):
            odd = [i for i in present if not self._addressable([grads[i]])]
            if self.scratch is None:
                self.scratch = torch.zeros(self.offsets[-1], dtype=self.dtype, device=self.device)
            copies = [self._view(self.scratch, i) for i in odd]
            torch._foreach_copy_(copies, [grads[i] for i in odd])
            for i, copy in zip(odd, copies, strict=True):
                source[i] = copy
        return present, sparse, source

    def _kernel(self, trace, state: dict, start: int, end: int, grad_source):
        """The table kernel of ``trace`` over ``params[start:end]``, and what gives the state entries it creates."""
        params = self.params[start:end]
        created = {key: [torch.empty_like(p) for p in params]
                   for key in trace.state_keys if key not in self.keys[start]}
        columns, keep = [], [*params]
        keys = {argument: key for key, argument in trace.state_keys.items()}
        for argument in trace.arguments():
            if argument == "p":
                columns.append(np.array(self.data_ptrs[start:end], dtype=np.int64))
            elif argument == "g" and isinstance(grad_source, Tensor):  # clipped into the scratch buffer
                base = grad_source.data_ptr() + np.array(self.offsets[start:end], dtype=np.int64) * self.itemsize
                columns.append(base)
                keep.append(grad_source)
            else:
                key = keys.get(argument, "")
                tensors = grad_source[start:end] if argument == "g" else \
                    created[key] if key in created else self._state_column(state, key, start, end)
                columns.append(np.array(list(map(Tensor.data_ptr, tensors)), dtype=np.int64))
                keep += tensors
        addresses = np.stack(columns, axis=1) if columns else np.zeros((end - start, 0), dtype=np.int64)
        kernel = self.kernels.table_kernel(trace, addresses, self.lengths[start:end], self.dtype, keep)
        return kernel, lambda key, i: created[key][i - start]

    def _keys_changed(self) -> None:
        super()._keys_changed()
        self.columns.clear()  # state entries were created, adopted or restored: read them again

    def _state_column(self, state: dict, key: str, start: int, end: int) -> list[Tensor]:
        """``state[p][key]`` of ``params[start:end]``, each readable by its address (read when the entries change).

        Like the fused path's flat buffers, the column is the group's until its entries change
        through the group (a first step, a sparse step, a rollback) or it is rebuilt (``load_state_dict``).
        """
        column = self.columns.get((start, end, key))
        if column is not None:
            return column
        column = [state[p][key] for p in self.params[start:end]]
        odd = [start + k for k, tensor in enumerate(column) if not (
            tensor.shape == self.shapes[start + k] and self._addressable([tensor]))]
        if odd:
            self.adopt(state, odd)
            column = [state[p][key] for p in self.params[start:end]]
        self.columns[(start, end, key)] = column
        return column
