"""Keras 3 optimizers ⇄ descentlab optimizers with ``flavor="keras"``, option by option.

One table, :data:`KERAS`, says for each Keras optimizer which descentlab class steps as it does and
how each of its ``get_config()`` keys is called there. :func:`from_keras` reads a Keras optimizer
(the object, its config, or the one saved in a ``.keras`` file) through it, and :func:`to_keras`
writes one back. An option descentlab cannot honour is refused by name with what to do instead:
a port that silently drops one trains differently.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from descentlab import optim
from descentlab.port.schedules import KerasSchedule, schedule_config


@dataclass(frozen=True)
class Mapping:
    """A Keras optimizer's descentlab class and its own keys' names there (``beta_1`` → ``betas[0]``)."""

    cls: type
    names: dict[str, str] = field(default_factory=dict)  # Keras key -> descentlab argument


_BETAS = {"beta_1": "betas.0", "beta_2": "betas.1", "epsilon": "eps"}
KERAS = {
    "SGD": Mapping(optim.SGD, {"momentum": "momentum", "nesterov": "nesterov"}),
    "RMSprop": Mapping(optim.RMSprop, {"rho": "alpha", "momentum": "momentum", "epsilon": "eps",
                                       "centered": "centered"}),
    "Adam": Mapping(optim.Adam, {**_BETAS, "amsgrad": "amsgrad"}),
    "AdamW": Mapping(optim.AdamW, {**_BETAS, "amsgrad": "amsgrad"}),
    "Adadelta": Mapping(optim.Adadelta, {"rho": "rho", "epsilon": "eps"}),
    "Adagrad": Mapping(optim.Adagrad, {"initial_accumulator_value": "initial_accumulator_value", "epsilon": "eps"}),
    "Adamax": Mapping(optim.Adamax, _BETAS),
    "Nadam": Mapping(optim.Nadam, _BETAS),
    "Ftrl": Mapping(optim.FTRL, {"learning_rate_power": "lr_power",
                                 "initial_accumulator_value": "initial_accumulator_value",
                                 "l1_regularization_strength": "l1", "l2_regularization_strength": "l2",
                                 "l2_shrinkage_regularization_strength": "l2_shrinkage", "beta": "beta"}),
}
# Keys every Keras optimizer has, and their descentlab names (None: only its default is honoured)
COMMON = {"learning_rate": "lr", "weight_decay": "weight_decay", "clipnorm": "clipnorm",
          "global_clipnorm": "global_clipnorm", "clipvalue": "clipvalue",
          # read by Keras only with use_ema, which is refused
          "name": None, "ema_momentum": None, "ema_overwrite_frequency": None}
# Options descentlab cannot honour at a value other than the default, and what to do instead
REFUSED = {
    "use_ema": (False, "keep an EMA of the weights yourself: torch.optim.swa_utils.AveragedModel("
                       "model, multi_avg_fn=get_ema_multi_avg_fn(ema_momentum)) after each step"),
    "gradient_accumulation_steps": (None, "accumulate in the training loop: call backward() on N batches "
                                          "(each loss divided by N), then step() and zero_grad() once"),
    "loss_scale_factor": (None, "scale the loss with torch.amp.GradScaler, which unscales before the step"),
}
_OTHER_KERAS = {"Lion", "Lamb", "Adafactor", "Muon", "ScheduleFreeAdamW", "LossScaleOptimizer", "MultiOptimizer"}


def keras_config(source) -> tuple[str, dict]:
    """``(class name, config)`` of a Keras optimizer object, a serialized one, a bare config with a
    ``"name"``, or the optimizer saved in a ``.keras`` file."""
    if isinstance(source, (str, os.PathLike)):
        return _from_file(os.fspath(source))
    if isinstance(source, dict):
        if "class_name" in source:
            return source["class_name"], dict(source["config"])
        return _class_of_name(source), dict(source)
    if hasattr(source, "get_config"):
        if getattr(source, "inner_optimizer", None) is not None:
            raise ValueError(f"`optimizer` is a {type(source).__name__}: "
                             "loss scaling is torch.amp.GradScaler's job; pass its inner_optimizer")
        return type(source).__name__, dict(source.get_config())
    raise TypeError(f"`optimizer` must be a Keras optimizer, its config dict or a .keras file. "
                    f"Received: optimizer={source!r}")


def _from_file(path: str) -> tuple[str, dict]:
    if not zipfile.is_zipfile(path):
        raise ValueError(f"`optimizer` must be a .keras file (a zip archive). Received: optimizer={path!r}")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    compiled = config.get("compile_config") or {}
    optimizer = compiled.get("optimizer")
    if not optimizer:
        raise ValueError(f"the model in {path!r} was saved without a compiled optimizer: "
                         "compile it before model.save(), or pass the optimizer itself")
    return keras_config(optimizer)


def _class_of_name(config: dict) -> str:
    """A bare config's class from its ``name`` (``"adam_w"`` → ``AdamW``)."""
    name = re.sub(r"_\d+$", "", str(config.get("name", ""))).replace("_", "").lower()  # "nadam_2" -> nadam
    for cls in (*KERAS, *_OTHER_KERAS):
        if cls.lower() == name:
            return cls
    raise ValueError(f"`optimizer` is a config without a class: pass the optimizer, or "
                     f"keras.optimizers.serialize(optimizer). Received: name={config.get('name')!r}")


def arguments(class_name: str, config: dict) -> tuple[type, dict, dict | None]:
    """The descentlab class, its keyword arguments and the learning-rate schedule's config (or None)."""
    mapping = _portable(class_name, config)
    kwargs: dict = {"flavor": "keras"}
    schedule = None
    for key, value in config.items():
        target = COMMON.get(key, mapping.names.get(key))
        if target is None or (value is None and key != "learning_rate"):
            continue
        if key == "learning_rate" and isinstance(value, dict):
            schedule = schedule_config(value)
            value = KerasSchedule.initial(schedule)
        _set_argument(kwargs, target, value)
    return mapping.cls, kwargs, schedule


def _portable(class_name: str, config: dict) -> Mapping:
    """The Keras optimizer's :class:`Mapping`, once every option of ``config`` is one descentlab honours."""
    if class_name not in KERAS:
        have = ", ".join(KERAS)
        raise ValueError(f"Keras's {class_name} has no descentlab equivalent (descentlab has {have}); "
                         f"train with that optimizer's own PyTorch port, or pick one of these")
    mapping = KERAS[class_name]
    for key, (default, instead) in REFUSED.items():
        if config.get(key, default) not in (default, None):
            raise ValueError(f"`{key}` cannot be ported: {instead}. Received: {key}={config[key]!r}")
    unknown = sorted(set(config) - set(COMMON) - set(REFUSED) - set(mapping.names))
    if unknown:
        raise ValueError(f"Keras's {class_name} option `{unknown[0]}` has no descentlab equivalent. "
                         f"Received: {unknown[0]}={config[unknown[0]]!r}")
    return mapping


def _set_argument(kwargs: dict, target: str, value) -> None:
    """``kwargs[target] = value``, where ``betas.0`` and ``betas.1`` set one element of the ``betas`` pair."""
    if target.startswith("betas."):
        betas = list(kwargs.get("betas", (None, None)))
        betas[int(target[-1])] = value
        kwargs["betas"] = tuple(betas)
    else:
        kwargs[target] = value


def from_keras(optimizer, params):
    """The descentlab optimizer (``flavor="keras"``) that steps exactly as ``optimizer`` does.

    ``optimizer`` is a Keras 3 optimizer, its ``get_config()`` (or ``keras.optimizers.serialize``)
    dict, or the path of a ``.keras`` file whose model was compiled. With a learning-rate schedule,
    returns ``(optimizer, scheduler)``: a :class:`KerasSchedule` to ``step()`` after every
    ``optimizer.step()``, as Keras advances its schedule once per update; otherwise the optimizer
    alone.

    Conventions:
        Keras keeps the learning rate in a float32 variable; ``get_config()`` reports that float32
        value, the one Keras's update uses, and the port takes it. In float64 training, Keras
        rounds a weight-decayed weight to float32 (``SGD(0.5, weight_decay=0.01)`` takes 1.0 to
        0.9950000047683716, float32's 0.995) and clips by norm through a float32 maximum: those two
        match to float32 rounding, the rest exactly.
    """
    class_name, config = keras_config(optimizer)
    cls, kwargs, schedule = arguments(class_name, config)
    ported = cls(params, **kwargs)
    if schedule is None:
        return ported
    return ported, KerasSchedule(ported, schedule)


def to_keras(optimizer, scheduler: KerasSchedule | None = None):
    """The Keras 3 optimizer that steps as the descentlab ``optimizer`` (of the Keras flavor) does.

    With the :class:`KerasSchedule` that drives it (as :func:`from_keras` returns them), its
    learning rate is that Keras schedule. Only the hyperparameters go across: the Keras optimizer
    starts at iteration 0 with empty slots, as a freshly built one does.
    """
    import keras

    class_name = _keras_class(optimizer)
    config = _keras_options(optimizer.param_groups[0], class_name)
    if scheduler is not None:
        if not isinstance(scheduler, KerasSchedule) or scheduler.optimizer is not optimizer:
            raise ValueError("`scheduler` must be the KerasSchedule driving `optimizer`. "
                             f"Received: scheduler={type(scheduler).__name__}")
        config["learning_rate"] = keras.optimizers.schedules.deserialize(scheduler.schedule)
    return getattr(keras.optimizers, class_name).from_config(config)


def _keras_class(optimizer) -> str:
    """The name of the Keras class that steps as ``optimizer`` does, once it is a descentlab optimizer of the
    Keras flavor with no option Keras lacks."""
    if not isinstance(optimizer, optim.ChainOptimizer):
        raise TypeError(f"`optimizer` must be a descentlab optimizer. Received: optimizer={type(optimizer).__name__}")
    group = optimizer.param_groups[0]
    if group["flavor"] != "keras":
        raise ValueError("`optimizer` must have flavor='keras' to have a Keras equivalent: torch's formulas differ "
                         f"(see `descentlab port explain`). Received: flavor={group['flavor']!r}")
    by_class = {mapping.cls: name for name, mapping in KERAS.items()}
    class_name = by_class.get(type(optimizer))
    if class_name is None:
        raise ValueError(f"Keras has no {type(optimizer).__name__}. Received: optimizer={type(optimizer).__name__}")
    for key in ("maximize", "lr_decay", "dampening"):
        if group.get(key):
            raise ValueError(f"Keras has no `{key}`. Received: {key}={group[key]!r}")
    return class_name


def _keras_options(group: dict, class_name: str) -> dict:
    """The Keras config of a param group's hyperparameters (:data:`KERAS`'s names, read backwards)."""
    config = {}
    for key, target in {**COMMON, **KERAS[class_name].names}.items():
        if target is None:
            continue
        value: Any = group["betas"][int(target[-1])] if target.startswith("betas.") else group.get(target)
        config[key] = float(value) if key == "learning_rate" else value
    if not config.get("weight_decay"):
        config["weight_decay"] = None
    return config
