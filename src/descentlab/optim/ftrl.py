"""FTRL-Proximal as a torch optimizer (Keras 3's formula; torch has none)."""

from __future__ import annotations

from torch import Tensor

from descentlab.optim._chain import Chain, ChainOptimizer, hyperparameters
from descentlab.optim._checks import Flavored
from descentlab.optim._docs import document
from descentlab.optim.named import DECOUPLED
from descentlab.rules.ftrl import FTRLProximal


@document
class FTRL(ChainOptimizer):
    """Follow-the-regularized-leader, proximal form, per coordinate, with L1 / L2 / shrinkage.

    Update rule (``p = −lr_power``; ``λ2 = l2 + β/(2·lr)``)::

        n' = n + g²;   z ← z + g + 2·l2_shrinkage·w − (n'^p − n^p)/lr·w;   n ← n'
        w = (clip(z, −l1, l1) − z) / (n'^p/lr + 2·λ2)

    The weights are set, not stepped: every coordinate with ``|z| ≤ l1`` is exactly zero, which is
    what FTRL is for (sparse logistic regression, CTR models). State: ``accumulator`` (n) and
    ``linear`` (z), Keras's names.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        lr_power: ``−p`` ≤ 0, how the per-coordinate rate decays with n; 0 keeps it fixed.
        initial_accumulator_value: n₀ ≥ 0.
        l1: the L1 strength λ1 ≥ 0 (what makes weights exactly zero).
        l2: the L2 strength ≥ 0 (stabilization, inside the proximal step).
        l2_shrinkage: the L2 magnitude penalty ≥ 0, added to the gradient.
        beta: β ≥ 0, added to the denominator as ``β/lr``.
        {shared}

    Conventions:
        Matches ``keras.optimizers.Ftrl`` in both flavors (``l1``, ``l2``, ``l2_shrinkage`` are
        Keras's ``*_regularization_strength``, ``lr_power`` its ``learning_rate_power``). ``flavor``
        only selects how ``weight_decay`` is applied, as for every optimizer.

    References:
        McMahan et al., "Ad Click Prediction: a View from the Trenches" (KDD 2013).
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        lr_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1: float = 0.0,
        l2: float = 0.0,
        l2_shrinkage: float = 0.0,
        beta: float = 0.0,
        *,
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
        defaults = dict(
            lr=lr, lr_power=lr_power, initial_accumulator_value=initial_accumulator_value, l1=l1, l2=l2,
            l2_shrinkage=l2_shrinkage, beta=beta, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, lr_decay=lr_decay, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize, foreach=foreach, fused=fused,
            flavor=flavor,
        )
        super().__init__(params, hyperparameters(defaults), chain=self.chain_for(flavor))

    @classmethod
    def chain_for(cls, flavor: str) -> Chain:
        """No rule, and the proximal step as the final stage (Keras's rounding of weight decay in its flavor)."""
        return Chain((), FTRLProximal(), keras_rounding=flavor == "keras")
