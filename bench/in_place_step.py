"""A step of a group whose storage someone else holds, per path, against the fused step of a sole holder.

    python bench/in_place_step.py [--optimizers sgd,adam,rmsprop] [--cases a,b] [--rounds 15] [--new-grads]

Such a group (here: every parameter has an alias, ``w = p.detach()``, as a ZeRO bucket or
Hogwild's shared memory would) cannot be moved into flat buffers. It is stepped in place by the
pointer-table kernel (the default; :mod:`descentlab.optim.paths.table`), or by the foreach or
reference path (``foreach=True``; ``foreach=False``). The "fused" column is the same step
without the aliases (flat buffers): what the pointer table has to come close to. Case (a):
10M float32 parameters in 100 tensors; case (b): 1M in 1000, as in ``descentlab bench step``.
``--new-grads`` gives every step new gradient tensors, as a ``zero_grad()`` and backward loop does.
Median milliseconds of ``--rounds`` steps (after 3 warm-up steps).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from descentlab import optim

CASES = {"a": (10_000_000, 100), "b": (1_000_000, 1000)}
OPTIMIZERS = {"sgd": (optim.SGD, dict(lr=1e-3, momentum=0.9)), "adam": (optim.Adam, dict(lr=1e-3)),
              "rmsprop": (optim.RMSprop, dict(lr=1e-3, momentum=0.9)), "nadam": (optim.NAdam, dict(lr=1e-3))}
PATHS = {"fused": ({}, False), "table": ({}, True), "foreach": (dict(foreach=True), True),
         "reference": (dict(foreach=False, fused=False), True)}


def median_ms(name: str, path: str, total: int, tensors: int, rounds: int, new_grads: bool) -> float:
    cls, kwargs = OPTIMIZERS[name]
    switches, aliased = PATHS[path]
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(total // tensors, generator=gen)) for _ in range(tensors)]
    aliases = [p.detach() for p in params] if aliased else []  # noqa: F841 - held for the whole run
    grads = [torch.randn(p.shape, generator=gen) for p in params]
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    optimizer = cls(params, **kwargs, **switches)
    times = []
    for _ in range(rounds + 3):
        if new_grads:
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
        start = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - start)
    assert optimizer.path(optimizer.param_groups[0]) == path, optimizer.path(optimizer.param_groups[0])
    return statistics.median(times[3:]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", default="sgd,adam,rmsprop")
    parser.add_argument("--cases", default="a,b")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--new-grads", action="store_true")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}; new gradients every step: {args.new_grads}")
    print("| case | optimizer | " + " | ".join(f"{path} ms" for path in PATHS) + " | table / fused |")
    print("|---|---|" + "---|" * (len(PATHS) + 1))
    for case in args.cases.split(","):
        total, tensors = CASES[case]
        for name in args.optimizers.split(","):
            ms = {path: median_ms(name, path, total, tensors, args.rounds, args.new_grads) for path in PATHS}
            cells = " | ".join(f"{ms[path]:.2f}" for path in PATHS)
            print(f"| ({case}) | {name} | {cells} | {ms['table'] / ms['fused']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
