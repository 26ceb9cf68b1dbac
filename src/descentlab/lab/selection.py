"""Selection: how a trial scores, which configuration wins, and whether its lr is bracketed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from descentlab.lab.spec import worst


def score(record: dict | None, metric: str, goal: str) -> float:
    """The selection score of a trial: its final validation metric; diverged or failed runs, and
    runs without the metric, score worst."""
    if record is None or record["status"] != "done" or not record.get("valid"):
        return worst(goal)
    value = record["valid"].get(metric)
    return value if value is not None and math.isfinite(value) else worst(goal)


def better(a: float, b: float, goal: str) -> bool:
    return a < b if goal == "min" else a > b


def best(candidates, goal: str):
    """The selection rule: the best score, ties to the smaller lr. ``candidates``: (score, lr, item)."""
    chosen = None
    for value, lr, item in candidates:
        if chosen is None or better(value, chosen[0], goal) or (value == chosen[0] and lr < chosen[1]):
            chosen = (value, lr, item)
    return chosen


@dataclass
class LrAxis:
    """The lr grid of one optimizer configuration, as grid indices (see :func:`spec.grid_point`).

    It starts as ``0 .. size-1``. While the best point is the lowest or highest index, and fewer
    than ``cap`` points were added, :meth:`outward` names the next index beyond it: an edge is
    accepted as best only once the point beyond it scored worse or diverged.
    """

    size: int
    cap: int
    indices: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.indices = self.indices or list(range(self.size))

    @property
    def extended(self) -> int:
        return len(self.indices) - self.size

    def outward(self, best_index: int) -> int | None:
        """The index to try next, or None: the best is interior, the cap is reached, or a grid of
        one point (nothing to bracket)."""
        if self.size < 2 or self.extended >= self.cap:
            return None
        if best_index == min(self.indices):
            return best_index - 1
        if best_index == max(self.indices):
            return best_index + 1
        return None

    def add(self, index: int) -> None:
        self.indices.append(index)

    def bracket(self, best_index: int) -> str:
        """``interior`` (a worse point on each side), ``edge`` (still at an edge after the
        extensions allowed), or ``single`` (a one-point grid)."""
        if self.size < 2:
            return "single"
        return "interior" if min(self.indices) < best_index < max(self.indices) else "edge"
