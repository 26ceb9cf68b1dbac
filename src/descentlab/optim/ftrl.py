"""FTRL-Proximal as a torch optimizer (Keras 3's formula; torch has none)."""

from __future__ import annotations

from torch import Tensor

from descentlab.optim._chain import ChainOptimizer, hyperparameters
from descentlab.rules import Hyper
from descentlab.rules.ftrl import FTRLProximal


class FTRL(ChainOptimizer):
    """Follow-the-regularized-leader, proximal form, per coordinate, with L1 / L2 / shrinkage.

    Update rule (``p = −lr_power``; ``λ2 = l2 + β/(2·lr)``)::

        n' = n + g²;   z ← z + g + 2·l2_shrinkage·w − (n'^p − n^p)/lr·w;   n ← n'
        w = (clip(z, −l1, l1) − z) / (n'^p/lr + 2·λ2)

    The weights are set, not stepped: every coordinate with ``|z| ≤ l1`` is exactly zero, which is
    what FTRL is for (sparse logistic regression, CTR models). State: ``accumulator`` (n) and
    ``linear`` (z), Keras's names.

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
        lr: float = 1e-3,
        lr_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1: float = 0.0,
        l2: float = 0.0,
        l2_shrinkage: float = 0.0,
        beta: float = 0.0,
        *,
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
        super().__init__(params, hyperparameters(locals()))
        self.ftrl = FTRLProximal()
        self.stateful_rules = (self.ftrl,)

    def _update(self, p: Tensor, g: Tensor, state: dict, hp: Hyper, lr: float, step: float) -> None:
        self.ftrl.apply(p, self._decay_weights(p, g, hp, lr), state, hp, lr)
