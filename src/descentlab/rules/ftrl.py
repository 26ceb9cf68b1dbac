"""FTRL-Proximal: follow the regularized leader, per coordinate, with L1/L2 and shrinkage."""

from __future__ import annotations

from torch import Tensor

from descentlab.optim.contract import StateLike, TensorLike
from descentlab.rules import Hyper, filled_state, zeros_state
from descentlab.rules.adaptation import L2


class FTRLProximal:
    """McMahan et al.'s FTRL-Proximal in Keras 3's exact form; it sets the parameter directly.

    It is a chain's final stage (:class:`descentlab.optim.contract.Final`), where the other
    optimizers subtract ``lr·u``: the chain ``() → FTRLProximal`` is the FTRL optimizer.

    Update rule (``p = −lr_power``, ``λ1 = l1``, ``λ2 = l2 + β/(2·lr)``, ``λs = l2_shrinkage``)::

        g̃ = g + 2·λs·w
        n' = n + g²                               (n₀ = initial_accumulator_value)
        σ  = (n'^p − n^p) / lr
        z ← z + g̃ − σ·w
        w ← (clip(z, −λ1, λ1) − z) / (n'^p / lr + 2·λ2)
        n ← n'

    Coordinates with ``|z| ≤ λ1`` are exactly zero: the sparsity FTRL is used for.

    Conventions:
        torch has no FTRL; this matches ``keras.optimizers.Ftrl`` (state ``accumulator`` and
        ``linear``, Keras's names), whichever ``flavor`` is chosen. Note that the shrinkage term
        enters ``z`` but, as in Keras, not the accumulator. At ``lr = 0`` (a warm-up's first step,
        torch's ``torch.distributed.checkpoint`` state initialization) the step divides by zero:
        here it leaves the parameter and the state as they are (only ``step`` counts it), where
        Keras writes NaN.

    References:
        McMahan et al., "Ad Click Prediction: a View from the Trenches" (KDD 2013).
    """

    norm = L2  # the per-coordinate rate lr / n^(−lr_power) with n = n₀ + Σg²: Adagrad's sum

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        filled_state(state, "accumulator", param, hp.initial_accumulator_value)
        zeros_state(state, "linear", param)

    rules = ()  # it is the whole chain: no rule runs after it

    def apply(self, param: TensorLike, u: TensorLike, g: TensorLike, state: StateLike, hp: Hyper, lr: float,
              step: float) -> None:
        """Write the new parameter value in place (the chain's final stage; ``u`` is the gradient)."""
        if not isinstance(lr, Tensor) and lr == 0:
            return  # the proximal step is undefined at lr = 0: no step (see Conventions)
        power = -hp.lr_power
        l1 = hp.l1
        l2 = hp.l2 + hp.beta / (2.0 * lr)
        accumulator, linear = state["accumulator"], state["linear"]
        shrunk_grad = g.add(param, alpha=2 * hp.l2_shrinkage)
        new_accumulator = accumulator.addcmul(g, g)
        new_scale = new_accumulator.pow(power)
        sigma = (new_scale - accumulator.pow(power)) / lr
        linear.add_(shrunk_grad - sigma * param)
        quadratic = new_scale / lr + 2 * l2
        param.copy_((linear.clamp(-l1, l1) - linear) / quadratic)
        accumulator.copy_(new_accumulator)
