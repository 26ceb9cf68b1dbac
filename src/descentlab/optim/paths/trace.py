"""Trace a step written for tensors into the body of one elementwise loop, for any kernel backend.

The fused path does not re-implement any optimizer. It runs the very code of the reference path
(the rules and :meth:`Chain.update`) on symbolic values: every tensor operation the rules call
appends one operation to the loop body, and every Python number they pass becomes a scalar slot
read before the loop. The body therefore depends only on which operations ran (the structure:
which rules, nesterov or not, which branch of ``lerp``), not on the values (learning rate, bias
corrections), so one compiled kernel serves every step of an optimizer.

The body is kept as operations with operands (``("t3", "sqrt", ("t2",))``), not as text: a
backend renders it with its own spelling of each operation (:data:`OPERATIONS` gives the
operations; :mod:`.numba_kernels` and :mod:`.triton_kernels` spell them). The per-element
formulas are torch's CPU kernels, roundings included: ``add(x, y, alpha) = fma(alpha, y, x)``,
``addcmul(x, a, b, value) = fma(value·a, b, x)``, ``lerp`` with its two branches on ``|w| < ½``,
``fma(w, e − x, x)`` and ``fma(−(e − x), 1 − w, e)`` (torch's vectorized CPU kernels round each of
these once; measured bit for bit, float32 and float64), ``pow`` with torch's fast paths for ½ and 2,
NaN-propagating ``maximum`` and ``clamp``.
"""

from __future__ import annotations

import numbers

import torch

from descentlab.optim._operators import TensorOperators

# name -> arity: the whole vocabulary a backend must spell
OPERATIONS = {
    "add": 2, "sub": 2, "mul": 2, "div": 2, "neg": 1, "axpy": 3, "addcmul": 4,
    "lerp_near": 3, "lerp_far": 3, "sqrt": 1, "abs": 1, "square": 1, "pow": 2, "clamp": 3, "maximum": 2,
}
# the operations every backend writes as Python arithmetic; each adds the functions it spells its own way
ARITHMETIC = {
    "add": "({0} + {1})",
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "div": "({0} / {1})",
    "neg": "(-{0})",
    "square": "({0} * {0})",
}
# the operations torch rounds once, as a fused multiply-add a·b + c: operand templates for a, b, c
_FMA_OPERANDS = {
    "axpy": ("{1}", "{2}", "{0}"),
    "addcmul": ("({1} * {2})", "{3}", "{0}"),
    "lerp_near": ("{2}", "({1} - {0})", "{0}"),
    "lerp_far": ("(-({1} - {0}))", "{2}", "{1}"),
}


def fused_multiply_adds(fma: str) -> dict[str, str]:
    """The spellings of the operations torch rounds once, given a backend's ``fma`` (``{a}``·``{b}`` + ``{c}``)."""
    return {operation: fma.format(a=a, b=b, c=c) for operation, (a, b, c) in _FMA_OPERANDS.items()}


class Trace:
    """The loop body being written: operations, scalar slots, and the arrays read or written."""

    def __init__(self) -> None:
        self.operations: list[tuple[str, str, tuple[str, ...]]] = []
        self.scalars: list[float] = []
        self.arrays: dict[str, Var] = {}  # argument name -> the value it holds at the end
        self.loaded: list[str] = []  # arguments whose element is read (the others are only written)
        self.state_keys: dict[str, str] = {}  # state key -> argument name
        self._count = 0

    def scalar(self, value) -> str:
        self.scalars.append(float(value))
        return f"c{len(self.scalars) - 1}"

    def operand(self, value) -> str:
        if isinstance(value, Var):
            return value.name
        if type(value) is float or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
            return self.scalar(value)
        raise TypeError(f"a fused kernel cannot take {type(value).__name__} operands")

    def emit(self, operation: str, operands) -> str:
        name = f"t{self._count}"
        self._count += 1
        # this runs for every operation of every step: Var operands without a method call
        names = tuple([x.name if type(x) is Var else self.operand(x) for x in operands])
        self.operations.append((name, operation, names))
        return name

    def array(self, argument: str) -> Var:
        """The element of ``argument`` at the loop index, as a value; stored back if it changes."""
        if argument not in self.arrays:
            self.arrays[argument] = Var(self, f"x_{argument}")
            self.loaded.append(argument)
        return self.arrays[argument]

    def state_argument(self, key: str) -> str:
        """The kernel argument holding state ``key``'s flat buffer."""
        if key not in self.state_keys:
            self.state_keys[key] = f"a{len(self.state_keys)}"
        return self.state_keys[key]

    def bind(self, argument: str, value: Var) -> None:
        """An array this step creates: ``value`` is stored into it at the end."""
        self.arrays[argument] = value

    def arguments(self) -> list[str]:
        """The kernel's array arguments in order (before the scalars)."""
        return list(self.arrays)

    def stores(self) -> list[tuple[str, str]]:
        """``(argument, value)`` for every array whose element changed."""
        return [(argument, var.name) for argument, var in self.arrays.items() if var.name != f"x_{argument}"]

    def structure(self) -> tuple:
        """What the kernel's source depends on (not the scalars' values): a key for compiled kernels."""
        return tuple(self.operations), tuple(self.loaded), tuple(self.arrays), tuple(self.stores()), len(self.scalars)

    def render(self, spelling: dict[str, str]) -> list[str]:
        """The body's assignments, each operation written with ``spelling[operation]``."""
        return [f"{name} = {spelling[operation].format(*operands)}" for name, operation, operands in self.operations]


class Var(TensorOperators):
    """A symbolic tensor: the name of the loop-local value that holds it now.

    In-place methods rebind the name (so aliases see the change, as with tensors); the others
    return a new value. Only the methods of the contract (:mod:`descentlab.optim.contract`) exist.
    """

    __slots__ = ("trace", "name")

    def __init__(self, trace: Trace, name: str) -> None:
        self.trace = trace
        self.name = name

    def _new(self, operation: str, *operands) -> Var:
        return Var(self.trace, self.trace.emit(operation, (self, *operands)))

    def _set(self, result: Var) -> Var:
        self.name = result.name
        return self

    # arithmetic
    def add(self, other, alpha=1):
        if alpha == 1:
            return self._new("add", other)
        return self._new("axpy", alpha, other)

    def sub(self, other, alpha=1):
        return self.add(other, alpha=-alpha)

    def mul(self, other):
        return self._new("mul", other)

    def div(self, other):
        return self._new("div", other)

    def addcmul(self, tensor1, tensor2, value=1):
        return self._new("addcmul", value, tensor1, tensor2)

    def lerp(self, end, weight):
        if abs(weight) < 0.5:
            return self._new("lerp_near", end, weight)
        return self._new("lerp_far", end, 1 - weight)

    def sqrt(self):
        return self._new("sqrt")

    def abs(self):
        return self._new("abs")

    def pow(self, exponent):
        if exponent == 0.5:
            return self.sqrt()
        if exponent == 2:
            return self._new("square")
        return self._new("pow", exponent)

    def clamp(self, min, max):  # noqa: A002 - torch's argument names
        return self._new("clamp", min, max)

    def maximum(self, other):
        return self._new("maximum", other)

    def neg(self):
        return self._new("neg")

    def clone(self):
        return self

    def detach(self):
        return self

    def __rsub__(self, other):
        return Var(self.trace, self.trace.emit("sub", (other, self)))

    def __rtruediv__(self, other):
        return Var(self.trace, self.trace.emit("div", (other, self)))

    # in place
    def add_(self, other, alpha=1):
        return self._set(self.add(other, alpha))

    def sub_(self, other, alpha=1):
        return self._set(self.sub(other, alpha))

    def mul_(self, other):
        return self._set(self.mul(other))

    def div_(self, other):
        return self._set(self.div(other))

    def addcmul_(self, tensor1, tensor2, value=1):
        return self._set(self.addcmul(tensor1, tensor2, value))

    def lerp_(self, end, weight):
        return self._set(self.lerp(end, weight))

    def sqrt_(self):
        return self._set(self.sqrt())

    def maximum_(self, other):
        return self._set(self.maximum(other))

    def copy_(self, source):
        self.name = source.name
        return self


class ScalarState:
    """A 0-d state entry (``mu_product``) of a run of parameters that all hold the same value.

    Tracing computes its new value (rounded in the entry's dtype, as the tensor would be) without
    storing it; :meth:`commit` stores it in every parameter's entry at once, through the slice of
    the flat buffer, when the step is applied. The entries live on the CPU, whatever the device.
    """

    __slots__ = ("values", "pending")

    def __init__(self, values: torch.Tensor) -> None:
        self.values = values
        self.pending = values

    def __imul__(self, factor):
        self.pending = self.pending * factor
        return self

    def item(self) -> float:
        return self.pending[0].item()

    def commit(self) -> None:
        if self.pending is not self.values:
            self.values.copy_(self.pending)


class SymbolicState:
    """A parameter's state dict as seen by a traced step over a run of parameters.

    A full-shaped key reads as the element of its flat buffer (a kernel argument); ``scalars``
    maps the 0-d keys to their :class:`ScalarState`; ``present`` is the set of keys the run's
    parameters hold (a key absent there reads as absent, as in a dict).
    """

    def __init__(self, trace: Trace, scalars: dict[str, torch.Tensor], present: frozenset) -> None:
        self.trace = trace
        self.scalars = {key: ScalarState(values) for key, values in scalars.items()}
        self.present = present
        self.created: list[str] = []

    def __contains__(self, key: str) -> bool:
        return key in self.present or key in self.created

    def __getitem__(self, key: str):
        if key not in self:
            raise KeyError(key)
        if key in self.scalars:
            return self.scalars[key]
        return self.trace.array(self.trace.state_argument(key))

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def __setitem__(self, key: str, value: Var) -> None:
        self.created.append(key)
        self.trace.bind(self.trace.state_argument(key), value)

    def commit(self) -> None:
        """Store the new values of the 0-d entries."""
        for scalar in self.scalars.values():
            scalar.commit()
