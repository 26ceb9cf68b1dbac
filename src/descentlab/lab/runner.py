"""Running trials: one at a time (any problem), or a whole grid at once on a 2-D surface.

Both return the same result record, which :meth:`Store.finish` writes: status (``done``,
``diverged`` or ``failed``), final validation and test metrics on the whole splits, the curve
(step, wall-clock, mean training loss since the previous point, and validation metrics every
``eval_every`` steps on the problem's fixed ``curve_limit`` subset, so that evaluation stays a
small share of a trial), timings, versions and data provenance; see :func:`record`.
"""

from __future__ import annotations

import functools
import json
import math
import platform
import socket
import time
import traceback

import torch

import descentlab
from descentlab import problems
from descentlab.lab import devices
from descentlab.lab.records import CurvePoint, Metrics, Result
from descentlab.optim._checks import CLIP_OPTIONS
from descentlab.optim.paths import reference


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
    scaler = devices.scaler(device, amp)
    batches = problem.batches("train", spec.batch_size, spec.seed)
    curve: list[CurvePoint] = []
    losses: list[float] = []
    limit = None
    diverged_at = None

    def evaluate(split, examples=None):
        with devices.evaluating(model, device, amp, hooks=not problem.handles_device):
            return problem.evaluate(model, split, examples)

    for step in range(1, spec.steps + 1):
        with devices.autocast(device, amp):
            loss = problem.loss(model, devices.move(next(batches), device))
        value = loss.item()
        if limit is None:
            limit = spec.divergence_factor * abs(value) if math.isfinite(value) else -math.inf
        if not math.isfinite(value) or value > limit:
            diverged_at = step
            break
        optimizer.zero_grad(set_to_none=False)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        losses.append(value)
        if step % spec.eval_every == 0 or step == spec.steps:
            curve.append({"step": step, "wall": time.perf_counter() - started, "train_loss": sum(losses) / len(losses),
                          "valid": evaluate("valid", problem.curve_limit)})
            losses = []
    where = {"device": _device_name(device), "amp": amp}
    if diverged_at is not None:
        return record("diverged", time.perf_counter() - started, curve, diverged_at - 1, diverged_at,
                      problem=problem, optimizer=optimizer, where=where)
    valid, test = evaluate("valid"), evaluate("test")
    return record("done", time.perf_counter() - started, curve, spec.steps, valid=valid, test=test,
                  problem=problem, optimizer=optimizer, where=where)


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
        if any(spec.settings.get(k) for k in CLIP_OPTIONS):
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
    if hp.clipnorm or hp.global_clipnorm or hp.clipvalue:
        raise ValueError("population_step cannot clip: clipping would mix the rows. Received a clipping option")
    hp.update(rows)
    reference.step_param(optimizer.chain, p, -grad if hp.maximize else grad, optimizer.state[p], hp)


def _blocks(specs: list, points: torch.Tensor) -> tuple[list[tuple], list]:
    """(optimizer, rows view, per-row values) for each block of rows sharing a configuration, and
    each row's own optimizer (for its record).

    Each distinct setting but the lr is built once as its own optimizer, which checks its values
    and resolves its defaults; the block's first optimizer steps every row of the block."""
    blocks, owners, built, start = [], [], {}, 0
    shape = (1,) * (points.dim() - 1)
    for end in range(1, len(specs) + 1):
        if end < len(specs) and _configuration(specs[end]) == _configuration(specs[start]):
            continue
        rows = points[start:end]
        values: dict[str, list] = {name: [] for name in ROW_HYPERPARAMETERS}
        for spec in specs[start:end]:
            setting = json.dumps([spec.optimizer, {k: v for k, v in spec.hyperparameters.items() if k != "lr"}],
                                 sort_keys=True)
            if setting not in built:
                optimizer = spec.make_optimizer([rows])
                built[setting] = optimizer, optimizer._hyper(optimizer.param_groups[0])
            optimizer, hp = built[setting]
            owners.append(optimizer)  # its record's lr is the row's (see record)
            for name in ROW_HYPERPARAMETERS:
                values[name].append(spec.lr if name == "lr" else hp.get(name))
        # a value shared by the whole block stays the optimizer's own number: the step it takes is
        # then exactly the one it took before rows could differ in it
        rows_hp = {name: torch.tensor(column, dtype=points.dtype).view(-1, *shape)
                   for name, column in values.items() if None not in column and (name == "lr" or len(set(column)) > 1)}
        blocks.append((owners[start], rows, rows_hp))
        start = end
    return blocks, owners


def run_population(specs: list, trace=None) -> list[Result]:
    """Run trials of one :func:`population_groups` group as one (K, 2) tensor, row k = trial k.

    Row k sees exactly what trial k would alone: its seed's start and gradient-noise stream,
    its learning rate, momentum and β1 (:func:`population_step`), its own divergence check. The
    surface and its gradient are evaluated once for all rows; rows whose trials differ only in
    those three values form a block (contiguous: a view), stepped by one optimizer. ``trace(step, points)``, if
    given, sees the (K, 2) points at the start (step 0) and after every step (a view: copy it).
    """
    started = time.perf_counter()
    first = specs[0]
    problem = problem_of(first)
    seeds = sorted({s.seed for s in specs})
    streams = {seed: problem.batches("train", first.batch_size, seed) for seed in seeds}
    row_seed = torch.tensor([seeds.index(s.seed) for s in specs])
    points = torch.stack([problem.model(s.seed).xy.detach() for s in specs])
    blocks, owners = _blocks(specs, points)

    k = len(specs)
    alive = torch.ones(k, dtype=torch.bool)
    diverged_at: list[int | None] = [None] * k
    limit = None
    curves: list[list[CurvePoint]] = [[] for _ in range(k)]
    loss_sums = torch.zeros(k, dtype=points.dtype)
    loss_counts = torch.zeros(k, dtype=points.dtype)
    if trace is not None:
        trace(0, points)
    for step in range(1, first.steps + 1):
        noise = torch.stack([next(streams[seed]) for seed in seeds]).to(points.dtype)[row_seed]
        loss = problem.population_loss(points, noise)
        if limit is None:
            limit = torch.where(torch.isfinite(loss), first.divergence_factor * loss.abs(), -math.inf)
        bad = alive & (~torch.isfinite(loss) | (loss > limit))
        for row in bad.nonzero().flatten().tolist():
            diverged_at[row] = step
        alive &= ~bad
        grad = problem.population_grad(points, noise)
        offset = 0
        for optimizer, rows, rows_hp in blocks:
            population_step(optimizer, rows, grad[offset : offset + rows.shape[0]], rows_hp)
            offset += rows.shape[0]
        if trace is not None:
            trace(step, points)
        loss_sums += torch.where(alive, loss, 0.0)
        loss_counts += alive.to(points.dtype)
        if step % first.eval_every == 0 or step == first.steps:
            wall = (time.perf_counter() - started) / k  # a row's share, as its seconds are
            valid = _rows(problem.population_metrics(points))
            train = (loss_sums / loss_counts).tolist()
            for row in alive.nonzero().flatten().tolist():
                curves[row].append({"step": step, "wall": wall, "train_loss": train[row], "valid": valid[row]})
            loss_sums.zero_()
            loss_counts.zero_()
    seconds = time.perf_counter() - started
    final = _rows(problem.population_metrics(points))
    results = []
    for row in range(k):
        common = {"seconds": seconds / k, "curve": curves[row], "problem": problem, "optimizer": owners[row],
                  "lr": specs[row].lr}
        stopped = diverged_at[row]
        if stopped is not None:
            results.append(record("diverged", steps_done=stopped - 1, diverged_at=stopped, **common))
        else:
            results.append(record("done", steps_done=first.steps, valid=final[row], test=final[row], **common))
    return results


def _rows(columns: dict) -> list[dict]:
    """Per-row metric dicts from metric columns of shape (K,)."""
    columns = {name: values.tolist() for name, values in columns.items()}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
