"""Running trials: one at a time (any problem), or a whole grid at once on a 2-D surface.

Both return the same result record, which :meth:`Store.finish` writes: status (``done``,
``diverged`` or ``failed``), final validation and test metrics on the whole splits, the curve
(step, wall-clock, mean training loss since the previous point, and validation metrics every
``eval_every`` steps on the problem's fixed ``curve_limit`` subset, so that evaluation stays a
small share of a trial), timings, versions and data provenance; see :func:`record`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import platform
import socket
import time
import traceback
from collections.abc import Callable, Iterator

import torch

import descentlab
from descentlab import problems
from descentlab.lab import devices
from descentlab.lab.records import CurvePoint, Metrics, Result
from descentlab.optim.paths import reference
from descentlab.rules.clip import clips


@functools.lru_cache(maxsize=16)
def _problem(name: str, options_json: str):
    """Problems are built once per process: datasets are read and tensorized once."""
    return problems.get(name, **json.loads(options_json))


USER_PROBLEMS: dict[str, object] = {}  # problems made of user code, by name (this process only)


def register(name: str, problem) -> None:
    USER_PROBLEMS[name] = problem


def unregister(name: str) -> None:
    USER_PROBLEMS.pop(name, None)


def get_problem(name: str, options: dict):
    """The problem ``name`` with ``options``, built once per process (user problems by name)."""
    if name in USER_PROBLEMS:
        return USER_PROBLEMS[name]
    if "entry" in options:  # a user problem in a worker process: rebuilt from its entry point
        from descentlab.lab.compare import entry_problem

        register(name, entry_problem(name, options))
        return USER_PROBLEMS[name]
    return _problem(name, json.dumps(options, sort_keys=True))


def problem_of(spec):
    return get_problem(spec.problem, spec.problem_options)


def versions() -> dict:
    return {"descentlab": descentlab.__version__, "torch": torch.__version__, "python": platform.python_version()}


def optimizer_config(optimizer, lr=None) -> dict:
    """Every hyperparameter the optimizer ran with (its class, defaults included), for the record."""
    config = {key: list(value) if isinstance(value, tuple) else value for key, value in optimizer.defaults.items()}
    if lr is not None:
        config["lr"] = lr
    return {"class": type(optimizer).__name__, **config}


def record(status: str, seconds: float, curve: list[CurvePoint] | None = None, steps_done: int = 0,
           diverged_at: int | None = None, valid: Metrics | None = None, test: Metrics | None = None, problem=None,
           optimizer=None, lr: float | None = None,
           error: BaseException | None = None, where: dict | None = None) -> Result:
    """A trial's result as :meth:`Store.finish` writes it; every outcome (done, diverged, failed)
    of every runner (one trial, a population, a lost worker) is built here. ``where``: the device
    and precision a trial ran on other than the CPU in float32, kept with its versions."""
    ran_on = {k: v for k, v in (where or {}).items() if v not in (None, "cpu")}
    result: Result = {"status": status, "seconds": seconds, "steps_done": steps_done, "diverged_at": diverged_at,
              "curve": curve or [], "valid": valid, "test": test, "versions": {**versions(), **ran_on},
              "threads": torch.get_num_threads(),
              "host": socket.gethostname(), "provenance": problem.provenance if problem is not None else None,
              "optimizer_config": optimizer_config(optimizer, lr) if optimizer is not None else None}
    if error is not None:
        result["error"] = "".join(traceback.format_exception_only(error)).strip()
    return result


def run_trial(spec) -> Result:
    """Train one trial; never raises (an exception is recorded as a failed trial)."""
    started = time.perf_counter()
    try:
        return _train(spec, started)
    except Exception as error:  # the study goes on; the record says what happened
        return record("failed", time.perf_counter() - started, error=error)


def _train(spec, started: float) -> Result:
    problem = problem_of(spec)
    device, amp = spec.device, spec.amp
    model = problem.model(spec.seed).to(device)
    optimizer = spec.make_optimizer(model.parameters())

    def evaluate(split, examples=None):
        with devices.evaluating(model, device, amp, hooks=not problem.handles_device):
            return problem.evaluate(model, split, examples)

    curve = _Curve(spec.eval_every, spec.steps, started, lambda: evaluate("valid", problem.curve_limit))
    diverged_at = _descend(spec, problem, model, optimizer, curve)
    where = {"device": _device_name(device), "amp": amp}
    if diverged_at is not None:
        return record("diverged", time.perf_counter() - started, curve.points, diverged_at - 1, diverged_at,
                      problem=problem, optimizer=optimizer, where=where)
    valid, test = evaluate("valid"), evaluate("test")
    return record("done", time.perf_counter() - started, curve.points, spec.steps, valid=valid, test=test,
                  problem=problem, optimizer=optimizer, where=where)


@dataclasses.dataclass
class _Curve:
    """A trial's curve as it trains: every ``every`` steps and at the ``last``, a point with the
    mean training loss since the previous point and the validation metrics ``evaluate`` returns."""

    every: int
    last: int
    started: float
    evaluate: Callable[[], Metrics]
    points: list[CurvePoint] = dataclasses.field(default_factory=list)
    losses: list[float] = dataclasses.field(default_factory=list)

    def add(self, step: int, loss: float) -> None:
        """Count the training loss of ``step``; close a point if ``step`` is due one."""
        self.losses.append(loss)
        if step % self.every == 0 or step == self.last:
            self.points.append({"step": step, "wall": time.perf_counter() - self.started,
                                "train_loss": sum(self.losses) / len(self.losses), "valid": self.evaluate()})
            self.losses = []


def _descend(spec, problem, model, optimizer, curve: _Curve) -> int | None:
    """Take the trial's steps, each loss into ``curve``; return the step whose loss diverged (is not
    finite, or exceeds ``divergence_factor`` × the first loss), which is not taken, or None."""
    scaler = devices.scaler(spec.device, spec.amp)
    batches = problem.batches("train", spec.batch_size, spec.seed)
    limit = None
    for step in range(1, spec.steps + 1):
        with devices.autocast(spec.device, spec.amp):
            loss = problem.loss(model, devices.move(next(batches), spec.device))
        value = loss.item()
        if limit is None:
            limit = spec.divergence_factor * abs(value) if math.isfinite(value) else -math.inf
        if not math.isfinite(value) or value > limit:
            return step
        _update(optimizer, scaler, loss)
        curve.add(step, value)
    return None


def _update(optimizer, scaler, loss: torch.Tensor) -> None:
    """Backpropagate ``loss`` and step the optimizer (through the gradient scaler, if any)."""
    optimizer.zero_grad(set_to_none=False)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def _device_name(device: str) -> str:
    """The device as the record names it: the GPU's model beside its index."""
    if device == "cpu":
        return "cpu"
    if torch.device(device).type != "cuda":
        return f"{device} ({torch.device(device).type})"
    return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"


def population_groups(specs) -> list[list]:
    """Trials that one vectorized population can run: the same surface problem and budget (any
    optimizers, learning rates and seeds), no clipping. Each group is sorted so that trials
    sharing an optimizer configuration are contiguous."""
    groups: dict[tuple, list] = {}
    for spec in specs:
        if not problem_of(spec).population:
            continue
        if clips(spec.settings):
            continue
        if spec.device != "cpu" or spec.amp is not None:  # a population steps on the CPU in float32
            continue
        key = (spec.problem, json.dumps(spec.problem_options, sort_keys=True), spec.steps, spec.batch_size,
               spec.eval_every, spec.divergence_factor)
        groups.setdefault(key, []).append(spec)
    return [sorted(group, key=_configuration) for group in groups.values()]


ROW_HYPERPARAMETERS = ("lr", "momentum", "beta1")  # what each row of a population sets for itself


def _configuration(spec) -> tuple:
    """An optimizer configuration: the optimizer and its hyperparameters but those each row of a
    population sets for itself (the learning rate, the momentum, β1 = ``betas[0]``)."""
    fixed = {k: v for k, v in spec.hyperparameters.items() if k not in ("lr", "momentum")}
    if "betas" in fixed:
        fixed["betas"] = fixed["betas"][1]
    return spec.optimizer, json.dumps(fixed, sort_keys=True)


@torch.no_grad()
def population_step(optimizer, p: torch.Tensor, grad: torch.Tensor, rows: dict) -> None:
    """Step ``p``, whose rows are independent runs, each with its own learning rate, momentum or β1.

    ``optimizer`` holds ``p`` as the first parameter of its first group, shaped ``(K, ...)``;
    ``rows`` maps names of :data:`ROW_HYPERPARAMETERS` to tensors that broadcast against ``p``
    (``(K, 1, ...)``) and replace the group's values. Every rule is elementwise, so row ``k``
    follows the trajectory of a single run with row ``k``'s values, up to rounding: a row's value
    is a tensor of ``p``'s dtype where a single run's is a Python float (and ``p ← p − lr·u`` is
    one ``addcmul_`` against torch's ``add_(alpha=…)``). Clipping acts on whole tensors, so it
    cannot be used here.
    """
    group = optimizer.param_groups[0]
    hp = optimizer._hyper(group)
    if clips(hp):
        raise ValueError("population_step cannot clip: clipping would mix the rows. Received a clipping option")
    hp.update(rows)
    reference.step_param(optimizer.chain, p, -grad if hp.maximize else grad, optimizer.state[p], hp)


def _blocks(specs: list, points: torch.Tensor) -> tuple[list[tuple], list]:
    """(optimizer, rows view, per-row values) for each block of rows sharing a configuration, and
    each row's own optimizer (for its record).

    Each distinct setting but the lr is built once as its own optimizer, which checks its values
    and resolves its defaults; the block's first optimizer steps every row of the block."""
    blocks, owners, start = [], [], 0
    built: dict[str, tuple] = {}  # setting -> (optimizer, its resolved hyperparameters)
    shape = (1,) * (points.dim() - 1)
    for end in range(1, len(specs) + 1):
        if end < len(specs) and _configuration(specs[end]) == _configuration(specs[start]):
            continue
        rows = points[start:end]
        mine, values = _block_rows(specs[start:end], rows, built)
        owners += mine
        # a value shared by the whole block stays the optimizer's own number: the step it takes is
        # then exactly the one it took before rows could differ in it
        rows_hp = {name: torch.tensor(column, dtype=points.dtype).view(-1, *shape)
                   for name, column in values.items() if None not in column and (name == "lr" or len(set(column)) > 1)}
        blocks.append((mine[0], rows, rows_hp))
        start = end
    return blocks, owners


def _block_rows(specs: list, rows: torch.Tensor, built: dict) -> tuple[list, dict[str, list]]:
    """Each trial of one block: its optimizer (one per setting but the lr, kept in ``built``), and
    its value of each of :data:`ROW_HYPERPARAMETERS`, by name."""
    owners = []
    values: dict[str, list] = {name: [] for name in ROW_HYPERPARAMETERS}
    for spec in specs:
        setting = json.dumps([spec.optimizer, {k: v for k, v in spec.hyperparameters.items() if k != "lr"}],
                             sort_keys=True)
        if setting not in built:
            optimizer = spec.make_optimizer([rows])
            built[setting] = optimizer, optimizer._hyper(optimizer.param_groups[0])
        optimizer, hp = built[setting]
        owners.append(optimizer)  # its record's lr is the row's (see record)
        for name in ROW_HYPERPARAMETERS:
            values[name].append(spec.lr if name == "lr" else hp.get(name))
    return owners, values


def run_population(specs: list, trace=None) -> list[Result]:
    """Run trials of one :func:`population_groups` group as one (K, 2) tensor, row k = trial k.

    Row k sees exactly what trial k would alone: its seed's start and gradient-noise stream,
    its learning rate, momentum and β1 (:func:`population_step`), its own divergence check. The
    surface and its gradient are evaluated once for all rows; rows whose trials differ only in
    those three values form a block (contiguous: a view), stepped by one optimizer. ``trace(step, points)``, if
    given, sees the (K, 2) points at the start (step 0) and after every step (a view: copy it).
    """
    population = _Population(specs)
    if trace is not None:
        trace(0, population.points)
    for step in range(1, specs[0].steps + 1):
        loss = population.advance(step)
        if trace is not None:
            trace(step, population.points)
        population.observe(step, loss)
    return population.results()


class _Population:
    """A population run: the group's problem (its budget is its first trial's), the (K, 2) points
    and the blocks that step them, and each row's bookkeeping: alive (else the step its loss
    diverged at), its curve, and its training losses since its previous curve point."""

    def __init__(self, specs: list) -> None:
        self.started = time.perf_counter()
        self.specs = specs
        self.problem = problem_of(specs[0])
        self.points = torch.stack([self.problem.model(s.seed).xy.detach() for s in specs])
        self.noise = _noise(self.problem, specs, self.points.dtype)
        self.blocks, self.owners = _blocks(specs, self.points)
        k = len(specs)
        self.alive = torch.ones(k, dtype=torch.bool)
        self.diverged_at: list[int | None] = [None] * k
        self.limit: torch.Tensor | None = None
        self.curves: list[list[CurvePoint]] = [[] for _ in range(k)]
        self.loss_sums = torch.zeros(k, dtype=self.points.dtype)
        self.loss_counts = torch.zeros(k, dtype=self.points.dtype)

    def advance(self, step: int) -> torch.Tensor:
        """Take step ``step`` on every row; return the rows' losses before it."""
        noise = next(self.noise)
        loss = self.problem.population_loss(self.points, noise)
        self._check(step, loss)
        grad = self.problem.population_grad(self.points, noise)
        offset = 0
        for optimizer, rows, rows_hp in self.blocks:
            population_step(optimizer, rows, grad[offset : offset + rows.shape[0]], rows_hp)
            offset += rows.shape[0]
        return loss

    def _check(self, step: int, loss: torch.Tensor) -> None:
        """Mark the live rows whose loss is not finite or exceeds ``divergence_factor`` × their first
        loss as diverged at ``step``."""
        if self.limit is None:
            self.limit = torch.where(torch.isfinite(loss), self.specs[0].divergence_factor * loss.abs(), -math.inf)
        bad = self.alive & (~torch.isfinite(loss) | (loss > self.limit))
        for row in bad.nonzero().flatten().tolist():
            self.diverged_at[row] = step
        self.alive &= ~bad

    def observe(self, step: int, loss: torch.Tensor) -> None:
        """Count the live rows' losses of ``step``; add a point to their curves if ``step`` is due one."""
        self.loss_sums += torch.where(self.alive, loss, 0.0)
        self.loss_counts += self.alive.to(self.points.dtype)
        if step % self.specs[0].eval_every == 0 or step == self.specs[0].steps:
            self._point(step)

    def _point(self, step: int) -> None:
        """Each live row's curve point at ``step``: its mean training loss since the previous one and
        its validation metrics."""
        wall = (time.perf_counter() - self.started) / len(self.specs)  # a row's share, as its seconds are
        valid = _rows(self.problem.population_metrics(self.points))
        train = (self.loss_sums / self.loss_counts).tolist()
        for row in self.alive.nonzero().flatten().tolist():
            self.curves[row].append({"step": step, "wall": wall, "train_loss": train[row], "valid": valid[row]})
        self.loss_sums.zero_()
        self.loss_counts.zero_()

    def results(self) -> list[Result]:
        """Each row's record: diverged at its step, or done with the final metrics of its point."""
        seconds = time.perf_counter() - self.started
        final = _rows(self.problem.population_metrics(self.points))
        return [self._result(row, seconds / len(self.specs), final[row]) for row in range(len(self.specs))]

    def _result(self, row: int, seconds: float, final: Metrics) -> Result:
        common = {"seconds": seconds, "curve": self.curves[row], "problem": self.problem,
                  "optimizer": self.owners[row], "lr": self.specs[row].lr}
        stopped = self.diverged_at[row]
        if stopped is not None:
            return record("diverged", steps_done=stopped - 1, diverged_at=stopped, **common)
        return record("done", steps_done=self.specs[0].steps, valid=final, test=final, **common)


def _noise(problem, specs: list, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    """Each step's gradient noise, one row per trial: one stream per seed, drawn once a step."""
    seeds = sorted({s.seed for s in specs})
    streams = {seed: problem.batches("train", specs[0].batch_size, seed) for seed in seeds}
    row_seed = torch.tensor([seeds.index(s.seed) for s in specs])
    while True:
        yield torch.stack([next(streams[seed]) for seed in seeds]).to(dtype)[row_seed]


def _rows(columns: dict) -> list[dict]:
    """Per-row metric dicts from metric columns of shape (K,)."""
    columns = {name: values.tolist() for name, values in columns.items()}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
