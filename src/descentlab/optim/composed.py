"""``Composed``: any point of the momentum × adaptation lattice, as one torch optimizer."""

from __future__ import annotations

from torch import Tensor

from descentlab.optim import lattice
from descentlab.optim._chain import ChainOptimizer, hyperparameters
from descentlab.optim._checks import Flavored
from descentlab.optim._docs import document
from descentlab.optim.named import DECOUPLED, EPS


@document
class Composed(ChainOptimizer):
    """An optimizer built from a momentum rule and an adaptation rule, in a chosen order.

    Update rule (``order="momentum_first"``; ``"adaptation_first"`` swaps the two)::

        u = g → momentum_rule → adaptation_rule;   p ← p − lr·u

    ``momentum_rule`` (:data:`descentlab.optim.lattice.MOMENTUM`):
        {momentum_rules}
    ``adaptation_rule`` (:data:`descentlab.optim.lattice.ADAPTATION`):
        {adaptation_rules}
    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        momentum_rule: one of the momentum rules above.
        adaptation_rule: one of the adaptation rules above.
        order: ``"momentum_first"`` or ``"adaptation_first"``.
        eps_placement: where ε enters the denominator (``"outside"``, ``"inside"``, ``"hat"``; see
            :mod:`descentlab.rules.adaptation`); None is the flavor's choice for that point.
        momentum: μ ≥ 0 of ``heavy_ball`` and ``nesterov``.
        dampening: τ in [0, 1] of ``heavy_ball``.
        betas: (β1, β2) in [0, 1): β1 for the EMA momentum rules, β2 the decay of every
            adaptation statistic.
        momentum_decay: ψ ≥ 0 of ``nesterov_ema``.
        eps: ε ≥ 0 of the adaptation rules.
        initial_accumulator_value: Σ₀ ≥ 0 of ``sum``.
        centered: ``ema`` divides by the root of the variance estimate ``v − ḡ²``.
        amsgrad: divide by the running maximum of the adaptation statistic (rules that list it above).
        {shared}

    Every named optimizer is one point: ``Adam`` is ``Composed(momentum_rule="ema",
    adaptation_rule="ema")``, ``Nadamax`` is ``Composed(momentum_rule="nesterov_ema",
    adaptation_rule="max")``, torch's ``RMSprop(momentum=μ)`` is ``Composed(momentum_rule=
    "heavy_ball", adaptation_rule="ema", order="adaptation_first", momentum=μ, betas=(·, alpha))``,
    and each gives bit-identical results to its named class (docs/library.md lists the lattice).

    Conventions:
        ``flavor="torch"`` follows torch.optim's formulas; ``flavor="keras"`` Keras 3's: ε placement,
        lr inside heavy-ball buffers, ψ = 1 for the Nesterov schedule, ε = 1e-7, decoupled weight
        decay. Other knobs, the clipping options and ``lr_decay`` are shared by every optimizer.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        *,
        momentum_rule: str = "none",
        adaptation_rule: str = "none",
        order: str = "momentum_first",
        eps_placement: str | None = None,
        momentum: float = 0.9,
        dampening: float = 0.0,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        momentum_decay: float | Flavored = Flavored(torch=4e-3, keras=1.0),
        eps: float | Flavored = EPS,
        initial_accumulator_value: float = 0.0,
        centered: bool = False,
        amsgrad: bool = False,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool | Flavored = DECOUPLED,
        lr_decay: float = 0.0,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        clipvalue: float | None = None,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        flavor: str = "torch",
    ) -> None:
        lattice.check_switches(adaptation_rule, {"centered": centered, "amsgrad": amsgrad})
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, nesterov=momentum_rule == "nesterov", betas=betas,
            momentum_decay=momentum_decay, eps=eps, initial_accumulator_value=initial_accumulator_value,
            centered=centered, amsgrad=amsgrad, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, lr_decay=lr_decay, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize, foreach=foreach, fused=fused,
            flavor=flavor,
        )
        super().__init__(
            params, hyperparameters(defaults), momentum_rule=momentum_rule, adaptation_rule=adaptation_rule,
            order=order, eps_placement=eps_placement,
        )


for _kind in ("momentum_rule", "adaptation_rule"):  # the choices, from the lattice's entries
    Composed.__doc__ = (Composed.__doc__ or "").replace(f"        {{{_kind}s}}", lattice.describe(_kind))
