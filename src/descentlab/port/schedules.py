"""Keras 3's learning-rate schedules as a torch LR scheduler that follows them step for step.

Keras evaluates its schedule at the optimizer's iteration count before each update, in float32
(its ``floatx``), with its own order of operations. :class:`KerasSchedule` does the same with the
same torch operations, so the learning rate of every step equals Keras's bit for bit (tested over
hundreds of steps for each schedule, across a ``state_dict`` save and load).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LRScheduler

F32 = torch.float32


def _t(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=F32)


def exponential_decay(step, initial_learning_rate, decay_steps, decay_rate, staircase=False, **_):
    p = _t(step) / _t(decay_steps)
    if staircase:
        p = torch.floor(p)
    return torch.mul(_t(initial_learning_rate), torch.pow(_t(decay_rate), p))


def inverse_time_decay(step, initial_learning_rate, decay_steps, decay_rate, staircase=False, **_):
    p = _t(step) / _t(decay_steps)
    if staircase:
        p = torch.floor(p)
    return torch.div(_t(initial_learning_rate), torch.add(_t(1), torch.mul(_t(decay_rate), p)))


def piecewise_constant_decay(step, boundaries, values, **_):
    step = torch.as_tensor(step)
    bounds = [torch.as_tensor(b).to(step.dtype) for b in boundaries]
    values = [_t(v) for v in values]
    result = torch.zeros((), dtype=F32)
    result = result + (step <= bounds[0]).to(F32) * values[0]
    result = result + (step > bounds[-1]).to(F32) * values[-1]
    for low, high, value in zip(bounds[:-1], bounds[1:], values[1:-1], strict=True):
        result = result + ((step > low) & (step <= high)).to(F32) * value
    return result


def polynomial_decay(step, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                     **_):
    initial, end = _t(initial_learning_rate), _t(end_learning_rate)
    global_step, steps = _t(step), _t(decay_steps)
    if cycle:
        multiplier = torch.where(global_step == 0, _t(1.0), torch.ceil(global_step / decay_steps))
        steps = torch.mul(steps, multiplier)
    else:
        global_step = torch.minimum(global_step, steps)
    p = torch.div(global_step, steps)
    return torch.add(torch.mul(initial - end, torch.pow(1 - p, _t(power))), end)


def _cosine(step, decay_steps, decay_from, alpha):
    fraction = torch.div(step, decay_steps)
    decayed = 0.5 * (1.0 + torch.cos(torch.mul(_t(math.pi), fraction)))
    return torch.mul(decay_from, (1 - alpha) * decayed + alpha)


def cosine_decay(step, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0, **_):
    initial, steps, global_step = _t(initial_learning_rate), _t(decay_steps), _t(step)
    if warmup_target is None:
        return _cosine(torch.minimum(global_step, steps), steps, initial, alpha)
    target, warmup = _t(warmup_target), _t(warmup_steps)
    global_step = torch.minimum(global_step, steps + warmup)
    if global_step < warmup:
        return (target - initial) * (global_step / warmup) + initial
    return _cosine(global_step - warmup, steps, target, alpha)


def cosine_decay_restarts(step, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, **_):
    initial, first = _t(initial_learning_rate), _t(first_decay_steps)
    alpha, t_mul, m_mul = _t(alpha), _t(t_mul), _t(m_mul)
    fraction = _t(step) / first
    if t_mul == 1.0:
        restart = torch.floor(fraction)
        fraction = fraction - restart
    else:
        restart = torch.floor(torch.log((1.0 - fraction * (1.0 - t_mul)).to(F32)) / torch.log(t_mul))
        done = torch.div(1.0 - torch.pow(t_mul, restart), 1.0 - t_mul)
        fraction = torch.div(torch.sub(fraction, done), torch.pow(t_mul, restart))
    decayed = 0.5 * torch.pow(m_mul, restart) * (1.0 + torch.cos(torch.mul(_t(math.pi), fraction)))
    return torch.mul(initial, torch.add(torch.mul(1 - alpha, decayed), alpha))


SCHEDULES: dict[str, Callable[..., float]] = {
    "ExponentialDecay": exponential_decay,
    "InverseTimeDecay": inverse_time_decay,
    "PiecewiseConstantDecay": piecewise_constant_decay,
    "PolynomialDecay": polynomial_decay,
    "CosineDecay": cosine_decay,
    "CosineDecayRestarts": cosine_decay_restarts,
}


def schedule_config(serialized: dict) -> dict:
    """``{"class_name": ..., "config": ...}`` of a Keras schedule, checked to be one descentlab follows."""
    name = serialized.get("class_name")
    if name not in SCHEDULES:
        raise ValueError(f"the learning-rate schedule {name} cannot be ported: descentlab follows "
                         f"{', '.join(SCHEDULES)}; write it as a torch LambdaLR. Received: learning_rate={name}")
    return {"class_name": name, "config": dict(serialized["config"])}


class KerasSchedule(LRScheduler):
    """A Keras 3 learning-rate schedule, as a torch scheduler: ``step()`` it after each ``optimizer.step()``.

    Every param group's lr is the schedule's value at the number of optimizer steps taken so far
    (Keras's ``iterations``), computed as Keras computes it, in float32.

    Args:
        optimizer: the optimizer whose learning rate follows the schedule.
        schedule: a Keras schedule object, or its ``keras.optimizers.schedules.serialize`` dict.
    """

    def __init__(self, optimizer, schedule, last_epoch: int = -1) -> None:
        if not isinstance(schedule, dict):
            schedule = {"class_name": type(schedule).__name__, "config": schedule.get_config()}
        self.schedule = schedule_config(schedule)
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def initial(schedule: dict) -> float:
        """The schedule's learning rate at step 0."""
        return KerasSchedule.value(schedule, 0)

    @staticmethod
    def value(schedule: dict, step: int) -> float:
        return float(SCHEDULES[schedule["class_name"]](step, **schedule["config"]))

    def get_lr(self) -> list[float | torch.Tensor]:
        lr = self.value(self.schedule, self.last_epoch)
        return [lr for _ in self.optimizer.param_groups]
