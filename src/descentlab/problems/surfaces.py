"""2-D test surfaces: the "sense of performance" pictures (Beale, Rosenbrock, saddle, valley, cliff, …).

The parameters are one point (x, y); the loss is the surface. Every surface is vectorized: ``f``
and its analytic ``grad`` take points of shape ``(..., 2)``, so the lab can run thousands of
trajectories as one tensor. Optional gradient noise turns full-batch GD into SGD: a batch is the
mean of ``batch_size`` standard-normal vectors ξ, and the loss adds ``noise·⟨ξ, p⟩`` (so the
gradient gets ``noise·ξ``, with variance shrinking as 1/batch_size; ``batch_size=None`` is noise-free).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from descentlab.problems.base import Problem, check_batch_size, check_split, seeded, split_seed


@dataclass(frozen=True)
class Surface:
    name: str
    formula: str
    f: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]
    starts: tuple[tuple[float, float], ...]
    minima: tuple[tuple[float, float], ...]
    note: str = ""

    def distance_to_minimum(self, points: Tensor) -> Tensor:
        """Distance from each point (…, 2) to the nearest global minimum."""
        minima = torch.tensor(self.minima, dtype=points.dtype, device=points.device)
        return torch.cdist(points.reshape(-1, 2), minima).min(dim=1).values.reshape(points.shape[:-1])


def _xy(p: Tensor) -> tuple[Tensor, Tensor]:
    return p[..., 0], p[..., 1]


def _beale(p):
    x, y = _xy(p)
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_grad(p):
    x, y = _xy(p)
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    dx = 2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1)
    dy = 2 * a * x + 4 * b * x * y + 6 * c * x * y**2
    return torch.stack([dx, dy], dim=-1)


def _rosenbrock(p):
    x, y = _xy(p)
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _rosenbrock_grad(p):
    x, y = _xy(p)
    return torch.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)], dim=-1)


def _saddle(p):
    x, y = _xy(p)
    return x**2 - y**2


def _saddle_grad(p):
    x, y = _xy(p)
    return torch.stack([2 * x, -2 * y], dim=-1)


VALLEY_CONDITION = 100.0


def _valley(p):
    x, y = _xy(p)
    return 0.5 * (x**2 / VALLEY_CONDITION + y**2)


def _valley_grad(p):
    x, y = _xy(p)
    return torch.stack([x / VALLEY_CONDITION, y], dim=-1)


def _rastrigin(p):
    x, y = _xy(p)
    return 20 + x**2 - 10 * torch.cos(2 * math.pi * x) + y**2 - 10 * torch.cos(2 * math.pi * y)


def _rastrigin_grad(p):
    return 2 * p + 20 * math.pi * torch.sin(2 * math.pi * p)


def _himmelblau(p):
    x, y = _xy(p)
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def _himmelblau_grad(p):
    x, y = _xy(p)
    a, b = x**2 + y - 11, x + y**2 - 7
    return torch.stack([4 * x * a + 2 * b, 2 * a + 4 * y * b], dim=-1)


# The cliff: a gentle valley (the valley's condition number) with a wall across it. The wall is a
# smoothstep, exactly flat on both sides, so the minimum (0, 0) and its value 0 are exact; its face
# is 2·CLIFF_HALF_WIDTH wide and CLIFF_HEIGHT high, so its slope (up to 0.75·height/half-width =
# 120) is a hundred times the valley's near it: a plain step there throws the iterate far down
# the valley, where the gentle slope brings it back slowly.
CLIFF_HEIGHT, CLIFF_AT, CLIFF_HALF_WIDTH = 40.0, 1.0, 0.25


def _cliff_step(x):
    """The wall's height as a share of ``CLIFF_HEIGHT`` and its x-derivative (smoothstep 3t² − 2t³)."""
    t = ((x - CLIFF_AT + CLIFF_HALF_WIDTH) / (2 * CLIFF_HALF_WIDTH)).clamp(0, 1)
    return t * t * (3 - 2 * t), 6 * t * (1 - t) / (2 * CLIFF_HALF_WIDTH)


def _cliff(p):
    x, y = _xy(p)
    return _valley(p) + CLIFF_HEIGHT * _cliff_step(x)[0]


def _cliff_grad(p):
    x, _ = _xy(p)
    wall = torch.stack([CLIFF_HEIGHT * _cliff_step(x)[1], torch.zeros_like(x)], dim=-1)
    return _valley_grad(p) + wall


SURFACES = {
    s.name: s
    for s in (
        Surface("beale", "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²", _beale, _beale_grad,
                ((1.0, 1.75), (3.0, 4.0)), ((3.0, 0.5),)),
        Surface("rosenbrock", "(1 − x)² + 100·(y − x²)²", _rosenbrock, _rosenbrock_grad,
                ((-2.0, 2.0), (-1.2, 1.0)), ((1.0, 1.0),)),
        Surface("saddle", "x² − y²", _saddle, _saddle_grad, ((1.0, 0.0), (1.0, 1e-3)), (),
                note="no minimum: the first start lies on the symmetry line y = 0, where the "
                     "gradient never points off it; only noise or a perturbed start escapes"),
        Surface("valley", f"½·(x²/{VALLEY_CONDITION:g} + y²)", _valley, _valley_grad,
                ((-10.0, 1.0), (10.0, -1.0)), ((0.0, 0.0),),
                note=f"long narrow valley along x, condition number {VALLEY_CONDITION:g}"),
        Surface("rastrigin", "20 + Σ (xᵢ² − 10·cos 2πxᵢ)", _rastrigin, _rastrigin_grad,
                ((-2.5, 2.3), (4.5, 4.5)), ((0.0, 0.0),), note="a local minimum near every integer point"),
        Surface("himmelblau", "(x² + y − 11)² + (x + y² − 7)²", _himmelblau, _himmelblau_grad,
                ((0.0, 0.0), (-1.0, -1.0)),
                ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
                note="four global minima"),
        Surface("cliff", f"½·(x²/{VALLEY_CONDITION:g} + y²) + {CLIFF_HEIGHT:g}·S((x − {CLIFF_AT:g})/"
                         f"{CLIFF_HALF_WIDTH:g})", _cliff, _cliff_grad, ((4.0, 1.0), (2.0, -0.5)), ((0.0, 0.0),),
                note=f"a gentle valley with a wall {CLIFF_HEIGHT:g} high across it at x = {CLIFF_AT:g} (S: a "
                     f"smoothstep from 0 at −1 to 1 at +1); the start is on the terrace in front of the wall, "
                     f"whose face is about 100 times steeper than the valley: exploding gradients"),
    )
}


class Point(torch.nn.Module):
    """The model of a surface problem: one point."""

    def __init__(self, start: Tensor) -> None:
        super().__init__()
        self.xy = torch.nn.Parameter(start)


class SurfaceProblem(Problem[Point]):
    """Minimize a 2-D surface from a canonical start point, optionally with gradient noise."""

    default_steps = 500
    default_batch_size = None
    population = True

    def __init__(self, surface: str, start: int = 0, noise: float = 0.0, jitter: float = 0.0) -> None:
        self.surface = SURFACES[surface]
        if not isinstance(start, int) or not 0 <= start < len(self.surface.starts):
            raise ValueError(
                f"`start` must be an index into {surface}'s starts {self.surface.starts}. Received: start={start!r}"
            )
        for option, value in (("noise", noise), ("jitter", jitter)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{option}` must be >= 0. Received: {option}={value!r}")
        self.name = surface
        self.start = self.surface.starts[start]
        self.noise = float(noise)
        self.jitter = float(jitter)
        self.options = {"start": start, "noise": noise, "jitter": jitter}
        # Selected and ranked by the surface's value (0 at every global minimum), not by the
        # distance to a minimum, which can prefer not moving at all: from Beale's (1, 1.75) the
        # descent runs along a valley that first leads away from (3, 0.5).
        self.metric = "loss"
        note = f"; {self.surface.note}" if self.surface.note else ""
        self.description = f"2-D surface {self.surface.formula}{note}"

    @property
    def provenance(self) -> str:
        minima = ", ".join(str(m) for m in self.surface.minima) or "none"
        return f"analytic surface, no data; start {self.start}; minima {minima}"

    def model(self, seed: int) -> Point:
        start = torch.tensor(self.start)
        if self.jitter:
            with seeded(seed):
                start = start + self.jitter * torch.randn(2)
        return Point(start)

    def batches(self, split: str, batch_size: int | None, seed: int) -> Iterator[Tensor]:
        check_split(split)
        check_batch_size(batch_size)
        generator = torch.Generator().manual_seed(split_seed(seed, split))
        while True:
            if batch_size is None or self.noise == 0 or split != "train":
                yield torch.zeros(2)
            else:
                yield torch.randn(batch_size, 2, generator=generator).mean(dim=0)

    def loss(self, model: Point, batch: Tensor) -> Tensor:
        return self.population_loss(model.xy, batch)

    def evaluate(self, model: Point, split: str, limit: int | None = None) -> dict[str, float]:
        check_split(split)  # no data: every split (and limit) is the surface itself
        return {name: value.item() for name, value in self.population_metrics(model.xy.detach()).items()}

    def population_loss(self, points: Tensor, batches: Tensor) -> Tensor:
        """The noisy loss at many points at once: ``points`` and ``batches`` (K, 2) → (K,).

        Also takes one point and its batch, shaped (2,): that is :meth:`loss`."""
        return self.surface.f(points) + self.noise * (batches.to(points) * points).sum(dim=-1)

    def population_grad(self, points: Tensor, batches: Tensor) -> Tensor:
        """The analytic gradient of :meth:`population_loss`, row by row."""
        return self.surface.grad(points) + self.noise * batches.to(points)

    def population_metrics(self, points: Tensor) -> dict[str, Tensor]:
        """What :meth:`evaluate` reports, for points (…, 2): loss, x, y, distance to the nearest minimum."""
        with torch.no_grad():
            metrics = {"loss": self.surface.f(points), "x": points[..., 0], "y": points[..., 1]}
            if self.surface.minima:
                metrics["distance_to_minimum"] = self.surface.distance_to_minimum(points)
        return metrics
