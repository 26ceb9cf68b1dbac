"""``descentlab report``: read one study from the store, draw every figure, write one HTML page."""

from __future__ import annotations

import os
from dataclasses import dataclass

from descentlab.problems.surfaces import SURFACES
from descentlab.report import clipping, curves, html, playground, profiles, sensitivity, trajectories
from descentlab.report.frames import Frames, load


@dataclass
class SurfaceFigures:
    """A 2-D surface's pictures: the paths' contour picture, the race (player data) and its GIF."""

    picture: bytes
    race: trajectories.Race
    gif: bytes


@dataclass
class ProblemFigures:
    """A problem's figures; none before the study has chosen its learning rates (unfinished)."""

    sensitivity: bytes | None
    curves: bytes | None  # real problems (a surface's curves are its race)
    surface: SurfaceFigures | None  # surfaces, once the study has chosen their lrs
    clipping: bytes | None = None  # surfaces with a clipped variant and its base: with and without clipping


def figures(frames: Frames, label: str) -> ProblemFigures:
    """Every figure of one problem of the study."""
    table = frames.problems[label]
    if not table["rows"]:
        return ProblemFigures(None, None, None)
    on_surface, surface, clipped = table["problem"] in SURFACES, None, None
    if on_surface:
        chosen = [t for t in frames.chosen.get(label, {}).values() if t["status"] in ("done", "diverged")]
        if chosen:
            paths = trajectories.replay(chosen, table["population"])
            start = tuple(paths[0].points[0])  # every chosen trial is seed 0: one start
            race = trajectories.race(label, table["problem"], paths, start)
            surface = SurfaceFigures(trajectories.picture(label, table["problem"], paths, start), race, race.gif())
            clipped = clipping.figure(frames, label)
    drawn = None if on_surface else curves.figure(label, table, frames.seed_curves.get(label, {}))
    return ProblemFigures(sensitivity.figure(label, table), drawn, surface, clipped)


def write_report(db: str, study_id: int | None = None, out: str | None = None) -> str:
    """Write the report of study ``study_id`` (default: the latest) of the store ``db`` to
    ``out/report.html`` (default: the store's folder); return its path."""
    frames = load(db, study_id)
    page = html.page(frames, {label: figures(frames, label) for label in frames.problems},
                     profiles.figure(frames.summary["profile"]), playground.study_section(frames))
    out = out or os.path.dirname(os.path.abspath(db))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path
