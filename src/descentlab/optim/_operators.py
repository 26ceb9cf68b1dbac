"""Python's arithmetic operators for the value types the batched paths run the rules on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TensorOperators:
    """``+ - * / -x`` in terms of the ``add``, ``sub``, ``mul``, ``div`` and ``neg`` a subclass defines."""

    add: Callable[..., Any]
    sub: Callable[..., Any]
    mul: Callable[..., Any]
    div: Callable[..., Any]
    neg: Callable[..., Any]

    __slots__ = ()

    def __add__(self, other):
        return self.add(other)

    __radd__ = __add__

    def __sub__(self, other):
        return self.sub(other)

    def __mul__(self, other):
        return self.mul(other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self.div(other)

    def __neg__(self):
        return self.neg()
