"""Shared test helpers: random-gradient trajectories and a scale-aware relative difference."""

from __future__ import annotations

import torch

SHAPES = [(7, 5), (3,), (2, 3, 4), (1,), ()]


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a − b| / max|b|``: elementwise error measured against the tensor's scale."""
    if b.numel() == 0:
        return 0.0
    scale = b.detach().abs().max().clamp_min(torch.finfo(b.dtype).tiny)
    return ((a.detach() - b.detach()).abs().max() / scale).item()


def make_params(dtype=torch.float64, shapes=SHAPES, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, dtype=dtype, generator=gen)) for shape in shapes]


def clone_params(params):
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def random_gradients(params, steps, seed=1):
    """A reproducible stream of gradient lists, one per step, with a few large entries."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield [(torch.randn(p.shape, dtype=p.dtype, generator=gen) * 2.0).to(p.device) for p in params]


def run(optimizers_and_params, steps, seed=1, start=0):
    """Step every (optimizer, params) pair on the same gradient stream."""
    first_params = optimizers_and_params[0][1]
    for grads in list(random_gradients(first_params, steps + start, seed))[start:]:
        for optimizer, params in optimizers_and_params:
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            optimizer.step()


def max_relative_difference(params_a, params_b) -> float:
    return max(relative_difference(a, b) for a, b in zip(params_a, params_b, strict=True))


def max_scaled_difference(params_a, params_b) -> float:
    """The largest difference relative to the tensor's scale, taken as at least 1 (the start's scale).

    For random shapes: a one-coordinate tensor whose value FTRL has just pulled to near zero
    (``|z|`` just above ``l1``) makes a relative difference ill-conditioned, the cancellation
    amplifying one rounding of ``z``; against the parameters' scale it is a rounding again.
    """
    return max(((a - b).abs().max() / b.abs().max().clamp(min=1)).item() if b.numel() else 0.0
               for a, b in zip(params_a, params_b, strict=True))
