"""``opt.step()`` inside ``torch.compile``, against the same step uncompiled, for descentlab and torch's Adam.

    python bench/compiled_step.py [--device cuda] [--width 512] [--steps 50]

A training loop on a 4-layer MLP (``width`` wide): ``zero_grad()``, forward and backward eagerly,
then a function that calls ``opt.step()``, eager or wrapped in ``torch.compile`` as torch's
documentation recommends; the two loops alternate step by step. Printed per optimizer: the median
time of one step call, eager and compiled, the first compiled call (dynamo, and inductor for a
traced step), and dynamo's graphs, graph breaks and recompilations over the run. descentlab's
default (fused) step is one graph break and runs its own kernel; its foreach step is traced into
one graph, as torch's foreach Adam is.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch._dynamo.utils import counters

from descentlab import optim

OPTIMIZERS = {
    "torch Adam (foreach)": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
    "torch Adam (fused)": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
    "descentlab Adam (default: fused)": lambda ps: optim.Adam(ps, lr=1e-3),
    "descentlab Adam (foreach)": lambda ps: optim.Adam(ps, lr=1e-3, foreach=True),
}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Loop:
    """One model and optimizer; :meth:`iteration` runs zero_grad, forward, backward and times the step call."""

    def __init__(self, make, compiled: bool, device: torch.device, width: int) -> None:
        torch.manual_seed(0)
        layers = [torch.nn.Linear(width, width) if i % 2 == 0 else torch.nn.Tanh() for i in range(7)]
        self.model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1)).to(device)
        self.x, self.y = torch.randn(64, width, device=device), torch.randn(64, 1, device=device)
        self.opt = make(self.model.parameters())
        self.device = device
        self.step = torch.compile(self._step) if compiled else self._step

    def _step(self) -> None:
        self.opt.step()

    def iteration(self) -> float:
        self.opt.zero_grad()
        torch.nn.functional.mse_loss(self.model(self.x), self.y).backward()
        _synchronize(self.device)
        start = time.perf_counter()
        self.step()
        _synchronize(self.device)
        return time.perf_counter() - start


def measure(make, device: torch.device, width: int, steps: int) -> dict:
    """Eager and compiled steps alternated, so that a busy host slows both alike; medians in ms."""
    torch._dynamo.reset()
    counters.clear()
    eager, compiled = Loop(make, False, device, width), Loop(make, True, device, width)
    first = compiled.iteration()
    first_graphs = counters["stats"]["unique_graphs"]
    eager.iteration()
    times = [(eager.iteration(), compiled.iteration()) for _ in range(steps)]
    return {
        "eager_ms": statistics.median(t for t, _ in times) * 1e3,
        "compiled_ms": statistics.median(t for _, t in times) * 1e3,
        "first_s": first,
        "graphs": counters["stats"]["unique_graphs"],
        "breaks": sum(counters["graph_break"].values()),
        "recompiles": counters["stats"]["unique_graphs"] - first_graphs,  # graphs made after the first call
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    device = torch.device(args.device)
    params = 4 * args.width * (args.width + 1) + args.width + 1
    print(f"{device.type}, torch {torch.__version__}, {params:,} parameters in 8 tensors, {args.steps} steps")
    print(f"{'optimizer':34} {'eager ms':>9} {'compiled ms':>12} {'1st call s':>11} {'graphs':>7} {'breaks':>7} "
          f"{'recompiles':>10}")
    for name, make in OPTIMIZERS.items():
        m = measure(make, device, args.width, args.steps)
        print(f"{name:34} {m['eager_ms']:9.2f} {m['compiled_ms']:12.2f} {m['first_s']:11.2f} "
              f"{m['graphs']:7d} {m['breaks']:7d} {m['recompiles']:10d}")


if __name__ == "__main__":
    main()
