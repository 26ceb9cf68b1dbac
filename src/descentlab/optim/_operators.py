"""Python's arithmetic operators for the value types the batched paths run the rules on."""

from __future__ import annotations


class TensorOperators:
    """``+ - * / -x`` in terms of the ``add``, ``sub``, ``mul``, ``div`` and ``neg`` a subclass defines."""

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
