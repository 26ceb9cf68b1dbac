"""The surface pictures: each optimizer's path at its tuned lr, replayed from the store.

A surface trial is deterministic (its start, its noise stream and its optimizer are given by
the stored trial), so it is replayed here through the lab's own runner with a point every step
instead of every ``eval_every``, and checked against every point the store kept (its curve and
its final point). From the replays: a contour picture with the whole paths (PNG), and the race,
as a background picture plus the paths' coordinates (for the page's player) and as a GIF.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from matplotlib.colors import LogNorm
from PIL import Image, ImageDraw

from descentlab.lab import runner
from descentlab.lab.records import CurvedTrial, Metrics, Result
from descentlab.lab.spec import TrialSpec
from descentlab.problems.surfaces import SURFACES
from descentlab.report import style

GIF_FRAMES = 60  # frames of the race GIF (the page's player steps through every replayed step)
PLAYER_POINTS = 500  # at most this many steps of each path in the page
REPLAY_TOLERANCE = 1e-4  # largest |replay − stored| in x or y accepted as the same run


@dataclass
class Path:
    """One optimizer's replayed path: ``points`` (steps + 1, 2) from the start, finite rows only."""

    optimizer: str
    lr: float
    points: np.ndarray
    status: str
    deviation: float  # largest |replay − stored| over the points the store kept
    checked: int  # how many stored points were compared


def replay(trials: list[CurvedTrial], population: bool) -> list[Path]:
    """Rerun stored trials of one surface problem with a point at every step, and compare each
    with the store.

    ``population``: whether the problem runs as a vectorized population. The replay goes through
    the same runner as the trial did, so that it does the same arithmetic: first as one population
    of these trials (rows never interact, so a row computes what it did among the study's rows),
    then, for a trial that population does not reproduce exactly, alone (the scheduler runs a
    lone trial, such as a single grid extension, outside any population); the closer replay is kept.
    """
    specs = [TrialSpec(t["problem"], t["problem_options"], t["optimizer"], t["hyperparameters"], t["seed"],
                       t["steps"], t["batch_size"], 1, t["divergence_factor"]) for t in trials]
    paths: list[Path | None] = [None] * len(specs)
    if population:  # a clipped trial is in no population group: it ran alone
        index = {id(spec): i for i, spec in enumerate(specs)}
        for group in runner.population_groups(specs):
            for spec, result in zip(group, runner.run_population(group), strict=True):
                paths[index[id(spec)]] = _path(trials[index[id(spec)]], spec, result)
    for i, (trial, spec) in enumerate(zip(trials, specs, strict=True)):
        path = paths[i]
        if path is None or path.deviation > 0:
            alone = _path(trial, spec, runner.run_trial(spec))
            paths[i] = alone if path is None else min(path, alone, key=lambda p: p.deviation)
    return cast("list[Path]", paths)  # the loop above filled every entry


def _xy(metrics: Metrics | None) -> tuple[float, float]:
    """A surface's point from its metrics (every evaluation of a surface has them)."""
    assert metrics is not None
    return metrics["x"], metrics["y"]


def _path(trial: CurvedTrial, spec: TrialSpec, result: Result) -> Path:
    if result["status"] == "failed":
        raise RuntimeError(f"replaying trial {trial['key']} failed: {result['error']}")
    start = runner.problem_of(spec).model(spec.seed).xy.detach().double().numpy()
    by_step = {p["step"]: _xy(p["valid"]) for p in result["curve"]}
    stored = [(p["step"], *_xy(p["valid"])) for p in trial["curve"] if p["valid"]]
    if trial["status"] == "done":
        stored.append((trial["steps"], *_xy(trial["valid"])))
    differences = [max(abs(by_step[step][0] - x), abs(by_step[step][1] - y)) if step in by_step else math.inf
                   for step, x, y in stored]
    points = np.array([start] + [by_step[step] for step in sorted(by_step)], dtype=float)
    finite = np.isfinite(points).all(axis=1)
    points = points[: len(points) if finite.all() else int(np.argmin(finite))]
    return Path(trial["optimizer"], spec.lr, points, result["status"], max(differences, default=0.0), len(stored))


def window(surface: str, paths: list[Path], start: tuple[float, float]) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the box around the start, the minima and the paths with a 10% margin,
    neither side shorter than 40% of the other. Points further from the start and minima than five
    times their spread are left out: a path that flies off leaves the picture rather than
    shrinking everything else to a dot."""
    anchors = np.array([start, *SURFACES[surface].minima])
    centre = (anchors.min(axis=0) + anchors.max(axis=0)) / 2
    reach = 5 * np.maximum(anchors.max(axis=0) - anchors.min(axis=0), 1.0)
    shown = np.concatenate([anchors, *(path.points for path in paths)])
    shown = shown[(np.abs(shown - centre) <= reach).all(axis=1)]
    low, high = shown.min(axis=0), shown.max(axis=0)
    size = high - low
    size = np.maximum(size, 0.4 * size.max()) if size.max() > 0 else np.ones(2)
    middle = (low + high) / 2
    low, high = middle - 0.55 * size, middle + 0.55 * size
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


def contours(ax, surface: str, box: tuple[float, float, float, float], start) -> None:
    """Filled contours on log-spaced levels (of the surface less its lowest value in the box), the
    start and the minima."""
    x0, x1, y0, y1 = box
    xs, ys = np.linspace(x0, x1, 300), np.linspace(y0, y1, 300)
    heights, levels = _heights(surface, xs, ys)
    # light where low, so that the paths stay visible where they end up
    ax.contourf(xs, ys, heights, levels=levels, norm=LogNorm(), cmap="Greys", alpha=0.35).set_rasterized(True)
    ax.contour(xs, ys, heights, levels=levels, norm=LogNorm(), colors="#888888", linewidths=0.4)
    _landmarks(ax, surface, start)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _heights(surface: str, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The surface on the grid ``xs`` × ``ys`` less its lowest value there, lifted by a floor so
    that a log scale takes it, and 20 log-spaced levels from the floor to the top."""
    grid = torch.tensor(np.stack(np.meshgrid(xs, ys), axis=-1))
    z = SURFACES[surface].f(grid).numpy()
    z = z - z.min()
    floor = max(z.max() * 1e-6, 1e-12)
    levels = np.logspace(math.log10(floor), math.log10(z.max() + floor), 20)
    return z + floor, levels


def _landmarks(ax, surface: str, start) -> None:
    """The surface's minima (★) and the start (○)."""
    for mx, my in SURFACES[surface].minima:
        ax.plot(mx, my, marker="*", markersize=16, color=style.MINIMUM, markeredgecolor="black", zorder=5,
                linestyle="none")
    ax.plot(*start, marker="o", markersize=8, color="white", markeredgecolor="black", zorder=5, linestyle="none")


def _label(path: Path) -> str:
    return f"{path.optimizer} (lr {path.lr:.3g})" + (", diverged" if path.status == "diverged" else "")


def panel(ax, surface: str, paths: list[Path], box, start, drawn: bool = True) -> None:
    """The surface in ``box`` with every path (or, not ``drawn``, only their legend entries)."""
    contours(ax, surface, box, start)
    for path in paths:
        ax.plot(*(path.points.T if drawn else ([], [])), **style.line(path.optimizer), linewidth=1.6,
                label=_label(path))
        if drawn:
            ax.plot(*path.points[-1], marker="o", markersize=5, color=style.colour(path.optimizer), zorder=6)
    ax.plot([], [], marker="o", color="white", markeredgecolor="black", linestyle="none", label="start")
    if SURFACES[surface].minima:
        ax.plot([], [], marker="*", markersize=12, color=style.MINIMUM, markeredgecolor="black", linestyle="none",
                label="minimum")


def _figure(label: str, surface: str, paths: list[Path], box, start, drawn: bool):
    fig, (ax,) = style.figure(7.6, 4.8)
    fig.subplots_adjust(left=0.09, right=0.68, bottom=0.11, top=0.92)
    panel(ax, surface, paths, box, start, drawn)
    style.fit_legend(fig, ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False))
    ax.set_title(f"{label}: {SURFACES[surface].formula}", fontsize=9)
    return fig, ax


def picture(label: str, surface: str, paths: list[Path], start) -> bytes:
    """The contour picture with every optimizer's whole path (PNG)."""
    box = window(surface, paths, start)
    return style.png(_figure(label, surface, paths, box, start, drawn=True)[0])


@dataclass
class Race:
    """The race on one surface: a background picture, where its axes lie in it, and the paths."""

    background: bytes  # PNG
    size: tuple[int, int]  # its width and height in pixels
    axes: tuple[int, int, int, int]  # left, top, width, height of the plot area, in pixels
    window: tuple[float, float, float, float]  # x0, x1, y0, y1 of the plot area
    steps: list[int]  # the steps shown, one per frame
    paths: list[Path]

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """Data coordinates (n, 2) → pixel coordinates in the background, kept near the picture."""
        left, top, width, height = self.axes
        x0, x1, y0, y1 = self.window
        px = left + (points[:, 0] - x0) / (x1 - x0) * width
        py = top + (y1 - points[:, 1]) / (y1 - y0) * height
        return np.clip(np.stack([px, py], axis=1), -10 * width, 10 * width)

    def player(self) -> dict:
        """What the page's player draws: frame k shows every path up to ``steps[k]``."""
        return {"size": list(self.size), "axes": list(self.axes), "steps": self.steps,
                "paths": [{"name": p.optimizer, "colour": style.colour(p.optimizer),
                           "points": [[round(float(x)), round(float(y))]
                                      for x, y in self.pixels(p.points[[min(s, len(p.points) - 1)
                                                                        for s in self.steps]])]} for p in self.paths]}

    def gif(self, frames: int = GIF_FRAMES) -> bytes:
        """The race as an animated GIF (Pillow), the last frame held."""
        base = Image.open(io.BytesIO(self.background)).convert("RGB")
        shown = sorted({self.steps[round(i)] for i in np.linspace(0, len(self.steps) - 1, frames)})
        images = [self._frame(base, step) for step in shown]
        palette = images[-1].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
        images = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
        buffer = io.BytesIO()
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=[80] * (len(images) - 1) + [2000])
        return buffer.getvalue()

    def _frame(self, base: Image.Image, step: int) -> Image.Image:
        left, top, width, height = self.axes
        layer = base.copy()
        draw = ImageDraw.Draw(layer)
        for path in self.paths:
            shown = self.pixels(path.points[: step + 1])
            colour = style.colour(path.optimizer)
            draw.line([tuple(p) for p in shown], fill=colour, width=2, joint="curve")
            x, y = shown[-1]
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour, outline="black")
        draw.text((left + 6, top + 4), f"step {step}", fill="black")
        frame = base.copy()  # the paths are clipped to the plot area, as in the picture
        frame.paste(layer.crop((left, top, left + width, top + height)), (left, top))
        return frame


def race(label: str, surface: str, paths: list[Path], start) -> Race:
    """The race on ``surface``: the background (surface, legend, no paths) and every step to draw."""
    box = window(surface, paths, start)
    fig, ax = _figure(label, surface, paths, box, start, drawn=False)
    fig.canvas.draw()
    extent = ax.get_window_extent()
    width, height = (round(inches * style.DPI) for inches in fig.get_size_inches())
    axes = (round(extent.x0), round(height - extent.y1), round(extent.width), round(extent.height))
    background = style.png(fig)
    longest = max((len(p.points) for p in paths), default=1) - 1
    steps = sorted({round(s) for s in np.linspace(0, longest, min(longest, PLAYER_POINTS) + 1)})
    return Race(background, (width, height), axes, box, steps, paths)
