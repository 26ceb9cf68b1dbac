"""``Composed``: any point of the momentum × adaptation lattice, as one torch optimizer."""

from __future__ import annotations

from descentlab.optim._checks import Flavored
from descentlab.optim._chain import ChainOptimizer, hyperparameters


class Composed(ChainOptimizer):
    """An optimizer built from a momentum rule and an adaptation rule, in a chosen order.

    Update rule (``order="momentum_first"``; ``"adaptation_first"`` swaps the two)::

        u = g → momentum_rule → adaptation_rule;   p ← p − lr·u

    ``momentum_rule``:
        ``"none"``; ``"heavy_ball"`` (torch's buffer, ``momentum``, ``dampening``);
        ``"nesterov"`` (torch's form of NAG); ``"ema"`` (Adam's bias-corrected EMA, ``betas[0]``);
        ``"nesterov_ema"`` (Nadam's scheduled Nesterov EMA, ``betas[0]``, ``momentum_decay``).
    ``adaptation_rule``:
        ``"none"``; ``"sum"`` (Adagrad's Σg², ``initial_accumulator_value``); ``"ema"`` (EMA of g²
        with decay ``betas[1]``, ``centered``, ``amsgrad``; bias-corrected when the momentum is an
        EMA); ``"max"`` (Adamax's EMA-max of |g|, ``betas[1]``); ``"delta"`` (Adadelta's ratio,
        decay ``betas[1]``).
    ``eps_placement``:
        where ε enters the denominator (``"outside"``, ``"inside"``, ``"hat"``; see
        :mod:`descentlab.rules.adaptation`); by default the flavor's choice for that point.

    Every named optimizer is one point: ``Adam`` is ``Composed(momentum_rule="ema",
    adaptation_rule="ema")``, ``Nadamax`` is ``Composed(momentum_rule="nesterov_ema",
    adaptation_rule="max")``, torch's ``RMSprop(momentum=μ)`` is ``Composed(momentum_rule=
    "heavy_ball", adaptation_rule="ema", order="adaptation_first", momentum=μ, betas=(·, alpha))``,
    and each gives bit-identical results to its named class (the README lists the lattice).

    Conventions:
        ``flavor="torch"`` follows torch.optim's formulas; ``flavor="keras"`` Keras 3's: ε placement,
        lr inside heavy-ball buffers, ψ = 1 for the Nesterov schedule, ε = 1e-7, decoupled weight
        decay. Other knobs, the clipping options and ``lr_decay`` are shared by every optimizer.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        *,
        momentum_rule: str = "none",
        adaptation_rule: str = "none",
        order: str = "momentum_first",
        eps_placement: str | None = None,
        momentum: float = 0.9,
        dampening: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        momentum_decay: float = Flavored(torch=4e-3, keras=1.0),
        eps: float = Flavored(torch=1e-8, keras=1e-7),
        initial_accumulator_value: float = 0.0,
        centered: bool = False,
        amsgrad: bool = False,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        clipvalue: float | None = None,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        flavor: str = "torch",
    ) -> None:
        arguments = dict(locals())
        structure = {
            key: arguments.pop(key) for key in ("momentum_rule", "adaptation_rule", "order", "eps_placement")
        }
        for knob in ("centered", "amsgrad"):
            if arguments[knob] and structure["adaptation_rule"] != "ema":
                raise ValueError(
                    f"`{knob}` needs adaptation_rule='ema'. "
                    f"Received: {knob}=True, adaptation_rule={structure['adaptation_rule']!r}"
                )
        arguments["nesterov"] = structure["momentum_rule"] == "nesterov"
        super().__init__(params, hyperparameters(arguments), **structure)
