"""Check a port: the same network in Keras and in PyTorch, the same batches, three training runs.

:func:`check` copies the Keras model's weights into the torch model (:mod:`.layers`), compares the
forward pass layer by layer, then trains a copy of each for ``steps`` steps on the same batches:
Keras with its compiled optimizer, PyTorch with :func:`~descentlab.port.from_keras` of it, and
PyTorch with the ``torch.optim`` class of the same name at its defaults and Keras's learning rate
(the port a user writes by hand). The result holds every step's losses and parameter differences;
:mod:`.figure` draws them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from descentlab.port import layers
from descentlab.port.flavors import TORCH_NAMES
from descentlab.port.optimizers import KERAS, arguments, from_keras, keras_config
from descentlab.port.schedules import KerasSchedule

# A relative difference above this is more than float32 rounding accumulated over a forward pass
FLOAT32_ROUNDING = 1e-4


@dataclass
class PortCheck:
    """What :func:`check` measured (``losses`` and ``differences`` by run, one value per step)."""

    optimizer: str
    forward: list[tuple[str, str, float]]  # (Keras layer, torch module, relative output difference)
    notes: list[str] = field(default_factory=list)  # what the check changed in its copies, and why
    known: list[str] = field(default_factory=list)  # what makes the models differ besides the optimizer
    losses: dict[str, list[float]] = field(default_factory=dict)  # keras, descentlab, by hand
    differences: dict[str, list[float]] = field(default_factory=dict)  # descentlab, by hand: vs Keras's weights

    @property
    def forward_mismatch(self) -> tuple[str, str, float] | None:
        return next((row for row in self.forward if row[2] > FLOAT32_ROUNDING), None)

    def first_departure(self, run: str = "descentlab") -> int | None:
        """The first step after which ``run``'s weights differ from Keras's beyond float32 rounding."""
        return next((k + 1 for k, d in enumerate(self.differences[run]) if d > FLOAT32_ROUNDING), None)

    def cause(self) -> str:
        """The likeliest reason the descentlab port departs from Keras (or that it does not)."""
        mismatch = self.forward_mismatch
        if mismatch:
            named = [text for text in self.known if repr(mismatch[0]) in text or repr(mismatch[1]) in text]
            return (f"the forward pass differs first at the Keras layer {mismatch[0]!r} (torch {mismatch[1]!r}): "
                    + ("; ".join(named) if named else
                       "a layer option (activation, epsilon, padding, use_bias) or the input layout differs"))
        first = self.losses["keras"][0]
        if abs(self.losses["descentlab"][0] - first) > FLOAT32_ROUNDING * abs(first):
            named = [text for text in self.known if "random numbers" in text or "regularizer" in text]
            return "the first losses differ with equal weights: " + (
                "; ".join(named) if named else "the loss functions differ (reduction, from_logits)")
        step = self.first_departure()
        if step is None:
            return "none: the descentlab port stays within float32 rounding of Keras at every step"
        if step == 1:
            return "the first update differs: " + ("; ".join(self.known) if self.known else (
                "an option the model sets outside the optimizer (a regularizer, a constraint, dropout or batch "
                "statistics)"))
        return (f"rounding differences grow until step {step}: the training is sensitive to float32 "
                "rounding here (compare in float64 to tell rounding from a formula)")

    def summary(self) -> str:
        lines = [f"port check: {self.optimizer}, {len(self.losses['keras'])} steps"]
        worst = max((row[2] for row in self.forward), default=0.0)
        lines.append(f"  forward pass at initialization: {len(self.forward)} layers, largest relative difference "
                     f"{worst:.2e}")
        for run in ("descentlab", "by hand"):
            loss = max(abs(a - b) for a, b in zip(self.losses[run], self.losses["keras"], strict=True))
            lines.append(f"  {run:10}: largest loss difference {loss:.3e}, largest parameter difference "
                         f"{max(self.differences[run]):.3e} (relative), leaves float32 rounding at step "
                         f"{self.first_departure(run) or 'never'}")
        cause = self.cause()
        lines.append(f"  cause: {cause}")
        lines += [f"  differs: {text}" for text in self.known if text not in cause]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _batches(data, batch_size: int, steps: int):
    inputs, targets = (np.asarray(a) for a in data)
    n = len(inputs)
    for step in range(steps):
        rows = np.arange(step * batch_size, (step + 1) * batch_size) % n
        yield inputs[rows], targets[rows]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a − b|`` over the larger of the two magnitudes (a tensor that stays 0 on one side reads as 1)."""
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-30))


def _layer_relative(ours: list[np.ndarray], theirs: list[np.ndarray]) -> float:
    """A layer's largest difference over its largest magnitude: float32 rounding is relative to the values a
    layer computes with, so a bias that only rounding moves off 0 (a Dense before a BatchNormalization) is not
    measured against itself."""
    scale = max(max(np.abs(a).max(), np.abs(b).max()) for a, b in zip(ours, theirs, strict=True))
    return float(max(np.abs(a - b).max() for a, b in zip(ours, theirs, strict=True)) / max(scale, 1e-30))


def _trained_keys(matched) -> list[list[str]]:
    """Each matched torch module's parameters that a Keras weight sets (buffers such as moving averages are
    not trained: :func:`.layers.known_differences` names how they differ)."""
    keys = []
    for layer, _, module in matched:
        parameters = dict(module.named_parameters(recurse=False))
        keys.append([key for key in layers.converted(layer, module) if key in parameters])
    return keys


def _keras_as_torch(matched, keys) -> list[list[np.ndarray]]:
    """Every matched Keras layer's current weights in its torch module's layout, ``keys`` of each."""
    out = []
    for (layer, _, module), wanted in zip(matched, keys, strict=True):
        values = layers.converted(layer, module)
        out.append([values[key] for key in wanted])
    return out


def _torch_values(modules, keys) -> list[list[np.ndarray]]:
    return [[getattr(module, key).detach().cpu().numpy() for key in wanted]
            for module, wanted in zip(modules, keys, strict=True)]


def _channels_last(output: torch.Tensor, module: nn.Module) -> torch.Tensor:
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.BatchNorm2d)) and output.ndim >= 3:
        return output.movedim(1, -1)
    return output


def forward_differences(keras_model, torch_model: nn.Module, inputs: np.ndarray, matched) -> list:
    """Each matched layer's output, Keras against torch, as a relative difference (activations applied)."""
    theirs = _keras_outputs(keras_model, inputs, matched)
    captured, failure = _torch_outputs(torch_model, inputs, matched)
    rows = []
    for (layer, name, module), expected in zip(matched, theirs, strict=True):
        if name not in captured:
            raise ValueError(f"the torch model fails before its module {name!r} (the Keras layer {layer.name!r}) "
                             f"though every earlier layer's output agrees: {failure}")
        ours = _as_keras_output(captured[name], expected, layer, name, module)
        rows.append((layer.name, name, _relative(ours.detach().cpu().numpy(), expected)))
    if failure is not None:
        raise ValueError(f"the torch model fails after its last module with parameters: {failure}")
    return rows


def _keras_outputs(keras_model, inputs: np.ndarray, matched) -> list[np.ndarray]:
    """Each matched Keras layer's output on ``inputs``."""
    import keras

    entry = keras_model.inputs[0] if len(keras_model.inputs) == 1 else keras_model.inputs
    probe = keras.Model(entry, [layer.output for layer, _, _ in matched])
    theirs = probe.predict_on_batch(inputs)
    return [keras.ops.convert_to_numpy(t) for t in (theirs if isinstance(theirs, (list, tuple)) else [theirs])]


def _torch_outputs(torch_model: nn.Module, inputs: np.ndarray, matched) -> tuple[dict, RuntimeError | None]:
    """Each matched torch module's output in one forward pass in eval mode, by module name, and the error
    that stopped the pass (None when it ran to the end)."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o))
             for _, name, module in matched]
    torch_model.eval()
    failure = None
    try:
        with torch.no_grad():
            torch_model(torch.as_tensor(inputs))
    except RuntimeError as error:  # a layer's output of the wrong shape reaching the next: named by the caller
        failure = error
    finally:
        for hook in hooks:
            hook.remove()
    return captured, failure


def _as_keras_output(ours, expected: np.ndarray, layer, name: str, module: nn.Module) -> torch.Tensor:
    """A torch module's output as its Keras layer gives it: the sequence of a recurrent module (its last step
    unless the layer returns sequences), channels last, the layer's activation applied; a shape that differs
    is refused with the option that makes it differ."""
    if isinstance(ours, tuple):  # a recurrent module: (sequence, state)
        ours = ours[0]
        if expected.ndim == 2:  # Keras returns the last step unless return_sequences
            ours = ours[:, -1]
    ours = _channels_last(ours, module)
    if tuple(ours.shape) != expected.shape:
        raise ValueError(f"the Keras layer {layer.name!r} gives outputs of shape {expected.shape}, the torch "
                         f"module {name!r} {tuple(ours.shape)}: " + "; ".join(
                             layers.option_differences(layer, name, module)
                             or ["the two layers differ in an option (padding, strides) or the input layout"]))
    activation = getattr(layer, "activation", None)
    if activation is not None and not isinstance(module, (nn.LSTM, nn.GRU, nn.RNN)):
        ours = activation(ours)
    return ours


def _one_bias(matched) -> list[str]:
    """Freeze ``bias_hh_l0`` at 0 where the Keras layer has one bias: trained beside ``bias_ih_l0``, torch's
    two biases would move their sum twice as far as Keras's one bias moves."""
    notes = []
    for layer, name, module in matched:
        if isinstance(module, (nn.LSTM, nn.GRU, nn.RNN)) and np.ndim(layer.get_weights()[-1]) == 1:
            module.bias_hh_l0.requires_grad_(False)
            notes.append(f"the torch module {name!r} keeps bias_hh_l0 at 0 (requires_grad=False), as Keras's "
                         f"{type(layer).__name__} has one bias: do the same in your port, or it trains that bias "
                         "twice as fast")
    return notes


def _hand_written(class_name: str, config: dict, params):
    """The ``torch.optim`` class of the same name at its defaults, with Keras's (initial) learning rate."""
    torch_name = TORCH_NAMES.get(KERAS[class_name].cls.__name__, KERAS[class_name].cls.__name__)
    if not hasattr(torch.optim, torch_name):
        return None
    return getattr(torch.optim, torch_name)(params, lr=arguments(class_name, config)[1]["lr"])


@dataclass
class _Run:
    """One torch run of the check: its model, optimizer (and Keras schedule), and the modules matched to
    Keras's layers, in the order of the matched pairs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: KerasSchedule | None
    modules: list[nn.Module]

    def step(self, loss_fn, inputs: np.ndarray, targets: np.ndarray) -> float:
        """One training step on a batch; its loss."""
        self.model.train()
        self.optimizer.zero_grad()
        loss = loss_fn(self.model(torch.as_tensor(inputs)), torch.as_tensor(targets))
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item()

    def difference(self, keys, expected: list[list[np.ndarray]]) -> float:
        """The largest relative difference of a matched layer's trained weights from Keras's ``expected``."""
        ours = _torch_values(self.modules, keys)
        return max(_layer_relative(a, b) for a, b in zip(ours, expected, strict=True))


def check(keras_model, torch_model: nn.Module, data, loss_fn, *, steps: int = 100, batch_size: int = 32,
          optimizer=None) -> PortCheck:
    """Copy, compare and train (see the module docstring); ``data`` is ``(inputs, targets)`` in Keras's layout.

    ``keras_model`` must be compiled (its optimizer and loss are the recipe, unless ``optimizer`` is
    given); ``loss_fn(outputs, targets)`` is the torch loss of the port. Neither model is changed:
    the runs train copies, the torch one with the Keras weights.
    """
    recipe = _recipe(keras_model, optimizer, steps, batch_size)
    class_name, config = keras_config(recipe)
    torch_model, result = _compare_forward(keras_model, torch_model, data, batch_size, class_name)
    trained = _keras_copy(keras_model, recipe)
    trained_pairs = layers.pairs(trained, torch_model)
    runs = _torch_runs(torch_model, recipe, class_name, config, trained_pairs)
    _train(result, trained, trained_pairs, runs, loss_fn, _batches(data, batch_size, steps))
    return result


def _recipe(keras_model, optimizer, steps: int, batch_size: int):
    """The Keras optimizer to port (``optimizer``, or the one ``keras_model`` was compiled with), once the
    arguments are checked."""
    if steps < 1:
        raise ValueError(f"`steps` must be >= 1. Received: steps={steps}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    recipe = optimizer or getattr(keras_model, "optimizer", None)
    if recipe is None or getattr(keras_model, "loss", None) is None:
        raise ValueError("`keras_model` must be compiled with its optimizer and loss (model.compile(...))")
    return recipe


def _compare_forward(keras_model, torch_model: nn.Module, data, batch_size: int,
                     class_name: str) -> tuple[nn.Module, PortCheck]:
    """A copy of ``torch_model`` holding the Keras weights, and the check's record of the two models'
    forward passes on the first batch, with what the copy changed and what differs besides the optimizer."""
    torch_model = copy.deepcopy(torch_model)
    matched = layers.copy_weights(keras_model, torch_model)
    notes = _one_bias(matched)
    first_inputs = next(_batches(data, batch_size, 1))[0]
    forward = forward_differences(keras_model, torch_model, first_inputs, matched)
    return torch_model, PortCheck(class_name, forward, notes,
                                  layers.known_differences(keras_model, torch_model, matched))


def _keras_copy(keras_model, recipe):
    """A copy of ``keras_model`` with its weights, compiled with its loss and a fresh optimizer of the recipe."""
    import keras

    trained = keras.models.clone_model(keras_model)
    trained.set_weights(keras_model.get_weights())
    trained.compile(optimizer=type(recipe).from_config(recipe.get_config()), loss=keras_model.loss)
    return trained


def _torch_runs(torch_model: nn.Module, recipe, class_name: str, config: dict, trained_pairs) -> dict[str, _Run]:
    """The descentlab port of the recipe and, where torch.optim has the class, the hand-written port, each
    training its own copy of ``torch_model``."""
    ported_model, by_hand_model = copy.deepcopy(torch_model), copy.deepcopy(torch_model)
    for parameter in by_hand_model.parameters():  # a hand-written port trains every parameter torch gives it
        parameter.requires_grad_(True)
    ported = from_keras(recipe, ported_model.parameters())
    ported_optimizer, scheduler = ported if isinstance(ported, tuple) else (ported, None)
    by_hand = _hand_written(class_name, config, by_hand_model.parameters())
    runs = {"descentlab": _Run(ported_model, ported_optimizer, scheduler, _modules(ported_model, trained_pairs))}
    if by_hand is not None:
        runs["by hand"] = _Run(by_hand_model, by_hand, None, _modules(by_hand_model, trained_pairs))
    return runs


def _modules(model: nn.Module, matched) -> list[nn.Module]:
    """``model``'s modules named in the matched pairs, in their order."""
    return [dict(model.named_modules())[name] for _, name, _ in matched]


def _train(result: PortCheck, trained, trained_pairs, runs: dict[str, _Run], loss_fn, batches) -> None:
    """Train Keras's copy and each torch run on the same batches, recording in ``result`` every step's
    losses and each run's distance from Keras's weights."""
    keys = _trained_keys(trained_pairs)
    result.losses = {"keras": [], **{run: [] for run in runs}}
    result.differences = {run: [] for run in runs}
    for inputs, targets in batches:
        result.losses["keras"].append(float(trained.train_on_batch(inputs, targets)))
        expected = _keras_as_torch(trained_pairs, keys)
        for name, run in runs.items():
            result.losses[name].append(run.step(loss_fn, inputs, targets))
            result.differences[name].append(run.difference(keys, expected))
