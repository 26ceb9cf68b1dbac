"""The ideas of gradient descent as small rules on tensors, one idea each.

A rule has ``init(param, state, hp)``, which creates the state it needs under torch's state
keys, and ``__call__(u, g, state, hp, step) -> u'``, which maps the current update ``u`` to the
next one given the raw gradient ``g`` and the 1-based ``step``. Rules read hyperparameters from
``hp`` at every step (so schedulers can change them) and never modify ``u`` or ``g`` in place.
An optimizer is a chain of rules followed by ``p ← p − lr·u`` (see :mod:`descentlab.optim`).

- :mod:`.momentum`: heavy-ball / Nesterov (torch's buffer), EMA with bias correction,
  Dozat's scheduled Nesterov EMA;
- :mod:`.adaptation`: Σg² (Adagrad), EMA g² (RMSprop/Adam, centered, AMSGrad), EMA-max |g|
  (Adamax, L∞), Adadelta's ratio, EMA (g − m)² (AdaBelief); :mod:`descentlab.optim.lattice`
  lists them all, with what each declares;
- :mod:`.ftrl`: FTRL-Proximal, which sets the parameter instead of stepping it;
- :mod:`.clip`: clipnorm, global_clipnorm, clipvalue; :mod:`.decay`: Keras-2 time decay.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import _get_scalar_dtype


class Hyper(dict):
    """The hyperparameters one step reads, as attributes (``hp.beta1``)."""

    __slots__ = ()

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def zeros_state(state: dict, key: str, param: torch.Tensor) -> torch.Tensor:
    """``state[key]``, created as zeros shaped like ``param`` if the state does not hold it yet."""
    if key not in state:
        state[key] = torch.zeros_like(param, memory_format=torch.preserve_format)
    return state[key]


def filled_state(state: dict, key: str, param: torch.Tensor, value: float) -> torch.Tensor:
    """``state[key]``, created shaped like ``param`` with ``value`` in every real coordinate.

    A complex parameter's entry starts at ``value + value·i``, as torch's Adagrad starts it: the
    rules see the real view, whose coordinates all start at ``value``.
    """
    if key not in state:
        state[key] = torch.zeros_like(param, memory_format=torch.preserve_format)
        as_real(state[key]).fill_(value)
    return state[key]


def maximum_(a, b):
    """``a ← max(a, b)`` in place, NaN-propagating; also for the foreach and fused paths' values."""
    if isinstance(a, torch.Tensor):
        return torch.maximum(a, b, out=a)
    return a.maximum_(b)


def as_real(tensor: torch.Tensor) -> torch.Tensor:
    """A complex tensor as its real view ``(…, 2)``, a real one as is.

    torch steps a complex parameter as the pairs of reals it holds (``torch.view_as_real``), and
    every rule is elementwise, so this view is all a rule ever sees of a complex parameter.
    """
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def scalar_tensor(value: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A 0-d state tensor on the CPU, in torch's scalar dtype unless ``dtype`` is given.

    torch keeps ``step`` on the CPU whatever the parameter's device (unless fused or capturable),
    so that reading it never waits for the GPU; every 0-d entry here lives there for that reason.
    """
    return torch.tensor(value, dtype=dtype or _get_scalar_dtype())
