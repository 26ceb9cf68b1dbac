"""Gradient clipping, Keras 3's three options: ``clipnorm``, ``global_clipnorm``, ``clipvalue``.

Each option is off when 0 or None (so ``SGD(lr=0.01, clipvalue=0)`` clips nothing, as in Keras);
at most one may be set. Sparse gradients are clipped through their values, complex ones through
their real view (as torch steps them). Clipping comes first in a step, before weight decay, as in
Keras (which clips, then decays the weights, then updates).
"""

from __future__ import annotations

import torch
from torch import Tensor

from descentlab.rules import as_real

CLIP_OPTIONS = ("clipnorm", "global_clipnorm", "clipvalue")


def clips(options) -> bool:
    """Whether ``options`` (a param group, its ``Hyper`` or a trial's settings) turn on any clipping."""
    return any(options.get(name) for name in CLIP_OPTIONS)


def _values(g: Tensor) -> Tensor:
    return as_real(g._values() if g.is_sparse else g)


def _with_values(g: Tensor, values: Tensor) -> Tensor:
    if g.is_complex():
        values = torch.view_as_complex(values.contiguous())
    if g.is_sparse:
        # The indices are g's own, already valid: checking them again would only cost time.
        return torch.sparse_coo_tensor(g._indices(), values, g.size(), is_coalesced=True, check_invariants=False)
    return values


def clip_by_norm(g: Tensor, clipnorm: float) -> Tensor:
    """``g·c / max(‖g‖₂, c)``: rescale one tensor to L2 norm at most ``c`` (Keras's formula)."""
    values = _values(g)
    norm = torch.linalg.vector_norm(values)
    return _with_values(g, values * clipnorm / torch.clamp(norm, min=clipnorm))


def clip_by_global_norm(grads: list[Tensor], clipnorm: float) -> list[Tensor]:
    """Rescale all tensors together so that their joint L2 norm is at most ``clipnorm``.

    ``scale = c·min(1/‖G‖, 1/c)``, plus ``‖G‖ − ‖G‖`` so that a NaN/inf norm poisons every
    gradient, as in Keras.
    """
    if not grads:
        return grads
    values = [_values(g) for g in grads]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v).to(values[0]) for v in values]))
    scale = clipnorm * torch.clamp(1.0 / norm, max=1.0 / clipnorm) + (norm - norm)
    return [_with_values(g, v * scale.to(v)) for g, v in zip(grads, values, strict=True)]


def clip_by_value(g: Tensor, clipvalue: float) -> Tensor:
    """Clamp every coordinate to ``[−clipvalue, clipvalue]``."""
    return _with_values(g, _values(g).clamp(-clipvalue, clipvalue))


def clip_gradients(grads: list[Tensor], clipnorm, global_clipnorm, clipvalue) -> list[Tensor]:
    """Apply whichever clipping option is on (validated elsewhere: at most one)."""
    if clipnorm:
        return [clip_by_norm(g, clipnorm) for g in grads]
    if global_clipnorm:
        return clip_by_global_norm(grads, global_clipnorm)
    if clipvalue:
        return [clip_by_value(g, clipvalue) for g in grads]
    return grads
