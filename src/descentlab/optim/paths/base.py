"""What every path shares: the gradients a step uses, the step count and its learning rate, real operands."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from descentlab.optim.contract import StateLike
from descentlab.rules import Hyper, as_real
from descentlab.rules.clip import clip_gradients
from descentlab.rules.decay import time_decay


def gradients(params: list[Tensor], hp: Hyper) -> list[Tensor]:
    """The gradients a step uses: coalesced if sparse, negated if maximizing, clipped."""
    grads = []
    for p in params:
        grad = cast(Tensor, p.grad)  # the paths step only parameters that have a gradient
        grad = grad.coalesce() if grad.is_sparse else grad
        grads.append(-grad if hp.maximize else grad)
    return clip_gradients(grads, hp.clipnorm, hp.global_clipnorm, hp.clipvalue)


def step_and_lr(completed: float, hp: Hyper) -> tuple[float, float]:
    """The 1-based step after ``completed`` steps, and its learning rate (time decay counts completed steps).

    Every path counts ``step`` per parameter as torch does and increments it when the step is
    applied; this is the one place that says which number the rules and the learning rate see.
    """
    step = completed + 1
    return step, time_decay(hp.lr, hp.lr_decay, completed)


class RealState:
    """A complex parameter's state as the rules see it: full-shaped entries as real views (…, 2)."""

    __slots__ = ("state",)

    def __init__(self, state: dict) -> None:
        self.state = state

    def __contains__(self, key: str) -> bool:
        return key in self.state

    def __getitem__(self, key: str) -> Tensor:
        return as_real(self.state[key])

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def __setitem__(self, key: str, value: Tensor) -> None:
        self.state[key] = torch.view_as_complex(value)


def real_operands(p: Tensor, g: Tensor, state: dict) -> tuple[Tensor, Tensor, StateLike]:
    """A step's operands as reals: torch steps a complex parameter as its ``view_as_real``."""
    if not p.is_complex():
        return p, g, state
    return torch.view_as_real(p), torch.view_as_real(g), RealState(state)
