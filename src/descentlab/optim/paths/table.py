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

import numpy as np
import torch
from torch import Tensor

from descentlab.optim.paths.fused import Column, FlatGroup, dtensor_type, local, split_gradients
from descentlab.rules.clip import clips

_SHAPE = operator.attrgetter("shape")


class TableGroup(FlatGroup):
    """A param group stepped in place by the fused kernel through a table of its tensors' addresses."""

    path = "table"

    def _state_dtype(self) -> torch.dtype:
        return self.dtype  # the state is the parameters' dtype, as torch keeps it: one dtype per table

    def _local(self, tensor: Tensor) -> Tensor:
        return local(tensor)  # FSDP2's DTensors: their local shards

    def _pointers(self, tensors: list[Tensor]) -> list[int]:
        return [local(tensor).data_ptr() for tensor in tensors] if self.sharded else super()._pointers(tensors)

    def _addressable(self, tensors: list[Tensor]) -> bool:
        return super()._addressable([local(tensor) for tensor in tensors] if self.sharded else tensors)

    def _place(self) -> None:
        """Nothing moves: the parameters, their gradients and their full-shaped state are read where they are."""
        self.sharded = any(local(p) is not p for p in self.params)  # DTensors: each is read at its local shard
        self.columns: dict[tuple, Column] = {}  # per run and state key (None: the parameters): what the table points at
        self.made: dict[tuple, Tensor] = {}  # per (state key, parameter): what the planned step creates

    def plan(self, chain, params: list[Tensor], state: dict, hp, undo: list):
        """:meth:`FlatGroup.plan`, or None (the caller chooses the path again: foreach) if a group of FSDP2's
        shards now clips: the norm spans every rank's shards, which only DTensor arithmetic sees."""
        if self.sharded and clips(hp):
            return None
        return super().plan(chain, params, state, hp, undo)

    def _slot(self, key: str, value: Tensor, i: int) -> Tensor | None:
        if key in self.scalar_keys and value.dim() == 0:
            return super()._slot(key, value, i)
        p = self.params[i]
        if value.shape == p.shape and not self._addressable([value]):
            return torch.empty_like(p)  # stepped in place from now on: it must be readable by its address
        return None

    def _gather(self, grads: list) -> tuple[list[int], list[int], torch.Tensor | list] | None:
        """Where this step's gradients are: ``(present, sparse, source)``, or None if one's shape changed.

        ``source[i]`` is the tensor the kernel reads for ``params[i]``: its gradient where autograd
        put it, or a copy in the scratch buffer where its address cannot be read.
        """
        present, sparse = split_gradients(grads, self.indices)
        dense = [grads[i] for i in present]
        if list(map(_SHAPE, dense)) != [self.shapes[i] for i in present]:
            return None
        source = list(grads)
        if not self._addressable(dense) or (self.sharded and any(self._misplaced(grads[i], i) for i in present)):
            odd = [i for i in present if not self._addressable([grads[i]]) or self._misplaced(grads[i], i)]
            scratch = self._scratch()
            copies = [self._view(scratch, i) for i in odd]
            torch._foreach_copy_(copies, [self._placed(grads[i], i) for i in odd])
            for i, copy in zip(odd, copies, strict=True):
                source[i] = copy
        return present, sparse, source

    def _misplaced(self, grad: Tensor, i: int) -> bool:
        """Whether ``grad`` is a DTensor placed unlike ``params[i]`` (a Partial sum not yet reduced, another
        sharding): its local shard is not the parameter's shard of the gradient."""
        dtensor, p = dtensor_type(), self.params[i]
        return (dtensor is not None and isinstance(grad, dtensor) and isinstance(p, dtensor)
                and (grad.device_mesh, grad.placements) != (p.device_mesh, p.placements))

    def _placed(self, grad: Tensor, i: int) -> Tensor:
        """``grad``'s elements for ``params[i]``'s local shard (a DTensor redistributed as its parameter is)."""
        p = self.params[i]
        if self._misplaced(grad, i):  # a collective: every rank holds the same placements and gets here
            grad = grad.redistribute(p.device_mesh, p.placements)  # type: ignore[attr-defined]
        return self._local(grad)

    def _kernel(self, trace, state: dict, start: int, end: int, grad_source: Tensor | list):
        return self._table_kernel(trace, state, start, end, grad_source)  # the parameters are never flat

    def _param_source(self, start: int, end: int) -> Column:
        column = self.columns.get((start, end, None))
        if column is None:  # the addresses holds() checks at every step
            column = self.columns[(start, end, None)] = Column(self.params[start:end],
                                                               np.array(self.data_ptrs[start:end], dtype=np.int64))
        return column

    def _state_source(self, state: dict, key: str, start: int, end: int) -> list[Tensor] | Column:
        """``state[p][key]`` of ``params[start:end]``, each readable by its address; new tensors if the step creates it.

        Like the fused path's flat buffers, a column is the group's until its entries change
        through the group (a first step, a sparse step, a rollback) or it is rebuilt (``load_state_dict``).
        """
        if key not in self.keys[start]:
            made = [torch.empty_like(p) for p in self.params[start:end]]
            self.made.update({(key, start + k): tensor for k, tensor in enumerate(made)})
            return made
        column = self.columns.get((start, end, key))
        if column is not None:
            return column
        tensors = [state[p][key] for p in self.params[start:end]]
        odd = [start + k for k, tensor in enumerate(tensors) if not (
            tensor.shape == self.shapes[start + k] and self._addressable([tensor]))]
        if odd:
            self.adopt(state, odd)
            tensors = [state[p][key] for p in self.params[start:end]]
        column = self.columns[(start, end, key)] = self._addresses(tensors, start, end)
        return column

    def _created_entry(self, key: str, i: int) -> Tensor:
        return self.made.pop((key, i))

    def _keys_changed(self, state: dict) -> None:
        super()._keys_changed(state)
        self.columns.clear()  # state entries were created, adopted or restored: read them again
