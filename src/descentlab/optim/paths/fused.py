"""The fused path: a param group's parameters, gradients and state as views of flat buffers.

On its first fused step a group's parameters are moved into one contiguous buffer
(``p.data`` becomes a view of it, the ``Parameter`` objects stay the same), their gradients into
another, and every full-shaped state tensor into one buffer per state key; 0-d state (``step``,
``mu_product``) goes into one 1-D CPU buffer per key. ``self.state[p]`` holds views, under torch's
keys, so ``state_dict`` and schedulers see the usual optimizer. One kernel call then steps the
whole group: no per-tensor cost, one pass over memory. A complex parameter's coordinates are the
pairs of reals of its ``view_as_real`` (how torch steps it): the buffers are real, and the
parameter, its gradient and its state are complex views of them.

The move is made only where the optimizer provably holds the parameters' storage alone
(:func:`held_elsewhere`, checked when a group is built or rebuilt): another holder (a ZeRO bucket,
shared memory, an FSDP2 shard, a user's alias) would keep the old memory and silently stop seeing
the updates. Such a group is stepped in place instead, by the same kernel through a table of the
tensors' addresses (:mod:`.table`; the optimizer's ``path`` says which).

The kernel is generated from the chain by tracing it (:mod:`.trace`) and compiled by the
device's backend: numba on the CPU (:mod:`.numba_kernels`), Triton on CUDA (:mod:`.triton_kernels`).
``DESCENTLAB_FUSED_BACKEND=triton`` runs CPU tensors through Triton too, which with
``TRITON_INTERPRET=1`` is how the Triton kernels are tested without a GPU.

What real use throws at it, and what happens:

- gradients that are not the buffer's views (``zero_grad()`` set them to None and backward made
  new ones, or the user assigned them): new ones every step are read where autograd put them, by
  the same kernel through a table of their addresses (:meth:`FlatGroup._table_kernel`; or, where
  one cannot be read by its address, concatenated into a fresh flat gradient for that step);
  tensors seen again on the next step (kept by
  ``zero_grad(set_to_none=False)``) are copied in with one ``_foreach_copy_`` and ``p.grad`` is
  re-pointed to the view, so that in-place accumulation is free from then on, unless something
  else holds the gradient's storage (DDP's ``gradient_as_bucket_view``): then it is copied each step;
- ``clip_grad_norm_`` before ``step()``: it scales the gradients in place, i.e. the views;
- parameters without a gradient: skipped, their step count unchanged, as in torch; the group is
  then stepped in runs of consecutive parameters that agree on step count, state keys and 0-d state;
- sparse gradients: the reference lazy path on that parameter, whose state is then re-adopted;
- bfloat16 or float16 parameters (CUDA): their full-shaped state is float32, in ``state_dict`` too
  (torch's ``load_state_dict`` casts it to the parameter's dtype, and adopting casts it back up;
  0-d state keeps the dtype it is loaded with, as in torch); a group that leaves the fused path
  gets its state back in the parameters' dtype, and sparse gradients in such a group are refused;
- a parameter whose shape changed in place (its data pointer kept): seen by its new gradient's
  shape, and the group is rebuilt;
- ``add_param_group``: a new group, flattened on its first step; ``load_state_dict``, pickling, a
  parameter whose storage changed (``model.to(...)``): the group is rebuilt from ``self.state``.
"""

from __future__ import annotations

import itertools
import operator
import os
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

import numpy as np
import torch

from descentlab.optim.contract import ChainLike
from descentlab.optim.paths import numba_kernels, reference, triton_kernels
from descentlab.optim.paths.base import gradients, step_and_lr
from descentlab.optim.paths.trace import SymbolicState, Trace
from descentlab.rules import as_real
from descentlab.rules.clip import clips

_GRAD = operator.attrgetter("grad")
_SPARSE = operator.attrgetter("is_sparse")
_SHAPE = operator.attrgetter("shape")
_DTYPE = operator.attrgetter("dtype")
_DEVICE = operator.attrgetter("device")
_PLAIN = (torch.Tensor, torch.nn.Parameter)  # a subclass (a DTensor, say) may keep its elements elsewhere
HALF = (torch.bfloat16, torch.float16)


def backend(device: torch.device):
    """The kernel backend for buffers on ``device``: numba on the CPU, Triton on CUDA, or None."""
    if device.type == "cuda":
        return triton_kernels
    if device.type == "cpu":
        return triton_kernels if os.environ.get("DESCENTLAB_FUSED_BACKEND") == "triton" else numba_kernels
    return None


def ineligibility(params: list[torch.Tensor]) -> str | None:
    """Why these parameters cannot share one flat buffer, or None if they can."""
    if not params:
        return "the group has no parameters"
    device = params[0].device
    kernels = backend(device)
    if kernels is None:
        return f"params[0] is on {device}; the fused kernels run on the CPU (numba) and on CUDA (Triton)"
    reason = kernels.unavailable_reason()
    if reason:
        return reason
    dtypes = (torch.float32, torch.float64, *(HALF if kernels is triton_kernels else ()))
    reasons = (_parameter_reason(i, p, params[0], dtypes) for i, p in enumerate(params))
    return next((reason for reason in reasons if reason), None) or _overlap_reason(params)


def _parameter_reason(i: int, p: torch.Tensor, first: torch.Tensor, dtypes: tuple) -> str | None:
    """Why ``params[i]`` cannot join ``params[0]`` (``first``) in a flat buffer of one of ``dtypes``, or None."""
    device, dtype = first.device, first.dtype
    if p.device != device:
        return f"the group spans devices ({device} and {p.device} at params[{i}])"
    if as_real(p).dtype not in dtypes:
        names = ", ".join(str(d).removeprefix("torch.") for d in dtypes)
        return f"params[{i}] has dtype {p.dtype}; the fused kernels on {device.type} take {names} (or complex)"
    if p.dtype != dtype:
        return f"the group mixes dtypes ({dtype} and {p.dtype} at params[{i}])"
    if p.layout != torch.strided or not p.is_contiguous():
        return f"params[{i}] is not a contiguous dense tensor"
    return None


def _overlap_reason(params: list[torch.Tensor]) -> str | None:
    """Which two parameters share memory (flattening would give each its own copy), or None."""
    spans = sorted(
        (p.data_ptr(), p.data_ptr() + p.numel() * p.element_size(), i) for i, p in enumerate(map(local, params))
        if p.numel()
    )
    for (_, end, i), (start, _, j) in itertools.pairwise(spans):
        if start < end:  # flattening would give each its own copy and break the sharing
            return f"params[{min(i, j)}] and params[{max(i, j)}] share memory"
    return None


def _holders(storage: torch.UntypedStorage) -> int:
    """How many tensors hold ``storage`` (the Python storage object asking is not counted)."""
    return torch._C._storage_Use_Count(storage._cdata) - 1


def dtensor_type():
    """torch's DTensor class, or None where torch.distributed is unavailable."""
    if not torch.distributed.is_available():
        return None
    from torch.distributed.tensor import DTensor

    return DTensor


def local(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor's local shard (where its elements are: a view of its owner's storage); any other tensor itself."""
    dtensor = dtensor_type()
    return tensor.to_local() if dtensor is not None and isinstance(tensor, dtensor) else tensor


def held_elsewhere(params: list[torch.Tensor]) -> str | None:
    """Why moving these parameters into a flat buffer could take storage from another holder, or None.

    Checked when a group is built or rebuilt. A parameter is moved only when the optimizer is
    provably its storage's sole holder: the storage is not in shared memory (Hogwild's
    ``share_memory()``), no tensor other than this group's parameters holds it (torch counts them:
    a ZeRO bucket, an FSDP flat parameter, a DeepSpeed partition or a user's alias is one: each
    is a tensor). A parameter that views a bigger storage nobody else holds (an unpickled
    parameter, or one left in this optimizer's flat buffer by a rebuild) is movable: nobody else
    can see the rest. Only a raw pointer (a CUDA graph captured before the first step) escapes the
    count, whether or not the parameter is all of its storage. Aliases made later see the flat
    buffer's views and stay correct.
    """
    dtensor = dtensor_type()
    storages: dict[int, list] = {}
    for i, p in enumerate(params):
        if dtensor is not None and isinstance(p, dtensor):
            return (
                f"params[{i}] is a DTensor: its local shard is a view of storage its owner keeps (FSDP2 "
                "all-gathers from its own padded shard buffer), so it cannot be moved into a flat buffer"
            )
        storage = p.untyped_storage()
        if storage.is_shared():
            return f"params[{i}] is in shared memory (share_memory(): other processes hold it)"
        if not p.numel():
            continue  # nothing to take away
        entry = storages.setdefault(storage.data_ptr(), [i, _holders(storage), 0])
        entry[2] += 1
    for first, holders, ours in storages.values():
        if holders > ours:
            return (
                f"params[{first}]'s storage has {holders - ours} other holder(s) (a view, an alias, a bucket "
                "or a flat parameter), which would stop seeing the updates if it were moved"
            )
    return None


def split_gradients(grads: list, indices: list[int]) -> tuple[list[int], list[int]]:
    """The indices of the dense gradients (``indices`` itself if all are) and of the sparse ones."""
    if not any(map(operator.is_, grads, repeat(None))) and not any(map(_SPARSE, grads)):
        return indices, []
    present = [i for i, grad in enumerate(grads) if grad is not None and not grad.is_sparse]
    return present, [i for i, grad in enumerate(grads) if grad is not None and grad.is_sparse]


def sole_holder(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` alone holds its storage, all of it, outside shared memory (a gradient we may re-point)."""
    storage = tensor.untyped_storage()
    return (not storage.is_shared() and storage.nbytes() == tensor.numel() * tensor.element_size()
            and _holders(storage) == 1)


class Column(NamedTuple):
    """A column of a table of addresses: what the rows point into (kept alive while a kernel may run), and where."""

    tensors: list
    addresses: np.ndarray


class FlatGroup:
    """One param group's flat buffers and the bookkeeping to step them with fused kernels."""

    path = "fused"  # what ChainOptimizer.path reports for a group this steps

    def __init__(self, chain: ChainLike, params: list[torch.Tensor], state: dict) -> None:
        self.chain = chain
        self.params = list(params)
        self.scalar_keys = chain.scalar_keys
        first = self.params[0]
        self.dtype, self.device = as_real(first).dtype, first.device
        self.state_dtype = self._state_dtype()
        self.kernels = backend(self.device)
        self.tensor_dtype = first.dtype
        self.offsets = list(itertools.accumulate((as_real(self._local(p)).numel() for p in self.params), initial=0))
        self.starts = np.array(self.offsets, dtype=np.int64)  # for tables of addresses: where each one starts
        self.lengths = np.diff(self.starts)  # and its real elements
        self.scratch: torch.Tensor | None = None
        self._place()
        self._track(state)

    def _track(self, state: dict) -> None:
        """Start the bookkeeping of where the parameters are and what state they hold; adopt that state."""
        self.data_ptrs = self._pointers(self.params)
        self.shapes = [p.shape for p in self.params]
        self.indices = list(range(len(self.params)))
        self.arrays: dict[str, torch.Tensor] = {}
        self.scalars: dict[str, torch.Tensor] = {}
        self.keys: list[frozenset] = [frozenset()] * len(self.params)
        self.initialized: tuple | None = None  # the settings of the last step that created nothing
        self.adopt(state, range(len(self.params)))

    def _state_dtype(self) -> torch.dtype:
        # half-precision parameters keep float32 state (the mixed-precision recipe): the moments
        # hold what bfloat16 would round away; arithmetic is in float32 and p is rounded once
        return torch.float32 if self.dtype in HALF else self.dtype

    def _place(self) -> None:
        """Move the parameters into one flat buffer, and make one for their gradients."""
        total = self.offsets[-1]
        self.param = torch.empty(total, dtype=self.dtype, device=self.device)
        self.grad = torch.zeros(total, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for p, view in zip(self.params, self._views(self.param), strict=True):
                view.copy_(p)
                p.data = view
        self.grad_views = self._views(self.grad)
        self.last_fresh: list[int] = []  # ids of the last step's gradients, when none was the buffer's view

    def _local(self, tensor: torch.Tensor) -> torch.Tensor:
        """Where ``tensor``'s elements are: the tensor itself (a parameter of a flat group is never a DTensor)."""
        return tensor

    def _pointers(self, tensors: list[torch.Tensor]) -> list[int]:
        """The data pointers of ``tensors``' elements."""
        return list(map(torch.Tensor.data_ptr, tensors))  # map() over a C function: this runs every step

    def _view(self, flat: torch.Tensor, i: int) -> torch.Tensor:
        """``params[i]``'s slice of ``flat``, shaped (and typed: complex) like the parameter (its local shard)."""
        p = self._local(self.params[i])
        view = flat[self.offsets[i] : self.offsets[i + 1]]
        return torch.view_as_complex(view.view(*p.shape, 2)) if p.is_complex() else view.view(p.shape)

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [self._view(flat, i) for i in range(len(self.params))]

    def adopt(self, state: dict, indices) -> None:
        """Move the state of ``params[i]`` (each ``i`` in ``indices``) into the flat buffers."""
        for i in indices:
            p = self.params[i]
            entries = state.get(p)
            if not entries:  # not stepped yet: no entry, as in torch (state is a defaultdict)
                self.keys[i] = frozenset()
                continue
            for key, value in list(entries.items()):
                if not torch.is_tensor(value):
                    continue
                slot = self._slot(key, value, i)
                if slot is None:
                    continue
                slot.copy_(value)
                entries[key] = slot
            self.keys[i] = frozenset(entries)
        self._keys_changed(state)

    def _slot(self, key: str, value: torch.Tensor, i: int) -> torch.Tensor | None:
        """Where :meth:`adopt` moves ``params[i]``'s state entry ``key`` (now ``value``), or None to leave it."""
        if key in self.scalar_keys and value.dim() == 0:
            if key not in self.scalars:  # on the CPU, as torch keeps ``step``: reading it never waits
                self.scalars[key] = torch.zeros(len(self.params), dtype=value.dtype)
            return self.scalars[key][i]
        if value.shape == self.params[i].shape:
            return self._view(self._array(key), i)
        return None

    def _keys_changed(self, state: dict) -> None:
        """After ``self.keys`` or ``state``'s entries changed through the group: whether every parameter holds the
        same keys, forget the scalars' check, and remember which dicts and tensors ``state`` holds."""
        self.uniform_keys = self.keys.count(self.keys[0]) == len(self.keys)
        self.uniform_scalars: bool | None = None  # unknown until _runs looks
        self.entries = list(map(state.get, self.params))
        self.seen = list(state.values())

    def _state_kept(self, state: dict) -> bool:
        """Whether ``state`` still holds, for each parameter, the dict of entries the group holds.

        A quick look at every step: if none of ``state``'s dicts changed (no lookups: hashing a
        tensor is a Python call), neither did the group's.
        """
        if len(state) == len(self.seen) and all(map(operator.is_, state.values(), self.seen)):
            return True
        if not all(map(operator.is_, map(state.get, self.params), self.entries)):
            return False
        self.seen = list(state.values())  # another group's changed
        return True

    def _still_held(self, params: list[torch.Tensor], state: dict) -> bool:
        """:meth:`holds`; if so, state put back behind the group's back (ZeRO's ``load_state_dict`` assigns
        ``state[p]`` a new dict; ``state[p] = {}`` starts over) is adopted: torch steps what ``state`` holds."""
        if not self.holds(params):
            return False
        if not self._state_kept(state):
            self.adopt(state, self.indices)
        return True

    def release(self, state: dict, undo: list) -> None:
        """Give the parameters' full-shaped state back in their own dtype (the group leaves the fused path)."""
        undo.append(self._restorer(state, range(len(self.params))))
        for p in self.params:
            for key, value in state.get(p, {}).items():
                if torch.is_tensor(value) and value.shape == p.shape and value.dtype != p.dtype:
                    state[p][key] = value.to(p.dtype)

    def _array(self, key: str) -> torch.Tensor:
        if key not in self.arrays:
            self.arrays[key] = torch.zeros(self.offsets[-1], dtype=self.state_dtype, device=self.device)
        return self.arrays[key]

    def holds(self, params: list[torch.Tensor]) -> bool:
        """Whether ``params`` are exactly this group's parameters, still living in its buffer."""
        return (
            len(params) == len(self.params)
            and all(map(operator.is_, params, self.params))
            and self._pointers(params) == self.data_ptrs
        )

    def plan(self, chain: ChainLike, params: list[torch.Tensor], state: dict, hp, undo: list):
        """Plan one step of every parameter of the group that has a gradient; return what applies it.

        Planning traces the kernels (Triton compiles a new one here) and creates the state a first
        step needs (with an action in ``undo`` that takes it back); the step counts, state and
        parameters change only when the returned function runs. Returns None, having changed nothing, if ``params``
        are no longer exactly this group's parameters living in its buffer (the caller then
        rebuilds the group).
        """
        if not self._still_held(params, state):
            return None
        gathered = self._gather(list(map(_GRAD, params)))
        if gathered is None:
            return None  # a parameter changed shape in place (``p.data = p.data[:2]``): rebuild
        present, sparse, source = gathered
        grad_source, negate, sparse_grads = self._clipped(present, sparse, source, hp)
        runs = []
        if present:
            self._initialize(state, present, hp, undo)
            runs = [self._plan_run(state, start, end, grad_source, negate, hp) for start, end in self._runs(present)]

        def apply() -> None:
            for i, grad in zip(sparse, sparse_grads, strict=True):
                reference.step_param(self.chain, self.params[i], grad, state[self.params[i]], hp)
                self.adopt(state, [i])
            for run in runs:
                run()

        return apply

    def _gather(self, grads: list) -> tuple[list[int], list[int], torch.Tensor | list] | None:
        """Where this step's gradients are: ``(present, sparse, source)``, or None if one's shape changed.

        ``present`` are the indices of the dense gradients, which the kernel reads from ``source``
        (a flat tensor: the gradient buffer, or this step's concatenation; or the list of this
        step's new gradients, read where they are); ``sparse`` those of the sparse ones. Gradients
        that are not the buffer's views are adopted into it (:meth:`_adopt_gradients`).
        """
        if all(map(operator.is_, grads, self.grad_views)):
            return self.indices, [], self.grad  # the steady state: backward accumulated into the views
        present, sparse = split_gradients(grads, self.indices)
        if present is self.indices:
            return self._gather_new(grads)
        stale = [i for i in present if grads[i] is not self.grad_views[i]]
        if any(grads[i].shape != self.shapes[i] for i in stale):
            return None
        if sparse and self.state_dtype != self.dtype:  # refused before any gradient moves
            raise RuntimeError(
                f"the fused path keeps float32 state for {self.dtype} parameters, which the sparse (lazy) "
                "path cannot step; use fused=False for a group with sparse gradients"
            )
        self._adopt_gradients(stale, [grads[i] for i in stale])
        return present, sparse, self.grad

    def _gather_new(self, grads: list[torch.Tensor]) -> tuple[list[int], list[int], torch.Tensor | list] | None:
        """:meth:`_gather` when every gradient is dense and none is the buffer's view (``zero_grad()`` and backward)."""
        if list(map(_SHAPE, grads)) != self.shapes:
            return None
        kept = list(map(id, grads))
        last, self.last_fresh = self.last_fresh, kept
        # the same tensors as last step, and nobody else's (a DDP bucket view is DDP's): adopted
        if kept == last and all(map(sole_holder, grads)):
            self._adopt_gradients(self.indices, grads)
            return self.indices, [], self.grad
        # new ones every step: read where autograd put them, through a table of their addresses
        if self.state_dtype == self.dtype and self._addressable(grads):
            return self.indices, [], grads
        # or one concatenation, no copies per tensor (of one tensor, a view: its lazy conjugation resolved)
        flat = torch._utils._flatten_dense_tensors(grads).resolve_conj().resolve_neg()
        return self.indices, [], torch.view_as_real(flat).view(-1) if flat.is_complex() else flat

    def _addressable(self, tensors: list[torch.Tensor]) -> bool:
        """Whether a kernel reads each of ``tensors`` by its address (plain, dense, contiguous, our dtype).

        A complex tensor conjugated or negated lazily (autograd leaves ``conj(p)``'s gradient so) is
        not: its memory holds the values before. (A real one is negated lazily only by hand, as the
        imaginary part of a conjugated view: not looked for, which would cost each real step 70 ns a tensor.)
        """
        lazy = self.tensor_dtype.is_complex and (any(map(torch.Tensor.is_conj, tensors))
                                                 or any(map(torch.Tensor.is_neg, tensors)))
        return (not lazy and all(type(tensor) in _PLAIN for tensor in tensors)
                and all(map(torch.Tensor.is_contiguous, tensors))
                and set(map(_DTYPE, tensors)) <= {self.tensor_dtype} and set(map(_DEVICE, tensors)) <= {self.device})

    def _adopt_gradients(self, indices: list[int], grads: list[torch.Tensor]) -> None:
        """Copy ``grads`` into the gradient buffer's views, and make each one ``p.grad``.

        From then on backward accumulates into the buffer, unless another holder of a gradient's
        storage would stop seeing it: that gradient is copied in again at every step.
        """
        if not indices:
            return
        torch._foreach_copy_([self.grad_views[i] for i in indices], grads)
        for i, grad in zip(indices, grads, strict=True):
            if sole_holder(grad):
                self.params[i].grad = self.grad_views[i]

    def _clipped(self, present: list[int], sparse: list[int], source: torch.Tensor | list, hp):
        """The flat gradient the kernel reads, whether it negates it, and the sparse gradients (clipped).

        Clipping needs every gradient of the group, sparse ones included: the dense ones are
        clipped into a scratch buffer (negated there if maximizing), the flat gradient left as it is.
        """
        if not clips(hp):
            return source, hp.maximize, gradients([self.params[i] for i in sparse], hp)
        indices = sorted(present + sparse)
        grads = dict(zip(indices, gradients([self.params[i] for i in indices], hp), strict=True))
        scratch = self._scratch()
        if present:
            scratch_views = self._views(scratch)
            torch._foreach_copy_([scratch_views[i] for i in present], [grads[i] for i in present])
        return scratch, False, [grads[i] for i in sparse]

    def _scratch(self) -> torch.Tensor:
        """A flat buffer of the group's size for gradients copied before the kernel reads them (made once)."""
        if self.scratch is None:
            self.scratch = torch.zeros(self.offsets[-1], dtype=self.dtype, device=self.device)
        return self.scratch

    def _initialize(self, state: dict, present: list[int], hp, undo: list) -> None:
        """Create the state the chain's ``initialize`` would create (new parameters, new options)."""
        key_sets = {self.keys[0]} if self.uniform_keys else {self.keys[i] for i in present}
        # what initialize reads: the keys held and the hyperparameters (not the parameters, nor
        # the learning rate, which a scheduler changes every step: the contract says init may not
        # read it); a step with the same ones as the last finds nothing missing again
        settings = (frozenset(key_sets), tuple(value for name, value in hp.items() if name not in ("params", "lr")))
        if settings == self.initialized:
            return
        missing = []
        for keys in key_sets:
            probe = dict.fromkeys(keys)
            self.chain.initialize(self.params[present[0]], probe, hp)
            if len(probe) > len(keys):
                missing += [i for i in present if self.keys[i] == keys]
        if not missing:
            self.initialized = settings
            return
        undo.append(self._restorer(state, missing))
        for i in missing:
            self.chain.initialize(self.params[i], state[self.params[i]], hp)
        self.adopt(state, missing)

    def _kernel(self, trace: Trace, state: dict, start: int, end: int, grad_source: torch.Tensor | list):
        """The kernel of ``trace`` over ``params[start:end]``, and what gives the state entries it creates.

        Over flat buffers when the gradient is one too; through a table of addresses when it is
        the gradients where autograd put them (``grad_source[i]`` for ``params[i]``).
        """
        if isinstance(grad_source, list):
            return self._table_kernel(trace, state, start, end, grad_source)
        by_argument = {"p": self.param, "g": grad_source}
        by_argument.update({argument: self._array(key) for key, argument in trace.state_keys.items()})
        buffers = [by_argument[argument] for argument in trace.arguments()]
        if not (start == 0 and end == len(self.params)):
            a, b = self.offsets[start], self.offsets[end]
            buffers = [buffer[a:b] for buffer in buffers]
        return self.kernels.kernel(trace, buffers, self.dtype), self._created_entry

    def _created_entry(self, key: str, i: int) -> torch.Tensor:
        """``params[i]``'s entry ``key``, which a step just created."""
        return self._view(self.arrays[key], i)

    def _table_kernel(self, trace: Trace, state: dict, start: int, end: int, grad_source: torch.Tensor | list):
        """:meth:`_kernel` through a table: one row per parameter, one address per argument."""
        keys = {argument: key for key, argument in trace.state_keys.items()}
        columns: list[np.ndarray] = []
        keep: list[torch.Tensor] = []
        for argument in trace.arguments():
            if argument == "p":
                source = self._param_source(start, end)
            elif argument == "g":
                source = grad_source if isinstance(grad_source, torch.Tensor) else grad_source[start:end]
            else:
                source = self._state_source(state, keys[argument], start, end)
            column = self._addresses(source, start, end)
            columns.append(column.addresses)
            keep += column.tensors
        addresses = np.stack(columns, axis=1)
        return self.kernels.table_kernel(trace, addresses, self.lengths[start:end], self.dtype, keep), \
            self._created_entry

    def _addresses(self, source: torch.Tensor | list | Column, start: int, end: int) -> Column:
        """Where each of ``params[start:end]``'s tensors starts in ``source``: a flat buffer, the run's
        tensors, or a column whose addresses were read already."""
        if isinstance(source, Column):
            return source
        if isinstance(source, torch.Tensor):  # each row at its offset
            return Column([source], source.data_ptr() + self.starts[start:end] * (torch.finfo(self.dtype).bits // 8))
        return Column(source, np.array(self._pointers(source), dtype=np.int64))

    def _param_source(self, start: int, end: int) -> torch.Tensor | list | Column:
        """Where the kernel finds ``params[start:end]``: the flat buffer."""
        return self.param

    def _state_source(self, state: dict, key: str, start: int, end: int) -> torch.Tensor | list | Column:
        """Where the kernel finds state entry ``key`` of ``params[start:end]``: its flat buffer."""
        return self._array(key)

    def _restorer(self, state: dict, indices: Sequence[int]):
        """What puts the state of ``params[i]`` (each ``i`` in ``indices``) back as it is now."""
        saved = [(i, dict(state.get(self.params[i], {})), self.keys[i]) for i in indices]

        def restore() -> None:
            for i, entries, keys in saved:
                current = state[self.params[i]]
                current.clear()
                current.update(entries)
                if not entries:  # as before: no entry at all
                    del state[self.params[i]]
                self.keys[i] = keys
            self._keys_changed(state)

        return restore

    def _runs(self, present: list[int]):
        """Maximal runs ``[start, end)`` of consecutive parameters that can share one kernel call."""
        n = len(self.params)
        if len(present) == n and self.uniform_keys:
            if self.uniform_scalars is None:
                self.uniform_scalars = all(bool((values == values[0]).all()) for values in self.scalars.values())
            if self.uniform_scalars:
                return [(0, n)]  # stays uniform: every entry changes alike
        self.uniform_scalars = None  # some parameters step and others not: look again next time
        runs: list[list[int]] = []
        previous = None
        for i in present:
            signature = (self.keys[i], tuple(values[i].item() for values in self.scalars.values()))
            if runs and previous == (i - 1, signature):
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
            previous = (i, signature)
        return runs

    def _trace(self, scalars: dict, keys: frozenset, negate: bool, hp) -> tuple[Trace, SymbolicState]:
        """The chain's step traced over one run: its 0-d state ``scalars``, holding state ``keys``."""
        step, lr = step_and_lr(scalars["step"][0].item(), hp)
        trace = Trace()
        p, g = trace.array("p"), trace.array("g")
        symbolic = SymbolicState(trace, {key: values for key, values in scalars.items() if key != "step"}, keys)
        self.chain.update(p, -g if negate else g, symbolic, hp, lr, step)
        return trace, symbolic

    def _plan_run(self, state: dict, start: int, end: int, grad_source, negate: bool, hp):
        """Trace the step of ``params[start:end]`` and get its kernel; return what runs it."""
        whole = start == 0 and end == len(self.params)  # the usual case: no slicing at all
        scalars = self.scalars if whole else {key: values[start:end] for key, values in self.scalars.items()}
        steps = scalars["step"]
        trace, symbolic = self._trace(scalars, self.keys[start], negate, hp)
        kernel, created = self._kernel(trace, state, start, end, grad_source)

        def run() -> None:
            kernel()  # first: if the launch fails, the step counts have not moved either
            steps.add_(1)
            symbolic.commit()
            for key in symbolic.created:
                for i in range(start, end):
                    state[self.params[i]][key] = created(key, i)
                    self.keys[i] = self.keys[i] | {key}
            if symbolic.created:
                self._keys_changed(state)

        return run
