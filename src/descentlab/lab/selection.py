"""Selection: how a trial scores, which configuration wins, and whether its lr is bracketed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from descentlab.lab.records import Metrics, Trial
from descentlab.lab.spec import worst


def metric_value(metrics: Metrics | None, metric: str, goal: str) -> float:
    """``metrics[metric]`` where it is a finite number, else the worst score."""
    value = (metrics or {}).get(metric)
    return value if value is not None and math.isfinite(value) else worst(goal)


def score(record: Trial | None, metric: str, goal: str, split: Literal["valid", "test"] = "valid") -> float:
    """A trial's final metric on ``split``: on validation, its selection score; on test, what is
    reported. Diverged or failed runs, and runs without the metric, score worst."""
    if record is None or record["status"] != "done":
        return worst(goal)
    return metric_value(record[split], metric, goal)


def better(a: float, b: float, goal: str) -> bool:
    return a < b if goal == "min" else a > b


def best(candidates, goal: str):
    """The selection rule: the best score, ties to the smaller lr. ``candidates``: (score, lr, item)."""
    chosen = None
    for value, lr, item in candidates:
        if chosen is None or better(value, chosen[0], goal) or (value == chosen[0] and lr < chosen[1]):
            chosen = (value, lr, item)
    return chosen


TIE = 1e-4  # scores this close (relative) to the best are ties: a flat response is no optimum


def ties(value: float, best_value: float) -> bool:
    """Whether ``value`` is as good as ``best_value`` for bracketing: within ``TIE`` of it,
    relatively. Worst scores (diverged, failed) tie with nothing: when every point diverged, the
    best is the smallest lr alone, and the grid grows downwards."""
    if not (math.isfinite(value) and math.isfinite(best_value)):
        return False
    return abs(value - best_value) <= TIE * max(abs(value), abs(best_value))


@dataclass
class LrAxis:
    """The lr grid of one optimizer configuration, as grid indices (see :func:`spec.grid_point`).

    It starts as ``0 .. size-1``. While an edge of the grid scores as well as the best point
    (it is the best, or ties with it: a plateau, such as every lr too small to move the model),
    and fewer than ``cap`` points were added, :meth:`outward` names the next index beyond that
    edge, the high edge first: an edge is accepted only once the point beyond it scored worse
    (by more than a tie) or diverged.
    """

    size: int
    cap: int
    indices: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.indices = self.indices or list(range(self.size))

    @property
    def extended(self) -> int:
        return len(self.indices) - self.size

    def outward(self, as_good: set[int]) -> int | None:
        """The index to try next, given the indices that score as well as the best; None when the
        best is bracketed, the cap is reached, or the grid has one point (nothing to bracket)."""
        if self.size < 2 or self.extended >= self.cap:
            return None
        if max(self.indices) in as_good:
            return max(self.indices) + 1
        if min(self.indices) in as_good:
            return min(self.indices) - 1
        return None

    def add(self, index: int) -> None:
        self.indices.append(index)

    def bracket(self, as_good: set[int]) -> str:
        """``interior`` (a worse point on each side of the best and its ties), ``edge`` (an edge
        still scores as well after the extensions allowed), or ``single`` (a one-point grid)."""
        if self.size < 2:
            return "single"
        return "edge" if {min(self.indices), max(self.indices)} & as_good else "interior"
