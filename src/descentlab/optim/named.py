"""The named optimizers: each is one point of the lattice with torch's names and defaults.

Every class takes, besides its own hyperparameters, the shared keywords ``weight_decay``,
``decoupled_weight_decay``, ``lr_decay`` (Keras-2 time decay), ``clipnorm``, ``global_clipnorm``,
``clipvalue``, ``maximize``, torch's ``foreach`` / ``fused`` path switches and ``flavor``
(``"torch"``, the default, or ``"keras"``), documented once in :mod:`descentlab.optim._docs`. A
default shown as ``Flavored(torch=…, keras=…)`` is the value each flavor uses when the argument is
not given.
"""

from __future__ import annotations

from torch import Tensor

from descentlab.optim._chain import ChainOptimizer, hyperparameters
from descentlab.optim._checks import Flavored
from descentlab.optim._docs import document

# The named optimizers, in the order the lab lists them (optim.NAMED and the lab's names follow it)
__all__ = ["SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "Adamax", "Nadam", "NAdam", "Nadamax",
           "AdaBelief"]

_NO_CENTERING: dict[str, object] = {"centered": False, "amsgrad": False}
DECOUPLED = Flavored(torch=False, keras=True)
EPS = Flavored(torch=1e-8, keras=1e-7)


@document
class SGD(ChainOptimizer):
    """Stochastic gradient descent, with optional heavy-ball or Nesterov momentum.

    Update rule (``μ = momentum``, ``τ = dampening``)::

        b ← μ·b + (1 − τ)·g  (b₁ = g);   p ← p − lr·(g + μ·b if nesterov else b)

    Full-batch gradient descent, SGD and mini-batch SGD are this optimizer; they differ in the
    batches fed to it. Composed spelling: ``Composed(momentum_rule="heavy_ball" | "nesterov")``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        momentum: μ ≥ 0; 0 is plain SGD and keeps no buffer. The Keras flavor takes μ in [0, 1].
        dampening: τ in [0, 1], the share of the gradient the buffer leaves out.
        nesterov: Nesterov's momentum in torch's form; torch requires μ > 0 and τ = 0, Keras
            takes μ = 0 (then plain SGD).
        {shared}
        {differentiable}

    Conventions:
        torch: as above. Keras 3 (``flavor="keras"``, lr default 0.01): ``m ← μ·m − lr·g;
        p ← p + m`` (Nesterov: ``p ← p + μ·m − lr·g``), i.e. the learning rate inside the buffer,
        which differs from torch once the learning rate changes during training.

    References:
        Robbins & Monro (1951); Polyak (1964); Sutskever et al. (2013).
    """

    _lattice = {"momentum_rule": "heavy_ball"}

    def __init__(
        self,
        params,
        lr: float | Tensor | Flavored = Flavored(torch=1e-3, keras=1e-2),
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        differentiable: bool = False,
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
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            decoupled_weight_decay=decoupled_weight_decay, lr_decay=lr_decay, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize, foreach=foreach, fused=fused,
            flavor=flavor, differentiable=differentiable,
        )
        super().__init__(params, hyperparameters(defaults), **self._lattice)


@document
class Adagrad(ChainOptimizer):
    """Adagrad: per-coordinate steps shrinking with the running sum of squared gradients.

    Update rule::

        Σ ← Σ + g²   (Σ₀ = initial_accumulator_value);   p ← p − lr_t·g / (√Σ + ε)
        lr_t = lr / (1 + (t − 1)·lr_decay)

    Composed spelling: ``Composed(adaptation_rule="sum")``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        initial_accumulator_value: Σ₀ ≥ 0.
        eps: ε ≥ 0, added to the denominator.
        {shared}
        {differentiable}

    Conventions:
        Keras 3: ``p ← p − lr·g/√(Σ + ε)`` with Σ₀ = 0.1, ε = 1e-7, lr = 1e-3 (``flavor="keras"``).

    References:
        Duchi, Hazan & Singer (JMLR 2011).
    """

    _lattice = {"adaptation_rule": "sum"}

    def __init__(
        self,
        params,
        lr: float | Tensor | Flavored = Flavored(torch=1e-2, keras=1e-3),
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float | Flavored = Flavored(torch=0.0, keras=0.1),
        eps: float | Flavored = Flavored(torch=1e-10, keras=1e-7),
        *,
        differentiable: bool = False,
        decoupled_weight_decay: bool | Flavored = DECOUPLED,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        clipvalue: float | None = None,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        flavor: str = "torch",
    ) -> None:
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=initial_accumulator_value,
            eps=eps, decoupled_weight_decay=decoupled_weight_decay, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize, foreach=foreach, fused=fused,
            flavor=flavor, differentiable=differentiable,
        )
        super().__init__(params, hyperparameters(defaults), **self._lattice)


@document
class Adadelta(ChainOptimizer):
    """Adadelta: steps scaled by RMS(past updates) / RMS(gradients), no global rate needed.

    Update rule::

        v ← ρ·v + (1 − ρ)·g²;   d = √(Δ + ε)/√(v + ε)·g;   Δ ← ρ·Δ + (1 − ρ)·d²;   p ← p − lr·d

    Composed spelling: ``Composed(adaptation_rule="delta", betas=(·, rho))``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor), multiplying ``d``.
        rho: ρ in [0, 1], the decay of both running averages.
        eps: ε ≥ 0, inside both roots.
        {shared}
        {capturable}
        {differentiable}

    Conventions:
        Same formula in torch and Keras; Keras's defaults (``flavor="keras"``) are lr = 0.001,
        ρ = 0.95, ε = 1e-7. With lr = 0.001 Adadelta barely moves: the paper's step is lr = 1.

    References:
        Zeiler (2012).
    """

    _aliases = {"rho": "beta2"}
    _lattice = {"adaptation_rule": "delta"}

    def __init__(
        self,
        params,
        lr: float | Tensor | Flavored = Flavored(torch=1.0, keras=1e-3),
        rho: float | Flavored = Flavored(torch=0.9, keras=0.95),
        eps: float | Flavored = Flavored(torch=1e-6, keras=1e-7),
        weight_decay: float = 0.0,
        *,
        capturable: bool = False,
        differentiable: bool = False,
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
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            lr_decay=lr_decay, clipnorm=clipnorm, global_clipnorm=global_clipnorm, clipvalue=clipvalue,
            maximize=maximize, foreach=foreach, fused=fused, flavor=flavor, capturable=capturable,
            differentiable=differentiable,
        )
        super().__init__(params, hyperparameters(defaults), **self._lattice)


@document
class RMSprop(ChainOptimizer):
    """RMSprop: divide by the root of an EMA of squared gradients; optional momentum after.

    Update rule (``α = alpha``, ``μ = momentum``)::

        v ← α·v + (1 − α)·g²;   centered: ḡ ← α·ḡ + (1 − α)·g, s = v − ḡ² (else s = v)
        b ← μ·b + g/(√s + ε);   p ← p − lr·b                   (μ = 0: p ← p − lr·g/(√s + ε))

    Adaptation comes before momentum here. Composed spelling: ``Composed(momentum_rule=
    "heavy_ball", adaptation_rule="ema", order="adaptation_first", momentum=μ, betas=(·, alpha))``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        alpha: α in [0, 1], the decay of the average of g² (Keras's ``rho``).
        eps: ε ≥ 0, added to the denominator.
        momentum: μ ≥ 0, heavy-ball momentum on the adapted update; 0 keeps no buffer.
        centered: divide by the root of the variance estimate ``v − ḡ²`` instead of ``v``.
        {shared}
        {capturable}
        {differentiable}

    Conventions:
        Keras 3 (``flavor="keras"``: ρ = 0.9, ε = 1e-7, lr = 1e-3): ``inc = lr·g/√(s + ε)``,
        ``m ← μ·m + inc``, ``p ← p − m`` — ε inside the root, learning rate inside the buffer.

    References:
        Tieleman & Hinton, Coursera Lecture 6.5 (2012); Graves (2013).
    """

    _aliases = {"alpha": "beta2"}
    _fixed = {"dampening": 0.0, "nesterov": False, "amsgrad": False}
    _lattice = {"momentum_rule": "heavy_ball", "adaptation_rule": "ema", "order": "adaptation_first"}

    def __init__(
        self,
        params,
        lr: float | Tensor | Flavored = Flavored(torch=1e-2, keras=1e-3),
        alpha: float | Flavored = Flavored(torch=0.99, keras=0.9),
        eps: float | Flavored = EPS,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        capturable: bool = False,
        differentiable: bool = False,
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
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
            decoupled_weight_decay=decoupled_weight_decay, lr_decay=lr_decay, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize, foreach=foreach, fused=fused,
            flavor=flavor, capturable=capturable, differentiable=differentiable,
        )
        super().__init__(params, hyperparameters(defaults), **self._lattice)


@document
class Adam(ChainOptimizer):
    """Adam: bias-corrected EMA momentum divided by the root of a bias-corrected EMA of g².

    Update rule::

        m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²     (AMSGrad: v̄ ← max(v̄, v), use v̄)
        p ← p − lr·(m/(1 − β1ᵗ)) / (√(v/(1 − β2ᵗ)) + ε)

    Composed spelling: ``Composed(momentum_rule="ema", adaptation_rule="ema")``. With
    ``decoupled_weight_decay=True`` it is :class:`AdamW`.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        betas: (β1, β2), each in [0, 1) (floats or 1-element Tensors): the decays of m and v.
        eps: ε ≥ 0, added to the denominator.
        amsgrad: divide by the running maximum of v (AMSGrad).
        {shared}
        {capturable}
        {differentiable}

    Conventions:
        Keras 3 (``flavor="keras"``, ε = 1e-7) adds ε before the bias correction ("ε-hat"):
        ``p ← p − lr·√(1 − β2ᵗ)/(1 − β1ᵗ)·m/(√v + ε)``.

    References:
        Kingma & Ba (ICLR 2015); Reddi et al. (ICLR 2018) for AMSGrad.
    """

    _fixed = {"centered": False}
    _lattice = {"momentum_rule": "ema", "adaptation_rule": "ema"}

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float | Flavored = EPS,
        weight_decay: float | Flavored = 0.0,
        amsgrad: bool = False,
        *,
        capturable: bool = False,
        differentiable: bool = False,
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
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            decoupled_weight_decay=decoupled_weight_decay, lr_decay=lr_decay, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize, foreach=foreach, fused=fused,
            flavor=flavor, capturable=capturable, differentiable=differentiable,
        )
        super().__init__(params, hyperparameters(defaults), **self._lattice)


@document
class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, i.e. ``Adam(decoupled_weight_decay=True)``.

    Update rule (``λ = weight_decay``)::

        p ← p·(1 − lr·λ)
        m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²     (AMSGrad: v̄ ← max(v̄, v), use v̄)
        p ← p − lr·(m/(1 − β1ᵗ)) / (√(v/(1 − β2ᵗ)) + ε)

    With L2 in the gradient (Adam's ``weight_decay``), the decay is divided by √v like the rest of
    the gradient, so weights with large gradients are barely decayed; decoupled, every weight
    shrinks at the rate lr·λ. Composed spelling: ``Composed(momentum_rule="ema",
    adaptation_rule="ema", weight_decay=λ, decoupled_weight_decay=True)``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        betas: (β1, β2), each in [0, 1) (floats or 1-element Tensors): the decays of m and v.
        eps: ε ≥ 0, added to the denominator.
        amsgrad: divide by the running maximum of v (AMSGrad).
        {shared}
        {capturable}
        {differentiable}

    ``decoupled_weight_decay`` is always on: AdamW takes no such argument, and a checkpoint
    loaded into it keeps the decay decoupled, as torch's ``AdamW`` does.

    Conventions:
        torch (``torch.optim.AdamW``): λ = 1e-2, ``p·(1 − lr·λ)``. Keras 3 (``flavor="keras"``,
        ``keras.optimizers.AdamW``): λ = 0.004, ``p − p·λ·lr``, ε-hat with ε = 1e-7 (as Keras Adam).

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019).
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float | Flavored = EPS,
        weight_decay: float | Flavored = Flavored(torch=1e-2, keras=4e-3),
        amsgrad: bool = False,
        *,
        capturable: bool = False,
        differentiable: bool = False,
        lr_decay: float = 0.0,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        clipvalue: float | None = None,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        flavor: str = "torch",
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True, lr_decay=lr_decay,
            clipnorm=clipnorm, global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize,
            foreach=foreach, fused=fused, flavor=flavor, capturable=capturable, differentiable=differentiable,
        )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


@document
class Adamax(ChainOptimizer):
    """Adamax: Adam with the L∞ norm: divide by an exponentially decayed max of |g|.

    Update rule::

        m ← β1·m + (1 − β1)·g;   u ← max(β2·u, |g| + ε);   p ← p − lr/(1 − β1ᵗ)·m/u

    Composed spelling: ``Composed(momentum_rule="ema", adaptation_rule="max")``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        betas: (β1, β2), each in [0, 1) (floats or 1-element Tensors): the decays of m and u.
        eps: ε ≥ 0 (inside the max in torch, added to it in Keras).
        {shared}
        {capturable}
        {differentiable}

    Conventions:
        Keras 3 (``flavor="keras"``: lr = 1e-3, ε = 1e-7): ``u ← max(β2·u, |g|)``, divide by
        ``u + ε`` — ε outside the max.

    References:
        Kingma & Ba (ICLR 2015), section 7.1.
    """

    _lattice = {"momentum_rule": "ema", "adaptation_rule": "max"}

    def __init__(
        self,
        params,
        lr: float | Tensor | Flavored = Flavored(torch=2e-3, keras=1e-3),
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float | Flavored = EPS,
        weight_decay: float = 0.0,
        *,
        capturable: bool = False,
        differentiable: bool = False,
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
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            lr_decay=lr_decay, clipnorm=clipnorm, global_clipnorm=global_clipnorm, clipvalue=clipvalue,
            maximize=maximize, foreach=foreach, fused=fused, flavor=flavor, capturable=capturable,
            differentiable=differentiable,
        )
        super().__init__(params, hyperparameters(defaults), **self._lattice)


@document
class Nadam(ChainOptimizer):
    """Nadam: Adam with Nesterov momentum on Dozat's warming schedule μ_t = β1(1 − ½·0.96^(tψ)).

    Update rule (``ψ = momentum_decay``, ``Π_t = μ_1⋯μ_t``)::

        m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
        p ← p − lr·[(1 − μ_t)/(1 − Π_t)·g + μ_{t+1}/(1 − Π_{t+1})·m] / (√(v/(1 − β2ᵗ)) + ε)

    Nadam is Adam with Nesterov: ``Composed(momentum_rule="nesterov_ema", adaptation_rule="ema")``.
    Also exported as ``NAdam`` (torch's spelling).

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        betas: (β1, β2), each in [0, 1) (floats or 1-element Tensors): the decays of m and v.
        eps: ε ≥ 0, added to the denominator.
        momentum_decay: ψ ≥ 0, how fast μ_t warms up to β1.
        {shared}
        {capturable}
        {differentiable}

    Conventions:
        Keras 3 fixes ψ = 1 (μ_t = β1(1 − ½·0.96ᵗ), reaching β1 within ~100 steps) and ε = 1e-7,
        lr = 1e-3: ``flavor="keras"`` uses those defaults; ψ stays configurable.
        ``decoupled_weight_decay`` is positional after ``momentum_decay``, as in torch's NAdam.

    References:
        Dozat, "Incorporating Nesterov Momentum into Adam" (2016).
    """

    _fixed = _NO_CENTERING
    _lattice = {"momentum_rule": "nesterov_ema", "adaptation_rule": "ema"}

    def __init__(
        self,
        params,
        lr: float | Tensor | Flavored = Flavored(torch=2e-3, keras=1e-3),
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float | Flavored = EPS,
        weight_decay: float = 0.0,
        momentum_decay: float | Flavored = Flavored(torch=4e-3, keras=1.0),
        decoupled_weight_decay: bool | Flavored = DECOUPLED,
        *,
        capturable: bool = False,
        differentiable: bool = False,
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
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay, lr_decay=lr_decay, clipnorm=clipnorm,
            global_clipnorm=global_clipnorm, clipvalue=clipvalue, maximize=maximize, foreach=foreach, fused=fused,
            flavor=flavor, capturable=capturable, differentiable=differentiable,
        )
        super().__init__(params, hyperparameters(defaults), **self._lattice)


NAdam = Nadam


@document
class Nadamax(Nadam):
    """Nadamax: Nadam's scheduled Nesterov momentum with Adamax's L∞ adaptation.

    Update rule (``ψ = momentum_decay``, ``Π_t = μ_1⋯μ_t``)::

        m ← β1·m + (1 − β1)·g;   u ← max(β2·u, |g| + ε)
        p ← p − lr·[(1 − μ_t)/(1 − Π_t)·g + μ_{t+1}/(1 − Π_{t+1})·m] / u

    Nadamax is Nadam with the L∞ adaptation (same signature and defaults):
    ``Composed(momentum_rule="nesterov_ema", adaptation_rule="max")``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        betas: (β1, β2), each in [0, 1) (floats or 1-element Tensors): the decays of m and u.
        eps: ε ≥ 0 (inside the max in the torch flavor, added to it in the Keras one).
        momentum_decay: ψ ≥ 0, how fast μ_t warms up to β1.
        {shared}
        {capturable}
        {differentiable}

    Conventions:
        In no major library. ``flavor="torch"`` takes torch's NAdam schedule (ψ = 4e-3) and
        torch's Adamax ε (inside the max); ``flavor="keras"`` takes Keras's (ψ = 1, ε outside).

    References:
        Dozat (2016), which proposes it alongside Nadam.
    """

    _lattice = {"momentum_rule": "nesterov_ema", "adaptation_rule": "max"}


@document
class AdaBelief(Adam):
    """AdaBelief: Adam dividing by an EMA of (g − m)², how far gradients fall from their EMA.

    Update rule::

        m ← β1·m + (1 − β1)·g;   s ← β2·s + (1 − β2)·(g − m)² + ε     (AMSGrad: ŝ ← max(ŝ, s), use ŝ)
        p ← p − lr·(m/(1 − β1ᵗ)) / (√(s/(1 − β2ᵗ)) + ε)

    Composed spelling: ``Composed(momentum_rule="ema", adaptation_rule="belief")``.

    Args:
        {params}
        lr: the learning rate (a float or a 1-element Tensor).
        betas: (β1, β2), each in [0, 1) (floats or 1-element Tensors): the decays of m and s.
        eps: ε ≥ 0, added to s at every step and to the denominator.
        amsgrad: divide by the running maximum of s.
        {capturable}
        {differentiable}
        {shared}

    Conventions:
        The authors' ``adabelief_pytorch.AdaBelief`` (0.2.1) with ``rectify=False``; its
        ``weight_decouple`` is ``decoupled_weight_decay`` (off in the torch flavor, like its
        ``weight_decouple=False``). Neither torch nor Keras has AdaBelief; ``flavor="keras"`` only
        decouples the weight decay and applies the learning rate as Keras does.

    References:
        Zhuang et al., "AdaBelief Optimizer" (NeurIPS 2020).
    """

    _lattice = {"momentum_rule": "ema", "adaptation_rule": "belief"}

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        capturable: bool = False,
        differentiable: bool = False,
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
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, capturable=capturable, differentiable=differentiable,
            decoupled_weight_decay=decoupled_weight_decay,
            lr_decay=lr_decay, clipnorm=clipnorm, global_clipnorm=global_clipnorm, clipvalue=clipvalue,
            maximize=maximize, foreach=foreach, fused=fused, flavor=flavor,
        )
