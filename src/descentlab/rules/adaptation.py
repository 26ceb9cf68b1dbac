"""Per-coordinate adaptation rules: divide the update by a running statistic of the gradient.

The statistic is always taken of the raw gradient ``g`` (after clipping and weight decay); the
tensor divided is the current update ``u``. So ``EMA → EMASquares`` is Adam (momentum, then
adaptation) and ``EMASquares → HeavyBall`` is torch's RMSprop with momentum (adaptation, then
momentum) with the same two rules.

Where ε goes is the main way the frameworks disagree; each rule takes an ``eps_placement``:

``"outside"``  ``u / (√v̂ + ε)``           torch (Adam, RMSprop, Adagrad, NAdam), Keras Nadam
``"inside"``   ``u / √(v̂ + ε)``           Keras Adagrad and RMSprop; both frameworks' Adadelta;
                                           for the L∞ rule, torch's ``max(β2·u, |g| + ε)``
``"hat"``      ``u·√(1−β2ᵗ) / (√v + ε)``   Keras Adam ("epsilon hat": ε added before the bias
                                           correction, which is folded into the step size)

``v̂`` is ``v / (1 − β2ᵗ)`` when the rule bias-corrects, else ``v``.
"""

from __future__ import annotations

from torch import Tensor

from descentlab.rules import Hyper, filled_state, maximum_, zeros_state

EPS_PLACEMENTS = ("outside", "inside", "hat")
# The norm of past gradients a rule divides by, as the talk names the families: Adagrad divides
# "by the L2 norm of all previous gradients", Adamax "uses infinity norm rather than L2".
L2, LINF = "L2", "L∞"


class SumSquares:
    """Adagrad: divide by the root of the running sum of squared gradients (L2, never forgets).

    Update rule::

        Σ ← Σ + g²                 (Σ₀ = initial_accumulator_value)
        out = u / (√Σ + ε)         "outside" (torch)     |   u / √(Σ + ε)   "inside" (Keras)

    References:
        Duchi, Hazan & Singer, "Adaptive Subgradient Methods" (JMLR 2011).
    """

    norm = L2  # the root of a sum of g²

    def __init__(self, eps_placement: str = "outside") -> None:
        self.eps_placement = eps_placement

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        filled_state(state, "sum", param, hp.initial_accumulator_value)

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        total = state["sum"]
        total.addcmul_(g, g, value=1)
        if self.eps_placement == "inside":
            return u / total.add(hp.eps).sqrt_()
        return u / total.sqrt().add_(hp.eps)


class EMASquares:
    """RMSprop / Adam: divide by the root of an EMA of squared gradients (L2, forgets).

    Update rule (``β2`` the decay: torch's ``alpha`` for RMSprop, ``betas[1]`` for Adam)::

        v ← β2·v + (1 − β2)·g²
        centered:  ḡ ← β2·ḡ + (1 − β2)·g;   s = v − ḡ²        (else s = v)
        amsgrad:   ŝ ← max(ŝ, s);           s = ŝ
        out = u / (√(s / (1 − β2ᵗ)) + ε)   with bias correction, ε "outside"
        (see the module docstring for the other placements)

    The state key is torch's: ``exp_avg_sq`` in the Adam family (bias-corrected), ``square_avg``
    in the RMSprop family; ``grad_avg`` when centered, ``max_exp_avg_sq`` with AMSGrad.

    References:
        Tieleman & Hinton, Lecture 6.5 (2012); Graves (2013) for the centered form;
        Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond" (2018) for AMSGrad.
    """

    norm = L2  # the root of an EMA of g²

    def __init__(self, bias_correction: bool, eps_placement: str = "outside") -> None:
        self.bias_correction = bias_correction
        self.eps_placement = eps_placement
        self.key = "exp_avg_sq" if bias_correction else "square_avg"

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        zeros_state(state, self.key, param)
        if hp.centered:
            zeros_state(state, "grad_avg", param)
        if hp.amsgrad:
            zeros_state(state, "max_exp_avg_sq", param)

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        beta2 = hp.beta2
        v = state[self.key]
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        s = v
        if hp.centered:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(g, 1 - beta2)
            s = v.addcmul(grad_avg, grad_avg, value=-1)
        if hp.amsgrad:
            running_max = state["max_exp_avg_sq"]
            maximum_(running_max, s)
            s = running_max
        correction = 1 - beta2**step if self.bias_correction else 1.0
        if self.eps_placement == "inside":
            return u / s.div(correction).add_(hp.eps).sqrt_()
        if self.eps_placement == "hat":
            return u * correction**0.5 / s.sqrt().add_(hp.eps)
        return u / (s.sqrt() / correction**0.5).add_(hp.eps)


class EMABelief:
    """AdaBelief: divide by the root of an EMA of ``(g − m)²``, the gradient's surprise given its EMA.

    Update rule (``m`` the momentum rule's EMA of g, this step's, state ``exp_avg``; ``β2 = betas[1]``)::

        s ← β2·s + (1 − β2)·(g − m)² + ε
        amsgrad:   ŝ ← max(ŝ, s);   s = ŝ
        out = u / (√(s / (1 − β2ᵗ)) + ε)

    Where Adam's v measures how large gradients are, s measures how far they fall from where the
    momentum expected them: steps are large where the gradient is predictable. ε enters twice, as
    in the paper's algorithm and the authors' package: into ``s``, which keeps it, and into the
    denominator. It reads ``m`` from the state, so an EMA momentum rule must run before it.

    References:
        Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
        Gradients" (NeurIPS 2020).
    """

    norm = L2  # the root of an EMA of squares, of g − m

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        zeros_state(state, "exp_avg_var", param)
        if hp.amsgrad:
            zeros_state(state, "max_exp_avg_var", param)

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        beta2 = hp.beta2
        surprise = g - state["exp_avg"]
        s = state["exp_avg_var"]
        s.mul_(beta2).addcmul_(surprise, surprise, value=1 - beta2).add_(hp.eps)
        if hp.amsgrad:
            running_max = state["max_exp_avg_var"]
            maximum_(running_max, s)
            s = running_max
        return u / (s.sqrt() / (1 - beta2**step) ** 0.5).add_(hp.eps)


class EMAMaxAbs:
    """Adamax's L∞ adaptation: divide by an exponentially decayed running max of ``|g|``.

    Update rule (``β2 = betas[1]``)::

        "inside"  (torch):  ν ← max(β2·ν, |g| + ε);   out = u / ν
        "outside" (Keras):  ν ← max(β2·ν, |g|);       out = u / (ν + ε)

    With no bias correction: the max of a decayed sequence is not biased toward zero.

    References:
        Kingma & Ba (2015), section 7.1.
    """

    norm = LINF  # a decayed max of |g|

    def __init__(self, eps_placement: str = "inside") -> None:
        self.eps_placement = eps_placement

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        zeros_state(state, "exp_inf", param)

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        nu = state["exp_inf"]
        if self.eps_placement == "inside":
            maximum_(nu.mul_(hp.beta2), g.abs().add_(hp.eps))
            return u / nu
        maximum_(nu.mul_(hp.beta2), g.abs())
        return u / nu.add(hp.eps)


class DeltaRatio:
    """Adadelta: scale by the ratio of the RMS of past updates to the RMS of gradients.

    Update rule (``ρ``: torch's ``rho``, stored as the adaptation decay ``β2``)::

        v ← ρ·v + (1 − ρ)·g²
        out = √(Δ + ε) / √(v + ε) · u
        Δ ← ρ·Δ + (1 − ρ)·out²

    ε sits inside both roots in torch and Keras alike. The learning rate multiplies ``out``
    (torch's default 1.0 is the paper's unit step; Keras's default 0.001 is a known pitfall).

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012).
    """

    norm = L2  # the root of an EMA of g² (the ratio's denominator)

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        zeros_state(state, "square_avg", param)
        zeros_state(state, "acc_delta", param)

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        rho, eps = hp.beta2, hp.eps
        v, acc_delta = state["square_avg"], state["acc_delta"]
        v.mul_(rho).addcmul_(g, g, value=1 - rho)
        std = v.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_().div_(std).mul_(u)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        return delta
