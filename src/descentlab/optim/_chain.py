"""The torch.optim shell around a chain of rules, and the chain builder for the lattice."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from descentlab.optim import _checks, lattice
from descentlab.optim.contract import Final, StateLike, TensorLike
from descentlab.optim.paths import foreach, reference
from descentlab.optim.paths.fused import FlatGroup, dtensor_type, held_elsewhere, ineligibility, local
from descentlab.optim.paths.table import TableGroup
from descentlab.rules import Hyper, scalar_tensor
from descentlab.rules.clip import clips
from descentlab.rules.momentum import HeavyBall


class Subtract:
    """torch's final stage: ``p ← p − lr·u``, one fused ``add_`` with ``alpha`` (``addcmul_`` per row)."""

    rules = ()

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        """No state of its own."""

    def apply(self, p: TensorLike, u: TensorLike, g: TensorLike, state: StateLike, hp: Hyper, lr, step: float) -> None:
        if torch.is_tensor(lr) or isinstance(lr, foreach.TensorList):  # per row (the lab's populations), or traced
            p.addcmul_(u, lr, value=-1)
        else:
            p.add_(u, alpha=-lr)


@dataclass(frozen=True)
class ScaleThenSubtract:
    """Keras's final stage: ``u ← lr·u``, then the rules that act on lr-scaled updates, then ``p ← p − u``."""

    rules: tuple = ()

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        """No state of its own (its rules have theirs)."""

    def apply(self, p: TensorLike, u: TensorLike, g: TensorLike, state: StateLike, hp: Hyper, lr, step: float) -> None:
        u = u * lr
        for rule in self.rules:
            u = rule(u, g, state, hp, step)
        p.sub_(u)


@dataclass(frozen=True)
class Chain:
    """One optimizer's step on one real parameter: weight decay, the rules, then the final stage.

    ``rules`` run before the learning rate; ``final`` brings the update to the parameter
    (:class:`Subtract`, :class:`ScaleThenSubtract`, or FTRL's proximal step, which sets it).
    ``keras_rounding`` rounds decoupled weight decay as Keras does (``p − p·wd·lr``). Every path
    runs :meth:`update`, on tensors, on lists of tensors or on symbolic values
    (:mod:`descentlab.optim.contract`), and :meth:`initialize` to create the state.
    """

    rules: tuple
    final: Final = Subtract()
    keras_rounding: bool = False

    @property
    def stateful(self) -> tuple:
        """Everything with an ``init``: the rules, then the final stage's rules and itself."""
        return (*self.rules, *self.final.rules, self.final)

    @property
    def scalar_keys(self) -> frozenset:
        """The 0-d state entries: ``step`` and what the rules declare (``mu_product``)."""
        return frozenset({"step"}.union(*(getattr(rule, "scalar_state", ()) for rule in self.stateful)))

    def initialize(self, p: Tensor, state: dict, hp: Hyper) -> None:
        """Create what a first step needs: ``step`` (0-d, on the CPU, as torch keeps it) and each rule's state."""
        if "step" not in state:
            state["step"] = scalar_tensor(0.0)
        for rule in self.stateful:
            rule.init(p, state, hp)

    def update(self, p, g, state, hp: Hyper, lr, step: float) -> None:
        """The dense step of one real parameter (or of the gathered rows of a sparse one)."""
        g = self.decay_weights(p, g, hp, lr)
        u = g
        for rule in self.rules:
            u = rule(u, g, state, hp, step)
        self.final.apply(p, u, g, state, hp, lr, step)

    def decay_weights(self, p, g, hp: Hyper, lr):
        """L2 ``g + wd·p``, or decoupled: ``p ← p·(1 − lr·wd)`` before the update (Keras: ``p − p·wd·lr``)."""
        weight_decay = hp.weight_decay
        if not weight_decay:
            return g
        if not hp.decoupled_weight_decay:
            return g.add(p, alpha=weight_decay)
        if self.keras_rounding:
            p.sub_(p * weight_decay * lr)
        else:
            p.mul_(1 - lr * weight_decay)
        return g


PATHS = {"reference": reference, "foreach": foreach}
GROUPS = {"fused": FlatGroup, "table": TableGroup}  # paths that keep a group object between steps


def hyperparameters(arguments: dict) -> dict:
    """An optimizer's arguments as param-group defaults, with flavor defaults resolved."""
    flavor = _checks.check_flavor(arguments["flavor"])
    return {name: _checks.resolve(value, flavor) for name, value in arguments.items()}


def _number(value):
    return value.item() if torch.is_tensor(value) else value


def build_chain(
    momentum_rule: str, adaptation_rule: str, order: str, eps_placement: str | None, flavor: str
) -> Chain:
    """The chain for one point of the lattice (:mod:`descentlab.optim.lattice`), validated.

    The EMA-of-g² adaptation is bias-corrected (Adam family, state ``exp_avg_sq``) when the
    momentum is an EMA, and not (RMSprop family, state ``square_avg``) otherwise. In the Keras
    flavor, a heavy-ball buffer holds lr-scaled updates (Keras SGD and RMSprop), so the learning
    rate is applied just before the momentum rule.
    """
    lattice.check_point(momentum_rule, adaptation_rule, order, eps_placement)
    point = lattice.Point(momentum_rule, eps_placement, flavor)
    momentum = lattice.momentum(momentum_rule).make(point)
    adaptation = lattice.adaptation(adaptation_rule).make(point)
    ordered = [momentum, adaptation] if order == "momentum_first" else [adaptation, momentum]
    rules = [rule for rule in ordered if rule is not None]
    keras = flavor == "keras"
    if keras and isinstance(momentum, HeavyBall):
        split = rules.index(momentum)
        return Chain(tuple(rules[:split]), ScaleThenSubtract(tuple(rules[split:])), keras_rounding=True)
    return Chain(tuple(rules), ScaleThenSubtract() if keras else Subtract(), keras_rounding=keras)


def _in_place(group: dict) -> str:
    """The path for a group the fused kernels could step but whose storage stays where it is.

    The pointer-table kernel (:mod:`descentlab.optim.paths.table`): the fused kernel over the
    tensors where they are; for DTensors (FSDP2's shards) over their local shards, unless the
    group clips (the norm spans every rank's shards) or a local shard is not one contiguous real
    block: foreach then.
    """
    dtensor = dtensor_type()
    params = group["params"]
    if dtensor is None or not any(isinstance(p, dtensor) for p in params):
        return "table"
    shards = [local(p) for p in params]
    readable = all(shard.is_contiguous() and not shard.is_complex() for shard in shards)
    return "table" if readable and not clips(group) else "foreach"


class ChainOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose step is clip → weight decay → chain of rules → apply.

    Per parameter and step ``t`` (counted per parameter in ``state["step"]``, as torch does)::

        g ← −grad if maximize else grad
        g ← clip(g)                                   clipnorm | global_clipnorm | clipvalue
        lr_t = lr / (1 + lr_decay·(t − 1))            Keras-2 time decay
        g ← g + weight_decay·p                        L2 in the gradient (torch's default), or
        p ← p·(1 − lr_t·weight_decay)                 decoupled_weight_decay (AdamW; Keras's default)
        u ← rules(g);  p ← p − lr_t·u

    Complex parameters are stepped as their real view (``torch.view_as_real``), as torch does: every
    rule is elementwise, so real and imaginary parts are two real coordinates each. Tensor
    hyperparameters (torch accepts a Tensor ``lr`` and ``betas``) are read as numbers at every step.

    A step is planned for every group before anything changes: hyperparameters read, paths chosen,
    gradients gathered and clipped, fused kernels traced (and, on CUDA, compiled; numba compiles on
    the first call, before any count moves), and the state the rules create for a first step taken
    back if planning fails. Only then are kernels run and steps counted and parameters and state
    updated, by arithmetic on operands that agree in dtype, device and shape. An error in a step
    therefore leaves the parameters and the state as they were.

    Three paths run this step (:mod:`descentlab.optim.paths`, one module each behind one
    interface, :class:`descentlab.optim.contract.Path`), chosen per param group with torch's
    switches: ``foreach=False`` (and ``fused`` unset) the per-tensor reference above, the
    specification, with a lazy path for sparse gradients; ``foreach=True`` the same chain on lists
    with ``torch._foreach_*``; ``fused=True`` one generated kernel over flat buffers, numba on the
    CPU and Triton on CUDA. Both batched paths run the reference code itself on list or symbolic
    values, so they cannot drift from it. With neither switch set, the dispatcher takes the fused
    path where it can (one device and dtype per group, contiguous, the backend importable, and
    the optimizer the sole holder of the parameters' storage), the same kernel through a table of
    the tensors' addresses where another holds their storage,
    foreach on other devices, and the reference otherwise. ``step``
    and the other 0-d state live on the CPU, as torch keeps ``step``, so no path waits for the
    device during a step.

    Subclasses pass their defaults (torch's names) and their place in the lattice (``_lattice``,
    which :meth:`chain_for` reads too). ``_aliases``
    maps a subclass's hyperparameter names to the rules' vocabulary (RMSprop's ``alpha`` is the
    adaptation decay ``beta2``); ``_fixed`` holds knobs the subclass does not expose.
    """

    _aliases: dict[str, str] = {}
    _fixed: dict[str, object] = {}
    _lattice: dict[str, Any] = {}  # a named subclass's point: momentum_rule, adaptation_rule, order

    @classmethod
    def chain_for(cls, flavor: str) -> Chain:
        """The chain a named subclass steps with in ``flavor``, without building an optimizer."""
        point = {"momentum_rule": "none", "adaptation_rule": "none", "order": "momentum_first", **cls._lattice}
        eps_placement = lattice.adaptation(point["adaptation_rule"]).eps_for(point["momentum_rule"], flavor)
        return build_chain(**point, eps_placement=eps_placement, flavor=flavor)

    def __init__(
        self,
        params,
        defaults: dict,
        *,
        momentum_rule: str = "none",
        adaptation_rule: str = "none",
        order: str = "momentum_first",
        eps_placement: str | None = None,
        chain: Chain | None = None,
    ) -> None:
        flavor = defaults["flavor"]
        if eps_placement is None:
            eps_placement = lattice.adaptation(adaptation_rule).eps_for(momentum_rule, flavor)
        self.chain = chain or build_chain(momentum_rule, adaptation_rule, order, eps_placement, flavor)
        # Keras SGD bounds its momentum to [0, 1]; no other Keras optimizer checks it
        self._momentum_in_unit_interval = flavor == "keras" and adaptation_rule == "none"
        self._flat: dict[int, FlatGroup] = {}  # a group's FlatGroup or TableGroup, kept between steps
        self._chosen: dict[int, tuple] = {}  # a group's last path other than fused, with what it was chosen for
        self._warned: set[int] = set()  # groups told that fused=True fell back to foreach
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """torch's ``add_param_group``, then the checks; a rejected group is not kept."""
        super().add_param_group(param_group)
        try:
            self._check_group(self.param_groups[-1])
        except ValueError:
            self.param_groups.pop()
            raise

    def _check_group(self, group: dict) -> None:
        """Raise ``ValueError`` naming the first of ``group``'s arguments this optimizer cannot take."""
        _checks.check_params(group["params"])
        _checks.check_group(group, lattice.CHECKS)
        if self._momentum_in_unit_interval and "momentum" in group:
            _checks.in_unit_interval("momentum", group["momentum"], closed=True)
        if group["flavor"] != self.defaults["flavor"]:
            raise ValueError(
                "`flavor` is fixed per optimizer; a param group cannot change it. "
                f"Received: flavor={group['flavor']!r} for an optimizer of flavor "
                f"{self.defaults['flavor']!r}"
            )
        if group.get("fused"):
            reason = ineligibility(group["params"])
            if reason:
                raise ValueError(f"`fused=True` cannot step this group: {reason}. Received: fused=True")

    def __getstate__(self) -> dict:
        # torch pickles only defaults, state and param_groups; the chain is part of the optimizer too.
        return {**super().__getstate__(), "chain": self.chain}  # not _flat: rebuilt from the state

    def __setstate__(self, state: dict) -> None:
        # A torch.optim state_dict lacks descentlab's keys (flavor, clipping, lr_decay): default them.
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        # torch's load_state_dict puts a fused group's ``step`` (and every other entry) on the
        # parameter's device; 0-d state lives on the CPU here, so that a step never waits for it.
        scalar_keys = self.chain.scalar_keys
        for entries in self.state.values():
            for key in scalar_keys & entries.keys():
                if torch.is_tensor(entries[key]) and entries[key].device.type != "cpu":
                    entries[key] = entries[key].cpu()
        self._warned = set()
        self._chosen = {}
        self._flat = {}  # state replaced (load_state_dict, unpickling): rebuild flat buffers from it

    def _hyper(self, group: dict, traced: bool = False) -> Hyper:
        """The hyperparameters one step of ``group`` reads, Tensor values read as numbers.

        A traced step reads no Tensor but ``betas``: a Tensor ``lr`` stays a tensor (read, it would
        become a constant of the graph, recompiled whenever a scheduler changes it; torch's advice
        for compiled steps is a Tensor lr), and the copies schedulers keep beside it (``initial_lr``)
        are not read either, since reading one breaks the graph.
        """
        hp = Hyper(self._fixed)
        hp.update({name: value if traced and torch.is_tensor(value) else _number(value)
                   for name, value in group.items()})
        if "betas" in group:
            hp["beta1"], hp["beta2"] = map(_number, group["betas"])
        for name, target in self._aliases.items():
            hp[target] = hp[name]
        return hp

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the loss, as in torch."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not torch.compiler.is_compiling():
            self._step()
        elif self._traced_or_stepped():
            for group in self.param_groups:
                foreach.traced_step(self.chain, group["params"], self.state, self._hyper(group, traced=True))
        return loss

    def _step(self) -> None:
        """Plan every group's step, then apply them (see the class docstring)."""
        undo: list[Callable[[], None]] = []
        try:
            applies = [self._plan(index, group, undo) for index, group in enumerate(self.param_groups)]
        except BaseException:
            for action in reversed(undo):
                action()
            raise
        for apply in applies:
            apply()

    # Under torch.compile, one graph break, then either the traced foreach step or nothing. The fused
    # path is one kernel already, and its bookkeeping (pointer checks, gradients adopted into the
    # flat buffer) would make dynamo guard on tensor identities and recompile at every step; and
    # deciding here, eagerly, keeps dynamo from guarding on the groups' values (a scheduler's lr).
    @torch.compiler.disable
    def _traced_or_stepped(self) -> bool:
        """Under torch.compile: prepare a traced step and return True, or take the step eagerly and return False.

        Traced: every group on the foreach path, with dense gradients, no clipping and no time
        decay; the state a first step needs is created here, and no flat buffers are left.
        """
        traceable = all(
            group.get("foreach")
            and not group.get("fused")
            and not group["lr_decay"]
            and not clips(group)
            and not any(p.grad is not None and p.grad.is_sparse for p in group["params"])
            for group in self.param_groups
        )
        if not traceable:
            self._step()
            return False
        for index, group in enumerate(self.param_groups):
            flat = self._flat.pop(index, None)
            if flat is not None and flat.state_dtype != flat.dtype:
                flat.release(self.state, [])
            hp = self._hyper(group)
            for p in group["params"]:
                if p.grad is not None:
                    self.chain.initialize(p, self.state[p], hp)
        return True

    def _plan(self, index: int, group: dict, undo: list) -> Callable[[], None]:
        """Everything one group's step needs, with nothing changed yet; returns what applies it."""
        hp = self._hyper(group)
        params = group["params"]
        flat = self._flat.get(index)
        # a group already flattened skips the eligibility scan: its plan checks the buffers itself
        if flat is not None and group.get("foreach") is None and group.get("fused") is not False:
            apply = flat.plan(self.chain, params, self.state, hp, undo)
            if apply is not None:
                return apply
        flat = self._flat.pop(index, None)
        if flat is not None and flat.state_dtype != flat.dtype:
            flat.release(self.state, undo)  # float32 state of half-precision parameters: back to theirs
        del flat  # its buffer would count as another holder of the parameters' storage
        path = self._chosen_path(index, group)
        if path in GROUPS:
            flat = self._flat[index] = GROUPS[path](self.chain, params, self.state)
            return flat.plan(self.chain, params, self.state, hp, undo)
        return PATHS[path].plan(self.chain, params, self.state, hp, undo)

    def _chosen_path(self, index: int, group: dict) -> str:
        """:meth:`path`, remembered while the group's switches, parameters and their data pointers stay.

        Choosing scans every parameter's storage; a group that is not flattened would pay it at
        every step. What the choice read changes only with a parameter's data pointer (a new
        device, dtype or storage) or the switches; a holder that lets go later leaves the group
        on its in-place path, which stays correct.
        """
        params = group["params"]
        key = (group.get("foreach"), group.get("fused"), list(map(id, params)), list(map(Tensor.data_ptr, params)))
        chosen = self._chosen.get(index)
        if chosen is not None and chosen[0] == key:
            return chosen[1]
        path = self.path(group)
        if path not in GROUPS:  # those keep their group object, which checks its own parameters
            self._chosen[index] = (key, path)
        return path

    def _fused_path(self, group: dict) -> str:
        """:meth:`path` with ``fused=True``: "fused", or the in-place path with a warning saying why."""
        params = group["params"]
        reason = ineligibility(params)
        if reason:
            raise RuntimeError(f"`fused=True` cannot step this group: {reason}")
        held = held_elsewhere(params)
        if held is None:
            return "fused"
        path = _in_place(group)
        if id(group) not in self._warned:
            self._warned.add(id(group))
            warnings.warn(f"`fused=True` steps this group with the {path} path, in place: {held}",
                          RuntimeWarning, stacklevel=5)
        return path

    def path(self, group: dict) -> str:
        """Which path steps ``group``: "reference", "foreach", "fused" or "table" (see the class docstring).

        A group the fused kernels could step but whose parameters' storage someone else holds
        (:func:`~descentlab.optim.paths.fused.held_elsewhere`) is stepped in place (:func:`_in_place`:
        "table", the pointer-table kernel); with ``fused=True`` a warning says why.
        """
        params = group["params"]
        flat = next((flat for index, flat in self._flat.items() if self.param_groups[index] is group), None)
        if flat is not None and group.get("foreach") is None and group.get("fused") is not False and flat.holds(params):
            return flat.path  # already built (a flat buffer is the one other holder held_elsewhere would count)
        if group.get("fused"):
            return self._fused_path(group)
        if group.get("foreach"):
            return "foreach"
        if group.get("fused") is None and group.get("foreach") is None:
            if ineligibility(params) is None:
                return "fused" if held_elsewhere(params) is None else _in_place(group)
            if any(p.device.type != "cpu" for p in params):
                return "foreach"
        return "reference"
