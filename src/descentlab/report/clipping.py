"""The clipping picture: on a surface, an optimizer and its clipped variants, replayed from the store.

Left, each at its own tuned lr (what the study compared); right, all at one common lr: the tuned
lr of the best clipped variant (the verdict's champion), each contestant at the grid lr nearest
to it that it ran on seed 0 (the variants share their base's grid, so usually that very lr).
There the only difference between two paths is the clipping.
"""

from __future__ import annotations

import math

from descentlab.lab import verdict
from descentlab.lab.records import CurvedTrial
from descentlab.problems.surfaces import SURFACES
from descentlab.report import style, trajectories
from descentlab.report.frames import Frames


def contestants(frames: Frames, label: str) -> tuple[list[str], float] | None:
    """The optimizer whose clipped variant the verdict's rule picks, that variant and its siblings
    (the names drawn), and the common lr; None without a clipped variant and its base."""
    table = frames.problems[label]
    if table["problem"] not in SURFACES:
        return None
    duel = verdict.clipped_duel(label, table)
    if duel is None:
        return None
    names = [duel["theirs"]] + [r["optimizer"] for r in table["rows"]
                                if verdict.base(r["optimizer"]) == duel["theirs"] != r["optimizer"]]
    common = next(r["lr"] for r in table["rows"] if r["optimizer"] == duel["ours"])
    return names, common


def _nearest(runs: list[CurvedTrial], lr: float) -> CurvedTrial | None:
    runs = [t for t in runs if t["status"] in ("done", "diverged")]
    return min(runs, key=lambda t: abs(math.log(t["hyperparameters"]["lr"] / lr)), default=None)


def figure(frames: Frames, label: str) -> bytes | None:
    """Two panels of paths on the surface: at the tuned lrs, and at one common lr (PNG)."""
    found = contestants(frames, label)
    if found is None:
        return None
    names, common = found
    surface = frames.problems[label]["problem"]
    panels = _panels(frames, label, names, common)
    start = tuple(panels[0][1][0].points[0])
    box = trajectories.window(surface, [path for _, paths in panels for path in paths], start)
    fig, axes = style.figure(12.0, 5.2, columns=2)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.27, top=0.9, wspace=0.18)
    for ax, (title, paths) in zip(axes, panels, strict=True):
        trajectories.panel(ax, surface, paths, box, start)
        ax.set_title(f"{label}, {title}", fontsize=9)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    return style.png(fig)


def _panels(frames: Frames, label: str, names: list[str], common: float) -> list[tuple[str, list[trajectories.Path]]]:
    """The two panels' titles and paths, replayed: each contestant's chosen trial, and its grid run
    nearest to the ``common`` lr."""
    population = frames.problems[label]["population"]
    tuned = [frames.chosen[label][name] for name in names if name in frames.chosen.get(label, {})]
    shared = [t for t in (_nearest(frames.grid_runs.get(label, {}).get(name, []), common) for name in names) if t]
    return [("each at its tuned lr", trajectories.replay(tuned, population)),
            (f"all at lr {common:.3g}", trajectories.replay(shared, population))]
