"""The arguments every optimizer shares, documented once and filled into each class docstring.

A docstring's ``Args:`` section holds ``{params}`` where the parameters go and ``{shared}`` where
the shared keywords go (torch fills ``_foreach_doc`` and friends into its docstrings the same way,
Keras its ``base_optimizer_keyword_args``).
"""

from __future__ import annotations

import inspect
import re

PARAMS = """params: the tensors to optimize, or dicts defining param groups (torch's ``params``).
            Real floating-point or complex; a complex tensor is stepped as its real view."""

SHARED = """weight_decay: the weight-decay coefficient λ (≥ 0). L2 regularization ``g ← g + λ·p``
            unless ``decoupled_weight_decay``.
        decoupled_weight_decay: decay the weights apart from the gradient, ``p ← p·(1 − lr·λ)``
            before the update (Loshchilov & Hutter), so that λ reaches neither momentum nor
            adaptation: torch's ``decoupled_weight_decay=True`` and ``AdamW``, and what every
            Keras 3 optimizer does (as ``p − p·λ·lr``). Off in the torch flavor, on in the Keras one.
        lr_decay: Keras-2 time decay (≥ 0): step ``t`` uses ``lr / (1 + lr_decay·(t − 1))``.
        clipnorm: rescale each gradient to at most this L2 norm (Keras's); 0 or None is off.
        global_clipnorm: rescale the group's gradients together to at most this joint L2 norm;
            0 or None is off.
        clipvalue: clamp every gradient coordinate to ``[−clipvalue, clipvalue]``; 0 or None is off.
            At most one of the three clipping options may be on.
        maximize: ascend the objective instead of descending it (the step uses ``−grad``).
        foreach: torch's switch. True: ``torch._foreach_*`` operations over the group's tensors;
            False (with ``fused`` unset): the per-tensor reference; None: the dispatcher chooses.
        fused: True: one compiled pass over flat buffers (refused, with the reason, for a group it
            cannot take; stepped in place by another path, with a warning, for one whose storage
            something else holds); False: never; None: the dispatcher chooses.
        flavor: ``"torch"`` (torch.optim's formulas and defaults) or ``"keras"`` (Keras 3's). A
            default shown as ``Flavored(torch=…, keras=…)`` is the value each flavor uses."""


CAPTURABLE = """capturable: torch's switch for stepping inside a CUDA graph; only False (the default) is
            taken, since ``step`` lives on the CPU here so that a step never waits for the device."""

DIFFERENTIABLE = """differentiable: torch's switch for differentiating through the step; only False (the
            default) is taken: every path updates in place under ``no_grad``."""


def _taken(entries: str, parameters) -> str:
    """The entries of ``entries`` (``name: text`` with indented continuation lines) for ``parameters`` only."""
    kept = [entry for entry in re.split(r"\n\s{8}(?=\w+: )", entries) if entry.split(":", 1)[0] in parameters]
    return "\n        ".join(kept)


def document(cls: type) -> type:
    """Fill the shared argument docs into ``cls``'s docstring, leaving out the arguments it does not take."""
    parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]  # cls is a class, not an instance
    cls.__doc__ = ((cls.__doc__ or "").replace("{params}", PARAMS).replace("{shared}", _taken(SHARED, parameters))
                   .replace("{capturable}", CAPTURABLE).replace("{differentiable}", DIFFERENTIABLE))
    return cls
