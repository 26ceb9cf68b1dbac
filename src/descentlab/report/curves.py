"""Training curves of a real problem: the validation metric against steps and against seconds,
the mean over seeds of each optimizer's chosen configuration with a 95% band."""

from __future__ import annotations

import math

import numpy as np

from descentlab.lab import stats
from descentlab.lab.records import ProblemTable, Row
from descentlab.report import style
from descentlab.report.frames import SeedCurve


def band(curves: list[SeedCurve]) -> list[tuple[int, float, float, float, float]]:
    """Per step: (step, mean seconds, mean value, low, high), the interval a 95% bootstrap interval
    of the mean over the seeds that reached the step with a finite value (a diverged seed drops out)."""
    rows = []
    for step in sorted({step for curve in curves for step, _, _ in curve.points}):
        points = [(seconds, value) for curve in curves for s, seconds, value in curve.points
                  if s == step and math.isfinite(value)]
        if points:
            values = [value for _, value in points]
            low, high = stats.bootstrap_ci(values)
            rows.append((step, stats.mean(s for s, _ in points), stats.mean(values), low, high))
    return rows


def _zoom(ax, values: list[float], goal: str) -> None:
    """On a linear scale, frame the values from the 5% quantile on the bad side to the best one:
    the first points (far from the rest) would flatten every later difference."""
    if ax.get_yscale() != "linear" or len(values) < 2:
        return
    low, high = np.quantile(values, [0.05, 1.0]) if goal == "max" else np.quantile(values, [0.0, 0.95])
    margin = 0.05 * (high - low) or 1.0
    ax.set_ylim(low - margin, high + margin)


def _legend(row: Row) -> str:
    return row["optimizer"] if row["rank"] is None else f"{row['rank']}. {row['optimizer']}"


def figure(label: str, table: ProblemTable, seeds: dict[str, list[SeedCurve]]) -> bytes:
    """Two panels, steps and seconds, one line and band per optimizer, the target dotted (PNG)."""
    fig, axes = style.figure(11.0, 4.0, columns=2)
    fig.subplots_adjust(left=0.07, right=0.84, bottom=0.13, top=0.88, wspace=0.22)
    seen: list[float] = []
    for row in table["rows"]:
        seen += _draw(axes, row, seeds.get(row["optimizer"], []))
    _frame(axes, table, seen)
    style.fit_legend(fig, axes[0].legend(loc="upper left", bbox_to_anchor=(2.27, 1.0), fontsize=8, frameon=False))
    count = max((len(c) for c in seeds.values()), default=0)
    fig.suptitle(f"{label}: validation {table['metric']} ({table['goal']}imize) of each optimizer at its tuned lr, "
                 f"mean over {count} seeds with a 95% band; × a diverged seed; legend by test rank", fontsize=9)
    return style.png(fig)


def _draw(axes, row: Row, curves: list[SeedCurve]) -> list[float]:
    """One optimizer's mean and band on both panels, each diverged seed's last point marked;
    returns the band's finite values (none without a point)."""
    rows = band(curves)
    if not rows:
        return []
    step, seconds, mean, low, high = (np.array(column) for column in zip(*rows, strict=True))
    colour = style.colour(row["optimizer"])
    for ax, x in zip(axes, (step, seconds), strict=True):
        ax.plot(x, mean, **style.line(row["optimizer"]), linewidth=1.5,
                label=_legend(row) if ax is axes[0] else None)
        ax.fill_between(x, low, high, color=colour, alpha=0.2, linewidth=0)
    _mark_diverged(axes, curves, colour)
    return [v for v in np.concatenate([low, high]) if math.isfinite(v)]


def _mark_diverged(axes, curves: list[SeedCurve], colour: str) -> None:
    """An × at the last point of each seed that diverged, on both panels."""
    for curve in curves:
        if curve.diverged is not None and curve.points:
            last_step, last_seconds, value = curve.points[-1]
            for ax, at in zip(axes, (last_step, last_seconds), strict=True):
                ax.plot(at, value, marker="x", color=colour, markersize=8, mew=2)


def _frame(axes, table: ProblemTable, seen: list[float]) -> None:
    """Both panels' target line, scales fitted to the values ``seen``, labels and grid."""
    for ax, unit in zip(axes, ("steps", "seconds"), strict=True):
        if table["target"] is not None:
            ax.axhline(table["target"], color="black", linestyle=":", linewidth=1,
                       label="target" if ax is axes[0] else None)
        style.value_scale(ax, seen)
        _zoom(ax, seen, table["goal"])
        ax.set_xlabel(unit)
        ax.set_ylabel(f"validation {table['metric']}")
        ax.grid(alpha=0.3)
