"""A small demo: every named optimizer (and a few other lattice points) trains one tiny model.

A 2-32-32-2 MLP classifying two interleaved spirals, full batch, the same initialization and data
for every optimizer, the learning rate picked from a 4-point log grid around each optimizer's
own default (its class's ``lr`` default in its flavor) by validation loss. It is a smoke
test and a taste of the lab, not a verdict: one task, one seed.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field

import torch

from descentlab import optim
from descentlab.optim._checks import resolve

LR_MULTIPLIERS = (0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class Contender:
    """An optimizer class with fixed keyword arguments; its lr grid centres on the class's default."""

    name: str
    cls: type
    kwargs: dict = field(default_factory=dict)

    def make(self, params, lr: float):
        return self.cls(params, lr=lr, **self.kwargs)

    @property
    def default_lr(self) -> float:
        default = inspect.signature(self.cls).parameters["lr"].default
        return float(resolve(default, self.kwargs.get("flavor", "torch")))


def contenders() -> list[Contender]:
    """The named optimizers at their defaults, plus lattice points no library names."""
    named = [Contender(name, cls) for name, cls in optim.NAMED.items()]
    variants = [
        Contender("Momentum", optim.SGD, {"momentum": 0.9}),
        Contender("Nesterov", optim.SGD, {"momentum": 0.9, "nesterov": True}),
        Contender("Adam (keras flavor)", optim.Adam, {"flavor": "keras"}),
    ]
    lattice = [
        Contender("Maxaprop", optim.Composed, {"adaptation_rule": "max"}),
        Contender("Nesterov-Adagrad", optim.Composed, {"momentum_rule": "nesterov", "adaptation_rule": "sum"}),
        Contender("RMSprop+EMA", optim.Composed,
                  {"momentum_rule": "ema", "adaptation_rule": "ema", "order": "adaptation_first"}),
    ]
    return named + variants + lattice


def spirals(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=gen)
    radius = torch.rand(n, generator=gen) * 3 + 0.2
    angle = radius * 2.5 + label * math.pi + torch.randn(n, generator=gen) * 0.15
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return points, label


def model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)
    )


def train(contender: Contender, lr: float, steps: int, seed: int, data) -> dict:
    (x_train, y_train), (x_valid, y_valid) = data
    net = model(seed)
    optimizer = contender.make(net.parameters(), lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(net(x_train), y_train)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits = net(x_valid)
        valid_loss = loss_fn(logits, y_valid).item()
        accuracy = (logits.argmax(1) == y_valid).double().mean().item()
    return {
        "lr": lr,
        "train_loss": loss.item(),
        "valid_loss": valid_loss if math.isfinite(valid_loss) else math.inf,
        "accuracy": accuracy,
        "seconds": time.perf_counter() - start,
    }


def run_demo(steps: int = 300, seed: int = 0, out=print) -> list[tuple[str, dict]]:
    torch.set_num_threads(1)
    data = (spirals(512, seed), spirals(512, seed + 1))
    results = []
    for contender in contenders():
        trials = [train(contender, contender.default_lr * m, steps, seed, data) for m in LR_MULTIPLIERS]
        best = min(trials, key=lambda r: r["valid_loss"])
        best["grid_edge"] = best is trials[0] or best is trials[-1]
        results.append((contender.name, best))
    results.sort(key=lambda item: item[1]["valid_loss"])
    out(f"two spirals, MLP 2-32-32-2, full batch, {steps} steps, seed {seed}; lr = best of default x {LR_MULTIPLIERS}")
    out(f"{'rank':>4}  {'optimizer':<20} {'lr':>9} {'train loss':>11} {'valid loss':>11} {'accuracy':>9} {'s/run':>6}")
    for rank, (name, r) in enumerate(results, 1):
        out(
            f"{rank:>4}  {name:<20} {r['lr']:>8.2g}{'*' if r['grid_edge'] else ' '} "
            f"{r['train_loss']:>11.4f} {r['valid_loss']:>11.4f} "
            f"{r['accuracy']:>9.3f} {r['seconds']:>6.2f}"
        )
    out("* best lr at the edge of the grid: the optimum may lie beyond it")
    return results
