"""Learning-rate sensitivity: each optimizer's final validation metric at every lr it was tried
at on the tuning seed, the initial grid and its extensions told apart, diverged runs marked."""

from __future__ import annotations

import math

from matplotlib.transforms import blended_transform_factory

from descentlab.lab.records import ProblemTable, Row
from descentlab.report import style


def _curve(ax, row: Row, edge, worst_height: float) -> list[float]:
    """One optimizer's final validation metric against its lr (its chosen configuration's other
    hyperparameters): the grid, its extensions, the diverged lrs at the worst edge, the choice
    circled. Returns the finite scores drawn."""
    colour = style.colour(row["optimizer"])
    others = {k: v for k, v in row["hyperparameters"].items() if k != "lr"}
    points = [p for p in row["sensitivity"] if {k: v for k, v in p["hyperparameters"].items() if k != "lr"} == others]
    scored = [p for p in points if math.isfinite(p["score"])]
    bracket = {"interior": "", "edge": ", at an edge", "single": ""}[row["bracket"]]
    ax.plot([p["lr"] for p in scored], [p["score"] for p in scored], **style.line(row["optimizer"]), linewidth=1.2,
            label=f"{row['optimizer']} (chose {row['lr']:.3g}{bracket})")
    for phase, fill in (("tune", colour), ("extend", "white")):
        mine = [p for p in scored if p["phase"] == phase]
        ax.plot([p["lr"] for p in mine], [p["score"] for p in mine], linestyle="none", marker="o",
                markersize=5, color=colour, markerfacecolor=fill)
    lost = [p["lr"] for p in points if not math.isfinite(p["score"])]
    ax.plot(lost, [worst_height] * len(lost), linestyle="none", marker="x", markersize=7, mew=2, color=colour,
            transform=edge, clip_on=False)
    chosen = [p for p in scored if p["lr"] == row["lr"]]
    ax.plot([p["lr"] for p in chosen], [p["score"] for p in chosen], linestyle="none", marker="o",
            markersize=13, markerfacecolor="none", markeredgecolor=colour, mew=1.5)
    return [p["score"] for p in scored]


def figure(label: str, table: ProblemTable) -> bytes:
    """The lr-sensitivity picture of one problem (PNG)."""
    fig, (ax,) = style.figure(8.6, 4.2)
    fig.subplots_adjust(left=0.11, right=0.72, bottom=0.12, top=0.9)
    goal = table["goal"]
    edge = blended_transform_factory(ax.transData, ax.transAxes)  # x in lr, y a fixed height
    worst_height = 0.97 if goal == "min" else 0.03
    finite: list[float] = []
    for row in table["rows"]:
        finite += _curve(ax, row, edge, worst_height)
    _frame(ax, table, finite)
    _key(ax)
    style.fit_legend(fig, ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False))
    ax.set_title(f"{label}: lr sensitivity ({goal}imize {table['metric']})", fontsize=9)
    return style.png(fig)


def _frame(ax, table: ProblemTable, finite: list[float]) -> None:
    """lr on a log axis, the metric on a scale fitted to the ``finite`` scores, labels and grid."""
    ax.set_xscale("log")
    style.value_scale(ax, finite)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final validation {table['metric']} (seed 0)")
    ax.grid(alpha=0.3)


def _key(ax) -> None:
    """The legend's entries for the markers: grid, extension, diverged, chosen."""
    ax.plot([], [], linestyle="none", marker="o", color="grey", label="initial grid")
    ax.plot([], [], linestyle="none", marker="o", color="grey", markerfacecolor="white", label="extension")
    ax.plot([], [], linestyle="none", marker="x", mew=2, color="grey", label="diverged (worst)")
    ax.plot([], [], linestyle="none", marker="o", markersize=13, markerfacecolor="none", color="grey", label="chosen")
