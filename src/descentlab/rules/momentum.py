"""Momentum rules: what to do with the current update ``u`` given its past.

Every rule here has the same shape (see :mod:`descentlab.rules`): ``init`` creates the state it
needs in the parameter's state dict, under torch's keys; ``__call__(u, g, state, hp, step)``
returns the new update and mutates only its own state. ``u`` is the update coming from the
previous rule in the chain (the gradient, or the gradient already divided by an adaptation
denominator), ``g`` the raw gradient. Rules never modify ``u`` or ``g`` in place.
"""

from __future__ import annotations

from torch import Tensor

from descentlab.rules import Hyper, as_real, scalar_tensor, zeros_state


class HeavyBall:
    """Polyak heavy-ball momentum, torch's buffer; Nesterov in torch's form when ``nesterov``.

    Update rule (``μ = momentum``, ``τ = dampening``)::

        b ← u                      on the first step (torch clones the first update, undamped)
        b ← μ·b + (1 − τ)·u        afterwards
        out = u + μ·b              if nesterov (Sutskever's NAG, rewritten as torch does)
        out = b                    otherwise

    With ``μ = 0`` the rule is the identity and keeps no buffer, as torch does (in a lab population,
    where ``μ`` is a tensor of one value per row, a row with ``μ = 0`` keeps ``b = u``: the same step).

    Conventions:
        Keras keeps ``m ← μ·m − lr·g`` and adds ``m`` to the parameter: the same rule placed after
        the learning-rate scaling (lr inside the buffer), with ``τ = 0``; the chain builder does
        that for ``flavor="keras"``.

    References:
        Polyak (1964); Sutskever et al., "On the importance of initialization and momentum" (2013).
    """

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        """The buffer is created from the first update (torch's convention), so nothing here."""

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        mu = hp.momentum
        rows = isinstance(mu, Tensor)  # one μ per row (a lab population); a row with μ = 0 gets b = u
        if not rows and mu == 0:
            return u
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = u.detach().clone()
        else:
            buf.mul_(mu).add_(u, alpha=1 - hp.dampening)
        if not hp.nesterov:
            return buf
        return u.addcmul(buf, mu) if rows else u.add(buf, alpha=mu)


class EMA:
    """Exponential moving average of the update with bias correction (Adam's first moment).

    Update rule (``β1 = betas[0]``, ``t`` the step)::

        m ← β1·m + (1 − β1)·u
        out = m / (1 − β1ᵗ)

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2015).
    """

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        zeros_state(state, "exp_avg", param)

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        beta1 = hp.beta1
        m = state["exp_avg"]
        m.lerp_(u, 1 - beta1)
        return m / (1 - beta1**step)


class ScheduledNesterovEMA:
    """Nesterov momentum on an EMA with Dozat's warming momentum schedule (Nadam's first moment).

    Update rule (``β1 = betas[0]``, ``ψ = momentum_decay``, ``t`` the step)::

        μ_t = β1·(1 − ½·0.96^(t·ψ))
        Π_t = Π_{t−1}·μ_t                          (kept in state as ``mu_product``)
        m ← β1·m + (1 − β1)·u
        out = (1 − μ_t)/(1 − Π_t)·u + μ_{t+1}/(1 − Π_t·μ_{t+1})·m

    Conventions:
        torch: ``ψ = 4e-3`` and ``Π`` is stored as a float32 scalar tensor (torch's scalar dtype),
        whose rounding is part of the result. Keras 3: ``μ_t = β1·(1 − ½·0.96ᵗ)``, i.e. ``ψ = 1``
        (not configurable there), with ``Π`` held in the variable's dtype. ``flavor`` picks the
        storage dtype; ``ψ`` is an ordinary hyperparameter whose default the flavor sets.

    References:
        Dozat, "Incorporating Nesterov Momentum into Adam" (ICLR workshop, 2016).
    """

    scalar_state = ("mu_product",)  # 0-d state: the batched paths keep it per parameter

    def __init__(self, product_in_param_dtype: bool = False) -> None:
        self.product_in_param_dtype = product_in_param_dtype

    def init(self, param: Tensor, state: dict, hp: Hyper) -> None:
        zeros_state(state, "exp_avg", param)
        if "mu_product" not in state:
            dtype = as_real(param).dtype if self.product_in_param_dtype else None
            state["mu_product"] = scalar_tensor(1.0, dtype)

    def __call__(self, u: Tensor, g: Tensor, state: dict, hp: Hyper, step: int) -> Tensor:
        beta1, psi = hp.beta1, hp.momentum_decay
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        if isinstance(beta1, Tensor):  # one β1 per row (a lab population): so is the product
            product = state["mu_product"] = state["mu_product"] * mu
        else:
            mu_product = state["mu_product"]
            mu_product *= mu
            product = mu_product.item()
        m = state["exp_avg"]
        m.lerp_(u, 1 - beta1)
        return u * ((1.0 - mu) / (1.0 - product)) + m * (mu_next / (1.0 - product * mu_next))
