"""The surface playground: one offline page where moving an optimizer's lr or momentum slider
redraws its path at once.

Every path is precomputed by the lab's population runner (:func:`descentlab.lab.runner.run_population`,
one vectorized population per surface variant, each row with its own lr, momentum or β1): per
optimizer, a fine log grid of learning rates times, where it has one, a grid of momentum (or β1)
values. The paths are quantized to the plot's resolution (``LEVELS`` steps across each axis),
coded as the change of each step (:func:`_second_differences`) in zigzag varints, deflated and
embedded in base85; the page inflates them with the browser's own ``DecompressionStream``, and
draws them on a canvas over a contour picture (matplotlib). No server, no recompute in the browser.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import inspect
import json
import math
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from matplotlib.colors import to_hex

from descentlab.lab import runner
from descentlab.lab.spec import OPTIMIZERS, TrialSpec, check_names, default_lr, grid_point, optimizer_of
from descentlab.problems.surfaces import SURFACES
from descentlab.report import style, trajectories
from descentlab.rules.clip import clips

LEVELS = 512  # quantization steps across the plot, per axis: about one per pixel
MARGIN = 128  # levels kept beyond each edge; a path ends at its first point past them
LOSS_SCALE, LOSS_FLOOR = 100.0, 1e-8  # loss stored as round(asinh(loss / floor) * scale): 1% relative
MOMENTA = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)  # momentum / β1 values of each slider
NESTEROV_MOMENTA = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)  # torch's Nesterov needs momentum > 0
LR_POINTS = 25  # the fine grid: this many lrs over LR_SPAN decades
LR_SPAN = 3.0
PROBE_POINTS, PROBE_SPAN = 13, 6.0  # the coarse probe that finds each optimizer's useful range
ZLIB_LEVEL = 6  # level 9 deflates the default page 4% smaller at six times the time
NOISE = 1.0  # gradient noise of the noisy variants (standard deviation per coordinate, batch 1)
SHOWN = ("sgd", "momentum", "rmsprop", "adam")  # ticked when the page opens


@dataclass(frozen=True)
class View:
    """One surface picture of the playground: a surface from one start, in a fixed window."""

    key: str
    title: str
    surface: str
    start: int
    window: tuple[float, float, float, float]  # x0, x1, y0, y1


VIEWS = (
    View("beale", "Beale", "beale", 0, (-1.0, 4.5, -1.5, 4.5)),
    View("beale-far", "Beale, far start", "beale", 1, (-1.0, 4.5, -1.5, 4.5)),
    View("saddle", "saddle (start just off y = 0)", "saddle", 1, (-1.5, 1.5, -1.5, 1.5)),
    View("rosenbrock", "Rosenbrock", "rosenbrock", 0, (-2.5, 2.0, -1.0, 3.5)),
    View("valley", "valley", "valley", 0, (-12.0, 12.0, -3.0, 3.0)),
    View("rastrigin", "Rastrigin", "rastrigin", 0, (-5.0, 5.0, -5.0, 5.0)),
    View("himmelblau", "Himmelblau", "himmelblau", 0, (-5.0, 5.0, -5.0, 5.0)),
)


@dataclass(frozen=True)
class Setting:
    """What every path of one page variant shares (besides its optimizer, lr and momentum)."""

    view: View
    options: dict  # the problem's options (start, noise, jitter)
    steps: int
    batch_size: int | None
    divergence_factor: float = 10.0
    seed: int = 0

    def spec(self, optimizer: str, hyperparameters: dict) -> TrialSpec:
        return TrialSpec(self.view.surface, self.options, optimizer, hyperparameters, self.seed, self.steps,
                         self.batch_size, self.steps, self.divergence_factor)


@dataclass
class Slider:
    """An optimizer's sliders: its lr grid, and its second hyperparameter's values (or none)."""

    optimizer: str
    lrs: list[float]
    second: str | None = None  # "momentum" or "beta1"
    values: tuple[float, ...] = ()
    initial: tuple[int, int] = (0, 0)  # the lr and momentum indices shown first

    def hyperparameters(self, value_index: int, lr: float) -> dict:
        if self.second is None:
            return {"lr": lr}
        value = self.values[value_index]
        if self.second == "beta1":
            return {"betas": [value, _beta2(self.optimizer)], "lr": lr}
        return {"momentum": value, "lr": lr}

    def settings(self) -> list[dict]:
        """Every (momentum, lr) setting, momentum-major: the order of the page's paths."""
        return [self.hyperparameters(v, lr) for v in range(max(len(self.values), 1)) for lr in self.lrs]


@functools.cache
def _beta2(optimizer: str) -> float:
    cls, fixed = OPTIMIZERS[optimizer]
    return float(fixed.get("betas", inspect.signature(cls).parameters["betas"].default)[1])


def second_hyperparameter(optimizer: str) -> tuple[str | None, tuple[float, ...], float | None]:
    """The optimizer's momentum-like hyperparameter: (``"momentum"`` or ``"beta1"`` or None, the
    slider's values, the lab name's own value). Plain ``sgd`` has none: ``momentum`` is that slider."""
    cls, fixed = OPTIMIZERS[optimizer]
    parameters = inspect.signature(cls).parameters
    if "betas" in parameters:
        return "beta1", MOMENTA, float(fixed.get("betas", parameters["betas"].default)[0])
    if "momentum" in parameters and optimizer != "sgd":
        values = NESTEROV_MOMENTA if fixed.get("nesterov") else MOMENTA
        return "momentum", values, float(fixed.get("momentum", parameters["momentum"].default))
    return None, (), None


def playable(optimizer: str) -> bool:
    """Whether the population runner can run the optimizer (clipping mixes rows: it cannot)."""
    return not clips(optimizer_of(optimizer)[1])


def slider(optimizer: str, low: float, high: float, points: int = LR_POINTS, initial_lr: float | None = None
           ) -> Slider:
    """The optimizer's sliders over ``points`` lrs evenly spaced in log from ``low`` to ``high``."""
    second, values, own = second_hyperparameter(optimizer)
    lrs = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    target = initial_lr if initial_lr is not None else math.sqrt(low * high)
    lr_index = min(range(points), key=lambda i: abs(math.log(lrs[i] / target)))
    value_index = min(range(len(values)), key=lambda i: abs(values[i] - own)) if values and own is not None else 0
    return Slider(optimizer, lrs, second, values, (lr_index, value_index))


def useful_range(setting: Setting, optimizers: list[str]) -> dict[str, tuple[float, float, float | None]]:
    """Each optimizer's lr range and first lr: LR_SPAN decades ending half a decade above the
    largest lr of a coarse probe (PROBE_POINTS lrs over PROBE_SPAN decades around its default, at
    its own momentum) that neither diverged nor left the plot, so that the slider runs from
    crawling to diverging; first, the probe's lr with the lowest final loss."""
    specs = [setting.spec(name, {"lr": grid_point(default_lr(name), PROBE_POINTS, PROBE_SPAN, i)})
             for name in optimizers for i in range(PROBE_POINTS)]
    results = runner.run_population(specs)
    x0, x1, y0, y1 = setting.view.window
    ranges = {}
    for name in optimizers:
        stable = [(spec.lr, valid["loss"]) for spec, result in zip(specs, results, strict=True)
                  if spec.optimizer == name and result["status"] == "done" and (valid := result["valid"]) is not None
                  and x0 <= valid["x"] <= x1 and y0 <= valid["y"] <= y1]
        top = max(stable)[0] * 10**0.5 if stable else default_lr(name) * 10 ** (LR_SPAN / 2)
        best = min(stable, key=lambda pair: pair[1])[0] if stable else None
        ranges[name] = (top / 10**LR_SPAN, top, best)
    return ranges


def _quantize(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.rint((values - low) / (high - low) * LEVELS).astype(np.int64)


def encode_loss(loss: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # a huge loss saturates the code
        return np.clip(np.rint(np.arcsinh(loss * (1 / LOSS_FLOOR)) * LOSS_SCALE), -30000, 30000).astype(np.int64)


def decode_loss(codes: np.ndarray) -> np.ndarray:
    return LOSS_FLOOR * np.sinh(codes / LOSS_SCALE)


def dequantize(codes: np.ndarray, low: float, high: float) -> np.ndarray:
    """The inverse of the page's quantization (what the page draws, in data coordinates)."""
    return low + codes / LEVELS * (high - low)


def _varints(deltas: np.ndarray) -> bytes:
    """Zigzag LEB128 varints of integer deltas (mostly one byte each: paths move little per step)."""
    zigzag = (np.abs(deltas) * 2 - (deltas < 0)).astype(np.uint64)
    sizes = np.ones(len(zigzag), dtype=np.int64)
    for bits in (7, 14, 21, 28):
        sizes += zigzag >= (1 << bits)
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    first = np.cumsum(sizes) - sizes
    for byte in range(int(sizes.max(initial=1))):
        rows = sizes > byte
        more = (sizes[rows] > byte + 1).astype(np.uint64) << np.uint64(7)
        out[first[rows] + byte] = ((zigzag[rows] >> np.uint64(7 * byte)) & np.uint64(0x7F)) | more
    return out.tobytes()


def compute(setting: Setting, sliders: list[Slider]) -> dict:
    """Run every slider setting as one population and encode it for the page.

    Returns the variant's page data: the number of paths and, deflated, each path's length, each
    path's end (0: ran every step; k > 0: the runner's divergence at step k; −k: left the plot at
    step k), then the x, y and loss streams (the points quantized to the window and the surface
    value at each point, coded by :func:`_second_differences`), all as zigzag varints."""
    specs = [setting.spec(s.optimizer, hp) for s in sliders for hp in s.settings()]
    traced, results = _traced(specs)  # (steps + 1, K, 2)
    losses = runner.problem_of(specs[0]).surface.f(traced).numpy()
    qx, qy, outside = _quantized(traced.numpy(), setting.view.window)
    codes = encode_loss(np.clip(np.nan_to_num(losses, nan=1e300), -1e300, 1e300))
    lengths, ends = _ends(results, outside, setting.steps)
    kept = (np.arange(setting.steps + 1)[:, None] < lengths).T  # (K, steps + 1): path after path
    payload = _varints(lengths) + _varints(ends) + b"".join(
        _varints(_second_differences(column).T[kept]) for column in (qx, qy, codes))
    # base85 (git's alphabet: no quote, backslash or slash to escape in the page): 5 characters
    # for 4 bytes, where base64 takes 5.33
    return {"paths": len(results), "data": base64.b85encode(zlib.compress(payload, ZLIB_LEVEL)).decode("ascii")}


def _traced(specs: list[TrialSpec]) -> tuple[torch.Tensor, list]:
    """The population's points at every step, ``(steps + 1, K, 2)`` in float64, and its results."""
    snapshots = []
    results = runner.run_population(specs, trace=lambda step, points: snapshots.append(points.clone()))
    return torch.stack(snapshots).double(), results


def _quantized(points: np.ndarray, window: tuple[float, float, float, float]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points' x and y as levels of the window (at most ``MARGIN`` beyond its edges), and
    where a point is not finite or lies further out."""
    x0, x1, y0, y1 = window
    finite = np.isfinite(points).all(axis=2)
    # far-off points are clipped before quantizing (no integer overflow); they end their path anyway
    points = np.clip(np.nan_to_num(points), [x0 - (x1 - x0), y0 - (y1 - y0)], [x1 + (x1 - x0), y1 + (y1 - y0)])
    qx, qy = _quantize(points[..., 0], x0, x1), _quantize(points[..., 1], y0, y1)
    outside = ~finite | (qx < -MARGIN) | (qx > LEVELS + MARGIN) | (qy < -MARGIN) | (qy > LEVELS + MARGIN)
    return np.clip(qx, -MARGIN, LEVELS + MARGIN), np.clip(qy, -MARGIN, LEVELS + MARGIN), outside


def _ends(results: list, outside: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Each path's length and end (0: ran every step; k > 0: diverged at step k; −k: left the plot at step k)."""
    diverged = np.array([r["diverged_at"] if r["status"] == "diverged" else 0 for r in results], dtype=np.int64)
    # a diverged path's last point is the one whose loss was judged; a path also ends where it left
    lengths = np.where(diverged > 0, diverged, steps + 1)
    index = np.arange(steps + 1)[:, None]
    left = outside & (index < lengths)
    first_left = left.argmax(axis=0)  # > 0: every start lies in its window
    ends = np.where(diverged > 0, diverged, np.where(left.any(axis=0), -first_left, 0))
    lengths = np.where(left.any(axis=0), first_left + 1, lengths)
    return lengths, ends


def _second_differences(column: np.ndarray) -> np.ndarray:
    """Each path's first value, its first step, then the change of its step (``(steps + 1, K)``):
    a smooth path, as momentum makes them, changes its step little, and small numbers deflate well."""
    out = np.empty_like(column)
    out[0] = column[0]
    first = np.diff(column, axis=0)
    out[1:2] = first[:1]
    out[2:] = np.diff(first, axis=0)
    return out


def background(view: View) -> tuple[bytes, list[int], list[int]]:
    """The view's contour picture (PNG), its size and the plot area (left, top, width, height) in pixels."""
    fig, (ax,) = style.figure(6.4, 5.0)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.97)
    start = SURFACES[view.surface].starts[view.start]
    trajectories.contours(ax, view.surface, view.window, start)
    fig.canvas.draw()
    extent = ax.get_window_extent()
    width, height = (round(inches * style.DPI) for inches in fig.get_size_inches())
    axes = [round(extent.x0), round(height - extent.y1), round(extent.width), round(extent.height)]
    return style.png(fig), [width, height], axes


def python_call(optimizer: str) -> str:
    """The page's "reproduce this path" text for ``optimizer``: Python with ``{lr}`` and ``{second}``
    to fill, and ``{problem}``, ``{options}``, ``{batch}``, ``{steps}`` of the variant."""
    cls, fixed = OPTIMIZERS[optimizer]
    second, _, _ = second_hyperparameter(optimizer)
    arguments = [f"{k}={v!r}" for k, v in fixed.items() if k not in ("momentum", "betas")]
    if second == "beta1":
        arguments.append(f"betas=({{second}}, {_beta2(optimizer)!r})")
    elif second == "momentum":
        arguments.append("momentum={second}")
    call = f"optim.{cls.__name__}(model.parameters(), lr={{lr}}" + "".join(", " + a for a in arguments) + ")"
    return ("from descentlab import optim, problems\n"
            "problem = problems.get({problem}, **{options})\n"
            "model = problem.model(seed=0)\n"
            f"optimizer = {call}\n"
            "batches = problem.batches('train', {batch}, seed=0)\n"
            "path = [model.xy.tolist()]\n"
            "for step in range({steps}):  # the lab stops a run whose loss exceeds 10x the first\n"
            "    loss = problem.loss(model, next(batches))\n"
            "    optimizer.zero_grad(); loss.backward(); optimizer.step()\n"
            "    path.append(model.xy.tolist())")


@dataclass
class Group:
    """Page variants that share their sliders: one view with and without noise. Without given
    ``sliders``, each optimizer's lr range is probed on the first setting (:func:`useful_range`),
    so that toggling the noise keeps every slider's value."""

    settings: list[Setting]
    optimizers: list[str]
    sliders: list[Slider] | None = None


def _compute_group(group: Group) -> tuple[list[dict], dict]:
    """The group's page variants, computed, and its view's picture: runs in a worker process."""
    with _one_thread():
        sliders = group.sliders
        if sliders is None:
            ranges = useful_range(group.settings[0], group.optimizers)
            sliders = [slider(name, *ranges[name][:2], initial_lr=ranges[name][2]) for name in group.optimizers]
        described = [{"name": s.optimizer, "lrs": [repr(lr) for lr in s.lrs], "second": s.second,
                      "values": list(s.values), "initial": list(s.initial)} for s in sliders]
        variants = [{"view": setting.view.key, "noise": setting.options.get("noise", 0.0), "steps": setting.steps,
                     "problem": setting.view.surface, "options": setting.options, "batch": setting.batch_size,
                     "optimizers": described, **compute(setting, sliders)} for setting in group.settings]
        view = group.settings[0].view
        png, size, axes = background(view)
    return variants, {view.key: {"title": view.title, "png": base64.b64encode(png).decode("ascii"), "size": size,
                                 "axes": axes, "window": list(view.window)}}


@contextlib.contextmanager
def _one_thread():
    """torch on one thread: a population steps many tiny tensors, where torch's other threads only
    wait, and cost CPU time doing so (the default page took twice the CPU time on two threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build(groups: list[Group], workers: int = 1) -> dict:
    """Every variant's page data, plus each view's background; ``workers`` processes compute them."""
    if workers > 1:
        with ProcessPoolExecutor(min(workers, len(groups))) as pool:
            done = list(pool.map(_compute_group, groups))
    else:
        done = [_compute_group(group) for group in groups]
    computed = [variant for variants, _ in done for variant in variants]
    pictures = {key: picture for _, view in done for key, picture in view.items()}
    names = sorted({o["name"] for v in computed for o in v["optimizers"]}, key=list(OPTIMIZERS).index)
    return {"levels": LEVELS, "loss": [LOSS_SCALE, LOSS_FLOOR], "views": pictures, "variants": computed,
            "colours": {name: to_hex(style.colour(name)) for name in names},  # CSS needs hex, not RGBA tuples
            "calls": {name: python_call(name) for name in names},
            "shown": [name for name in names if name in SHOWN] or names[:4]}


def default_groups(steps: int = 200, noise: bool = True, optimizers: list[str] | None = None) -> list[Group]:
    """The default set: every view, noise-free and (``noise``) with gradient noise, every lab
    optimizer the population runner can run."""
    optimizers = optimizers or [name for name in OPTIMIZERS if playable(name)]
    return [Group([Setting(view, {"start": view.start, "noise": level, "jitter": 0.0}, steps, 1 if level else None)
                   for level in ((0.0, NOISE) if noise else (0.0,))], optimizers) for view in VIEWS]


def page(data: dict, title: str = "descentlab playground") -> str:
    """The whole page, self-contained: the template with the data, styles and script inlined."""
    template = resources.files("descentlab.report").joinpath("playground.html").read_text(encoding="utf-8")
    return template.replace("{{title}}", title).replace("{{section}}", section(data))


def section(data: dict) -> str:
    """The playground as a block of HTML (its styles, markup, data and script), for a page or the report."""
    parts = resources.files("descentlab.report")
    markup = parts.joinpath("playground.part.html").read_text(encoding="utf-8")
    script = parts.joinpath("playground.js").read_text(encoding="utf-8")
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (f'<div class="playground">{markup}<script type="application/json" class="playground-data">{blob}'
            f"</script><script>{script}</script></div>")


def command(args, parser) -> int:
    """``descentlab playground``: check the arguments, write the page, say where and how big."""
    names = [n for n in (args.optimizers or "").split(",") if n] or None
    if names:
        try:
            check_names("optimizer", names, [n for n in OPTIMIZERS if playable(n)])
        except ValueError as error:
            parser.error(f"--optimizers: {error}")
    started = time.perf_counter()
    path = write(args.out, args.steps, not args.no_noise, names, args.workers)
    size = os.path.getsize(path)
    print(f"wrote {path} ({size / 2**20:.1f} MiB) in {time.perf_counter() - started:.1f} s")
    return 0


def write(out: str, steps: int = 200, noise: bool = True, optimizers: list[str] | None = None,
          workers: int = 1) -> str:
    """Write ``out/playground.html`` with the default set; return its path."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "playground.html")
    text = page(build(default_groups(steps, noise, optimizers), workers))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def study_section(frames) -> str | None:
    """The report's playground section (HTML) for a study with surfaces, or None without any."""
    groups = study_groups(frames)
    if not groups:
        return None
    return ('<h2 id="playground">Playground</h2><p>Each optimizer\'s path on the study\'s surfaces at every lr '
            f"of a {LR_POINTS}-point log grid over the range the study tried (starting at the lr it chose) and, "
            "where it has one, at several momentum (β1) values: recomputed for this page by the lab's population "
            "runner from the study's stored trial specs (seed 0), not read from the store, which keeps only "
            "the tried settings' curves.</p>" + section(build(groups)))


def study_groups(frames) -> list[Group]:
    """The playground of a stored study: each of its surfaces as the study ran it (options, steps,
    batch, divergence factor, seed 0), each of its optimizers with a slider over the lrs the study
    tried there (LR_POINTS at least, log-spaced), starting at the lr it chose."""
    groups = []
    for label, table in frames.problems.items():
        group = _study_group(frames, label, table)
        if group is not None:
            groups.append(group)
    return groups


def _study_group(frames, label: str, table) -> Group | None:
    """One problem's group: a surface the study has chosen lrs on, with a slider for each of its
    optimizers the population runner can run; None for any other problem."""
    trials = [t for t in frames.trials if t["label"] == label and t["seed"] == 0]
    # as the report's other figures: none before the study has chosen the surface's lrs
    if table["problem"] not in SURFACES or not frames.chosen.get(label) or not trials:
        return None
    setting = _study_setting(label, table["problem"], trials[0])
    sliders = [s for s in (_study_slider(frames, label, trials, optimizer)
                           for optimizer in frames.study["spec"]["optimizers"]) if s is not None]
    if not sliders:
        return None
    return Group([setting], [s.optimizer for s in sliders], sliders)


def _study_setting(label: str, surface: str, first) -> Setting:
    """The surface as the study ran it (its ``first`` seed-0 trial's options, steps, batch and
    divergence factor), in the playground's window for its start or one fitted to it."""
    start = first["problem_options"].get("start", 0)
    window = next((v.window for v in VIEWS if v.surface == surface and v.start == start),
                  None) or trajectories.window(surface, [], SURFACES[surface].starts[start])
    view = View(label, label, surface, start, window)
    return Setting(view, first["problem_options"], first["steps"], first["batch_size"], first["divergence_factor"])


def _study_slider(frames, label: str, trials: list, optimizer: str) -> Slider | None:
    """The optimizer's slider over the lrs the study tried (widened by a decade each way where they
    span one decade or less), starting at the lr it chose; None if it did not run there or cannot
    run as a population."""
    lrs = [t["hyperparameters"]["lr"] for t in trials if t["optimizer"] == optimizer]
    if not lrs or not playable(optimizer):  # a clipped optimizer cannot run as a population
        return None
    low, high = min(lrs), max(lrs)
    if high <= low * 10:
        low, high = low / 10, high * 10
    chosen = frames.chosen.get(label, {}).get(optimizer)
    return slider(optimizer, low, high, LR_POINTS, chosen["hyperparameters"]["lr"] if chosen else None)
