"""``descentlab.compare``: the lab's protocol on your own model, data and device, and its verdict.

Your model, loss and data become a problem of the lab; :func:`compare` runs the same study as
``descentlab run`` on it (the lr grid that grows until the best lr is bracketed, seeds,
selection on the validation split, the test split reported with 95% intervals), stores every
trial in SQLite (a re-run resumes), and judges the optimizers by the lab's rule
(:func:`descentlab.lab.verdict.duels`): "X beats Y" only when the 95% interval of their paired
test difference excludes 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn

import torch

from descentlab.lab import runner, verdict
from descentlab.lab.protocol import run_study
from descentlab.lab.records import CompareResult, Summary
from descentlab.lab.spec import OPTIMIZERS, check_optimizers
from descentlab.lab.study import Study
from descentlab.lab.tables import duel_table, format_summary, render
from descentlab.optim._checks import resolve
from descentlab.problems.base import Problem, check_batch_size, check_split, example_batches, first, seeded

DEFAULT_OPTIMIZERS = ("nadam", "rmsprop", "momentum")  # the talk's advice: test these three
RENAMED = {"train_data": "train", "val_data": "valid", "test_data": "test", "budget": "steps"}  # old → new
GOALS = ("min", "max")
EVAL_CHUNK = 1024  # examples per evaluation batch of tensors and Datasets


def _refuse(name: str, value, wanted: str) -> NoReturn:
    raise ValueError(f"`{name}` must be {wanted}. Received: {name}={_short(value)}")


def _short(value) -> str:
    text = repr(value) if not torch.is_tensor(value) else f"tensor of shape {tuple(value.shape)}"
    return text if len(text) <= 80 else text[:77] + "..."


class Split:
    """One split of the user's data, as endless seeded training batches and a finite evaluation pass.

    ``data`` is a ``(inputs, targets)`` pair of tensors, a ``torch.utils.data.Dataset``, or a
    callable ``seed -> iterable of batches`` (a DataLoader factory).
    """

    def __init__(self, argument: str, data) -> None:
        self.argument, self.data = argument, data
        self.size: int | None
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
            if len(data[0]) != len(data[1]) or len(data[0]) == 0:
                _refuse(argument, data, "a pair (inputs, targets) of tensors with the same, non-zero length")
            self.kind, self.size = "tensors", len(data[0])
        elif isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
            if len(data) == 0:
                _refuse(argument, data, "a non-empty Dataset")
            self.kind, self.size = "dataset", len(data)
        elif callable(data):
            self.kind, self.size = "factory", None
        else:
            _refuse(argument, data, "a Dataset with a length, a pair (inputs, targets) of tensors, or a callable "
                                    "seed -> iterable of batches")

    def describe(self) -> str:
        if self.kind == "factory":
            return f"{self.argument}: batches from {getattr(self.data, '__qualname__', type(self.data).__name__)}(seed)"
        return f"{self.argument}: {self.size} examples ({'tensors' if self.kind == 'tensors' else 'Dataset'})"

    def fingerprint(self, digest) -> None:
        """What identifies the data in the trials' keys: tensors by their bytes; a Dataset by its
        type, length and first example; a factory by its name (change ``name`` after changing them)."""
        digest.update(f"{self.argument}:{self.kind}:{self.size}".encode())
        if self.kind == "tensors":
            for tensor in self.data:
                tensor = tensor.detach().cpu().contiguous()
                digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
                digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif self.kind == "dataset":
            digest.update(f"{type(self.data).__qualname__}{_short(self.data[0])}".encode())
        else:
            digest.update(getattr(self.data, "__qualname__", type(self.data).__name__).encode())

    @property
    def length(self) -> int:
        """The number of examples of a pair of tensors or a Dataset (a factory's is unknown)."""
        assert self.size is not None, "a factory's split has no length"
        return self.size

    def train(self, batch_size: int | None, seed: int) -> Iterator:
        """Endless batches, in an order fixed by ``seed`` alone (the same for every optimizer)."""
        if self.kind == "tensors":
            inputs, targets = self.data
            yield from example_batches(self.length, lambda i: (inputs[i], targets[i]), batch_size, seed)
        elif self.kind == "dataset":
            yield from self._dataset_batches(batch_size, seed)
        else:
            yield from self._factory_batches(seed)

    def _dataset_batches(self, batch_size: int | None, seed: int) -> Iterator:
        """A Dataset's batches, reshuffled each epoch by a sampler seeded with ``seed``."""
        size = self.length if batch_size is None else min(batch_size, self.length)
        generator = torch.Generator().manual_seed(seed)
        sampler = None if batch_size is None else torch.utils.data.RandomSampler(self.data, generator=generator)
        loader = torch.utils.data.DataLoader(self.data, batch_size=size, sampler=sampler, drop_last=True)
        while True:
            yield from loader  # the sampler draws a new permutation from its generator each epoch

    def _factory_batches(self, seed: int) -> Iterator:
        """The batches of the factory's iterable for ``seed``, pass after pass."""
        iterable = self.data(seed)
        if not isinstance(iterable, Iterable):
            _refuse(self.argument, self.data, f"a callable returning an iterable of batches (it returned "
                                              f"{type(iterable).__name__})")
        while True:
            empty = True
            for batch in iterable:  # a DataLoader reshuffles from its own seeded generator each pass
                empty = False
                yield batch
            if empty:
                _refuse(self.argument, self.data, "a callable whose iterable yields at least one batch")

    def evaluation(self, limit: int | None) -> Iterator:
        """The split in order, once: its first ``limit`` examples (all when None)."""
        if self.kind == "tensors":
            inputs, targets = self.data
            count = first(limit, self.length)
            for start in range(0, count, EVAL_CHUNK):
                yield inputs[start : min(start + EVAL_CHUNK, count)], targets[start : min(start + EVAL_CHUNK, count)]
        elif self.kind == "dataset":
            subset = (self.data if limit is None
                      else torch.utils.data.Subset(self.data, range(first(limit, self.length))))
            yield from torch.utils.data.DataLoader(subset, batch_size=EVAL_CHUNK)
        else:
            seen = 0
            for batch in self.data(0):
                yield batch
                seen += batch_length(batch)
                if limit is not None and seen >= limit:
                    return


def batch_length(batch) -> int:
    """How many examples a batch holds: the first dimension of its first tensor."""
    if torch.is_tensor(batch):
        return len(batch) if batch.dim() else 1
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else []
    for value in values:
        length = batch_length(value)
        if length:
            return length
    return 0


class UserProblem(Problem):
    """A problem made of user code: ``model_fn()``, ``loss_fn(output, target)`` or ``step_fn(model,
    batch)``, named ``metrics``, and train, valid and optional test splits (see :func:`compare`)."""

    handles_device = True  # evaluate moves its batches to the model's device itself

    def __init__(self, name: str, model_fn: Callable, loss_fn: Callable | None, step_fn: Callable | None,
                 train, valid, test=None, metrics: dict | None = None, select: str = "loss",
                 target_key: str = "labels", batch_size: int | None = 32, steps: int = 200,
                 eval_examples: int | None = 1024) -> None:
        _check_functions(model_fn, loss_fn, step_fn)
        self.splits = {"train": Split("train", train), "valid": Split("valid", valid)}
        self.splits["test"] = Split("test", test) if test is not None else self.splits["valid"]
        self.has_test = test is not None
        self.metrics = _metrics(metrics)
        if select != "loss" and select not in self.metrics:
            _refuse("select", select, f"'loss' or a name in `metrics` ({', '.join(['loss', *self.metrics])})")
        self.name, self.description = name, "your model" if name == "model" else f"your model {name}"
        self.metric, self.metric_goal = select, "min" if select == "loss" else self.metrics[select][1]
        self.model_fn, self.loss_fn, self.step_fn, self.target_key = model_fn, loss_fn, step_fn, target_key
        self.default_batch_size, self.default_steps = check_batch_size(batch_size), steps
        self.curve_limit = eval_examples
        self.options = {"data": _fingerprint(self.splits), "metrics": sorted(self.metrics), "select": select}

    @property
    def provenance(self) -> str:
        splits = [self.splits["train"].describe(), self.splits["valid"].describe()]
        if self.has_test:
            return "your data: " + "; ".join([*splits, self.splits["test"].describe()])
        return "your data: " + "; ".join(splits) + "; no test split: test figures are on validation (optimistic)"

    @property
    def train_examples(self) -> int | None:
        return self.splits["train"].size

    def model(self, seed: int) -> torch.nn.Module:
        with seeded(seed):
            model = self.model_fn()
        if not isinstance(model, torch.nn.Module):
            _refuse("model_fn", self.model_fn, f"a callable returning a torch.nn.Module (it returned "
                                               f"{type(model).__name__})")
        return model

    def batches(self, split, batch_size, seed):
        return self.splits[check_split(split)].train(batch_size, seed)

    def forward(self, model, batch):
        """``(output, target)`` of a batch: ``(inputs, target)`` pairs, or dicts whose
        ``target_key`` entry is the target and whose other entries are the model's keywords."""
        if isinstance(batch, dict):
            if self.target_key not in batch:
                _refuse("target_key", self.target_key, f"a key of the dict batches ({', '.join(map(str, batch))}), "
                                                       "or give step_fn(model, batch)")
            return model(**{k: v for k, v in batch.items() if k != self.target_key}), batch[self.target_key]
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return model(batch[0]), batch[1]
        raise ValueError(f"`loss_fn` needs batches that are (inputs, target) pairs or dicts; this batch is "
                         f"{type(batch).__name__}: give `step_fn(model, batch)` instead. Received: batch of type "
                         f"{type(batch).__name__}")

    def loss(self, model, batch):
        if self.step_fn is not None:
            return self.step_fn(model, batch)
        assert self.loss_fn is not None  # __init__ takes exactly one of loss_fn, step_fn
        return self.loss_fn(*self.forward(model, batch))

    def evaluate(self, model, split, limit=None):
        training = model.training
        model.eval()
        try:
            with torch.no_grad():
                totals, count = self._totals(model, self.splits[check_split(split)].evaluation(limit))
        finally:
            model.train(training)
        return {metric: total / count if count and math.isfinite(total) else math.nan
                for metric, total in totals.items()}

    def _totals(self, model, batches) -> tuple[dict[str, float], int]:
        """The loss and each metric summed over the examples of ``batches`` (each batch's mean times its
        size), and the number of examples."""
        from descentlab.lab.devices import move

        device = str(next(model.parameters(), torch.empty(0)).device)
        totals = dict.fromkeys(["loss", *self.metrics], 0.0)
        count = 0
        for batch in batches:
            batch, size = move(batch, device), batch_length(batch)
            for metric, value in self._values(model, batch).items():
                totals[metric] += float(value) * size
            count += size
        return totals, count

    def _values(self, model, batch) -> dict:
        """The loss and each metric on one batch (their means over its examples)."""
        if self.step_fn is not None:
            values = {"loss": self.step_fn(model, batch)}
            values.update({m: fn(model, batch) for m, (fn, _) in self.metrics.items()})
            return values
        output, target = self.forward(model, batch)
        assert self.loss_fn is not None  # __init__ takes exactly one of loss_fn, step_fn
        values = {"loss": self.loss_fn(output, target)}
        values.update({m: fn(output, target) for m, (fn, _) in self.metrics.items()})
        return values


def _check_functions(model_fn, loss_fn, step_fn) -> None:
    """``model_fn`` and exactly one of ``loss_fn``, ``step_fn`` given, and callable."""
    if not callable(model_fn):
        _refuse("model_fn", model_fn, "a callable that builds the model")
    if (loss_fn is None) == (step_fn is None):
        raise ValueError(f"Give one of `loss_fn(output, target)` or `step_fn(model, batch)`. "
                         f"Received: loss_fn={_short(loss_fn)}, step_fn={_short(step_fn)}")
    for argument, value in (("loss_fn", loss_fn), ("step_fn", step_fn)):
        if value is not None and not callable(value):
            _refuse(argument, value, "callable")


def _metrics(metrics: dict | None) -> dict:
    """``{name: (function, goal)}`` of the user's ``metrics``, each name and entry checked."""
    checked = {}
    for metric, entry in (metrics or {}).items():
        if metric == "loss" or not isinstance(metric, str):
            _refuse("metrics", metrics, "a dict of names other than 'loss' to (function, 'min' or 'max')")
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2 and callable(entry[0]) and entry[1] in GOALS):
            _refuse(f"metrics[{metric!r}]", entry, "a pair (function, 'min' or 'max')")
        checked[metric] = tuple(entry)
    return checked


def _fingerprint(splits: dict[str, Split]) -> str:
    """What identifies the data of the splits (each once: ``test`` may be ``valid``), in the trials' keys."""
    digest = hashlib.sha256()
    for split in {id(s): s for s in splits.values()}.values():
        split.fingerprint(digest)
    return digest.hexdigest()[:16]


def compare(model_fn: Callable, loss_fn: Callable | None = None, train=None, valid=None, test=None, *,
            step_fn: Callable | None = None, metrics: dict | None = None, select: str = "loss",
            target_key: str = "labels", optimizers=DEFAULT_OPTIMIZERS, search_space: dict | None = None,
            steps: int | None = None, epochs: float | None = None, batch_size: int | None = 32,
            eval_every: int | None = None, eval_examples: int | None = 1024, grid: int = 5, span: float = 2.0,
            extend: int = 8, seeds: int = 5, divergence_factor: float = 10.0, device: str = "auto",
            amp: str | None = None, workers: int = 1, executor: str = "local", address: str | None = None,
            db: str | None = None, name: str = "model", report: bool = False, out: str | None = None,
            progress_stream=None, entry: str | None = None, **renamed) -> CompareResult:
    """Race ``optimizers`` on your model by the lab's protocol; return the summary and the verdict.

    Data: ``train``, ``valid`` and optional ``test`` are each a ``torch.utils.data.Dataset``, a
    pair ``(inputs, targets)`` of tensors, or a callable ``seed -> iterable of batches`` (your
    own DataLoader factory; seed it from its argument). descentlab shuffles Datasets and tensors
    with its own seeded sampler, so at a given seed every optimizer sees the same batches in the
    same order. Batches may be tensors, tuples or dicts. Without ``test``, the reported figures
    are on the validation split that also chose the lr: optimistic, and the output says so.

    Model and loss: ``model_fn()`` builds the model (under a fixed seed per run), and the loss is
    ``loss_fn(output, target)`` (for ``(inputs, target)`` or dict batches, the target being
    ``batch[target_key]``) or ``step_fn(model, batch) -> loss`` (any batch; a model that returns
    its own loss). ``metrics={"accuracy": (fn, "max")}`` adds named metrics, each averaged over
    the examples of a split; ``fn`` takes what the loss takes. ``select`` names the metric that
    chooses the lr and the champion (default ``"loss"``, the validation loss).

    Optimizers: lab names (``descentlab list optimizers``), torch.optim classes (``torch.optim.AdamW``)
    or a dict ``{name: class or factory(params, lr=...)}``; ``search_space`` adds values of other
    hyperparameters per optimizer (``{"adamw": {"weight_decay": [0.0, 0.01]}}``).

    Budget: ``steps`` (default 200) or ``epochs`` of ``batch_size`` examples (None: the whole
    split each step), a curve point every ``eval_every`` steps on the first ``eval_examples``
    validation examples, the whole splits at the end. Protocol: a log grid of ``grid`` lrs over
    ``span`` decades around each optimizer's default, grown by up to ``extend`` points while its
    best lr sits at an edge; the best on seed 0 is rerun on ``seeds`` seeds.

    Hardware: ``device`` ``"auto"`` (a GPU where one is visible), ``"cpu"``, ``"cuda"``,
    ``"cuda:N"``; ``amp`` None, ``"bf16"`` or ``"fp16"`` (with a GradScaler). ``workers`` > 1 and
    ``executor="ray"`` need ``entry`` (``"module:function"``, as ``descentlab compare --entry``
    gives) so that other processes can rebuild the model and data.

    Results: the SQLite store ``db`` (default ``descentlab.sqlite`` beside your script); running
    again resumes, and Ctrl-C (:class:`~descentlab.lab.protocol.Interrupted`) keeps every finished
    trial. ``report=True`` writes ``report.html`` into ``out`` (default: the store's folder).

    Returns ``{"summary", "duels", "verdict", "champion", "has_test", "db", "study", "report"}``:
    the lab's summary, the champion's paired comparisons (:func:`descentlab.lab.verdict.duels`),
    one verdict sentence per pair, the champion (best mean validation metric: the selection, not
    a claim that it wins), and the report's path (or None). :func:`format_result` prints it.
    """
    train, valid, test, steps = _data_and_steps(renamed, train, valid, test, steps, epochs)
    named = _contestants(optimizers, workers, executor, entry)
    problem = UserProblem(name, model_fn, loss_fn, step_fn, train, valid, test, metrics, select, target_key,
                          batch_size, steps or 200, eval_examples)
    key = "user:" + name.replace("@", "_")
    problem_options = dict(problem.options, **({"entry": entry, "eval_examples": eval_examples} if entry else {}))
    with _registered(key, problem, named):
        study = Study(problems=[key], optimizers=list(named), grid=grid, span=span, seeds=seeds, steps=steps,
                      epochs=epochs, batch_size=batch_size, eval_every=eval_every,
                      divergence_factor=divergence_factor, extend=extend, search_space=search_space or {},
                      problem_options={key: problem_options}, name=f"compare {name}", device=device, amp=amp)
        _probe(problem, study.device, amp, batch_size)
        db = db or default_db()
        summary = run_study(study, db=db, workers=workers, executor=executor, address=address,
                            progress_stream=progress_stream, population=False,
                            command=["descentlab", *sys.argv[1:]] if entry else None)
    written = _write_report(db, summary["study"]["id"], out) if report else None
    return _result(key, summary, problem.has_test, db, written)


def _data_and_steps(renamed: dict, train, valid, test, steps: int | None, epochs: float | None) -> tuple:
    """``train``, ``valid``, ``test`` and ``steps`` read under their old names too, the two required splits
    given, and 200 steps when neither ``steps`` nor ``epochs`` is."""
    options = _renamed(renamed, {"train": train, "valid": valid, "test": test, "steps": steps})
    for argument in ("train", "valid"):
        if options[argument] is None:
            raise ValueError(f"`{argument}` is required: a Dataset, (inputs, targets) tensors or a callable "
                             f"seed -> batches. Received: {argument}=None")
    if epochs is None and options["steps"] is None:
        options["steps"] = 200
    return options["train"], options["valid"], options["test"], options["steps"]


@contextlib.contextmanager
def _registered(key: str, problem: UserProblem, named: dict) -> Iterator[None]:
    """The user's problem and optimizers, known to the lab's runner and optimizer table while the study runs."""
    added: dict[str, tuple[type, dict]] = {n: (cls, {}) for n, cls in named.items() if cls is not None}
    OPTIMIZERS.update(added)
    runner.register(key, problem)
    try:
        yield
    finally:
        runner.unregister(key)
        for n in added:
            OPTIMIZERS.pop(n, None)


def _write_report(db: str, study: int, out: str | None) -> str:
    """The study's HTML report, written into ``out`` (default: the store's folder); its path."""
    from descentlab.report import write_report

    return write_report(db, study, out)


def _contestants(optimizers, workers: int, executor: str, entry: str | None) -> dict:
    """The optimizers by name (:func:`_optimizers`), at least two, and runnable where the trials run."""
    named = _optimizers(optimizers)
    if len(named) < 2:
        _refuse("optimizers", optimizers, "at least two optimizers")
    user_made = [n for n in named if named[n] is not None]
    if (workers != 1 or executor != "local") and (entry is None or user_made):
        why = f"optimizers not in the lab ({', '.join(user_made)})" if user_made else "your model and data"
        raise ValueError(f"`workers` > 1 and executor='ray' run trials in other processes, which cannot rebuild "
                         f"{why}: give `entry` ('module:function') and lab optimizer names. Received: "
                         f"workers={workers!r}, executor={executor!r}, entry={entry!r}")
    return named


def _result(key: str, summary: Summary, has_test: bool, db: str, report: str | None) -> CompareResult:
    """The summary, the champion's duels and their verdict sentences, and where everything is."""
    (table,) = summary["problems"].values()
    duels = verdict.duels(key, table)
    return {"summary": summary, "duels": duels, "verdict": [verdict.sentence(d) for d in duels],
            "champion": duels[0]["ours"] if duels else None,
            "has_test": has_test, "db": db, "study": summary["study"]["id"], "report": report}


def _renamed(renamed: dict, options: dict) -> dict:
    """The old keyword names (``train_data``, ``val_data``, ``budget``) still work; others are refused."""
    for old, value in renamed.items():
        if old not in RENAMED:
            if old == "bootstrap":
                raise TypeError("compare() no longer takes `bootstrap`: the verdict is the lab's rule, a 95% "
                                "interval of the paired test difference. Received: bootstrap=" + repr(value))
            raise TypeError(f"compare() got an unexpected keyword argument {old!r}")
        new = RENAMED[old]
        if options[new] is not None:
            raise TypeError(f"Give `{new}` or its old name `{old}`, not both. Received: {old}=..., {new}=...")
        options[new] = value
    return options


def _optimizers(optimizers) -> dict:
    """``{name: None for a lab name, or the class/factory a user gave}``."""
    named = {}
    for name, made in _named_items(optimizers):
        if made is None:
            check_optimizers([name])
        else:
            _check_user_optimizer(name, made)
        named[name] = made
    return named


def _named_items(optimizers) -> list[tuple[str, Callable | None]]:
    """``(name, None)`` for each lab name and ``(name, class or factory)`` for each optimizer the user gave
    (one given in a list is named by its import path)."""
    if isinstance(optimizers, dict):
        items = list(optimizers.items())
    elif isinstance(optimizers, (str, type)) or callable(optimizers):
        items = None
    else:
        items = [(o, None) if isinstance(o, str) else (f"{o.__module__}.{o.__qualname__}"
                                                        if hasattr(o, "__qualname__") else None, o)
                 for o in optimizers]
    if items is None or any(n is None or not isinstance(n, str) for n, _ in items):
        _refuse("optimizers", optimizers, "a list of lab names or optimizer classes, or a dict {name: class}")
    return items


def _check_user_optimizer(name: str, made) -> None:
    """A user's optimizer: callable, under a name no lab optimizer has, with a numeric default ``lr``."""
    if not callable(made):
        _refuse(f"optimizers[{name!r}]", made, "an optimizer class or factory(params, lr=...)")
    if name in OPTIMIZERS:
        _refuse("optimizers", name, f"a name no lab optimizer has (give {name!r} another name)")
    lr = inspect.signature(made).parameters.get("lr")
    if lr is None or not isinstance(resolve(lr.default, "torch"), (int, float)):
        _refuse(f"optimizers[{name!r}]", made, "a class or factory with a numeric default `lr` (the centre "
                                               "of its lr grid)")


def _probe(problem: UserProblem, device: str, amp: str | None, batch_size) -> None:
    """One forward pass before any trial: a loss that is no scalar tensor is a clear error now,
    not a study of failed trials."""
    from descentlab.lab import devices

    model = problem.model(0).to(device)
    batch = next(iter(problem.batches("train", batch_size, 0)))
    with torch.no_grad(), devices.autocast(device, amp):
        loss = problem.loss(model, devices.move(batch, device))
    argument = "step_fn" if problem.step_fn is not None else "loss_fn"
    if not (torch.is_tensor(loss) and loss.numel() == 1 and loss.is_floating_point()):
        raise ValueError(f"`{argument}` must return a scalar floating-point tensor (the loss). Received: it returned "
                         f"{_short(loss)}")


def default_db() -> str:
    """``descentlab.sqlite`` beside the running script (the current folder in a notebook or shell)."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    folder = os.path.dirname(os.path.abspath(script)) if script else os.getcwd()
    return os.path.join(folder, "descentlab.sqlite")


def format_result(result: CompareResult) -> str:
    """The lab's tables for the study, then the verdict lines."""
    (label, table), = result["summary"]["problems"].items()
    duels = duel_table(label, table)
    lines = [format_summary(result["summary"]), "",
             render([duels]) if duels else "verdict: none yet, the study is incomplete"]
    if not result["has_test"]:
        lines.append("note: no test split was given, so the test figures are on the validation split that also "
                     "chose the lr: they are optimistic. Give `test` for an unbiased verdict.")
    lines.append(f"results: {result['db']} (study {result['study']}); running again resumes")
    if result["report"]:
        lines.append(f"report: {result['report']}")
    return "\n".join(lines)


format_verdict = format_result  # its name before compare printed the lab's tables


def load_function(entry: str, argument: str = "entry") -> Callable:
    """``module:function`` → the function, imported as ``python -m`` would find the module."""
    module_name, _, function_name = entry.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"`{argument}` must be 'module:function'. Received: {argument}={entry!r}")
    module = _import(module_name, entry, argument)
    function = getattr(module, function_name, None)
    if function is None:
        raise ValueError(f"`{argument}` names no function: module {module_name!r} has no {function_name!r}. "
                         f"Received: {argument}={entry!r}")
    return function


def _import(module_name: str, entry: str, argument: str):
    """The entry's module, found as ``python -m`` finds one (the current folder first); a module that is
    missing or does not parse is refused by name."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: a module beside you is found
    try:
        return importlib.import_module(module_name)
    except SyntaxError as error:
        raise ValueError(f"`{argument}`: {error.filename}, line {error.lineno}: {error.msg}. "
                         f"Received: {argument}={entry!r}") from None
    except ModuleNotFoundError as error:
        raise ValueError(f"`{argument}`: no module named {error.name!r} (looked in the current folder and "
                         f"sys.path). Received: {argument}={entry!r}") from None


def load_entry(entry: str) -> dict:
    """``module:function`` → the keyword arguments of :func:`compare` that the function returns
    (old names such as ``train_data`` and ``val_data`` are read as the new ones)."""
    arguments = load_function(entry)()
    arguments = {RENAMED.get(k, k): v for k, v in arguments.items()} if isinstance(arguments, dict) else arguments
    if not isinstance(arguments, dict) or not {"model_fn", "train", "valid"} <= set(arguments):
        raise ValueError(f"`entry` {entry!r} must return a dict with model_fn, train, valid (and loss_fn or step_fn). "
                         f"Received: {type(arguments).__name__}")
    return arguments


PROBLEM_ARGUMENTS = ("model_fn", "loss_fn", "step_fn", "train", "valid", "test", "metrics", "select", "target_key",
                     "batch_size", "steps", "eval_examples")


def entry_problem(name: str, options: dict) -> UserProblem:
    """The problem an entry point describes, rebuilt in a worker process (``workers`` > 1, Ray)."""
    arguments = {k: v for k, v in load_entry(options["entry"]).items() if k in PROBLEM_ARGUMENTS}
    arguments["eval_examples"] = options["eval_examples"]
    arguments.setdefault("loss_fn", None)
    arguments.setdefault("step_fn", None)
    return UserProblem(name.removeprefix("user:"), **arguments)
