"""One optimizer step at a time, synchronized after each: the issue's way of timing, and a real loop's.

    python bench/step_sync.py [--device cuda] [--params 10000000] [--tensors 1000]

``descentlab bench step`` times bursts of steps, which lets the host's work overlap the GPU's as
in training. This times single steps with a synchronization before and after (median of 30), for
descentlab's and torch's fused Adam, in two situations: the same gradient tensors every step
(the steady state ``bench step`` also measures), and new gradient tensors every step (a loop that
calls ``zero_grad()`` and backward), where each path must read new gradient objects.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from descentlab import optim


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_step_ms(make, device: torch.device, total: int, tensors: int, new_grads: bool, steps: int = 30) -> float:
    gen = torch.Generator(device).manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(total // tensors, generator=gen, device=device)) for _ in range(tensors)]
    grads = [torch.randn_like(p) for p in params]
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    optimizer = make(params)
    times = []
    for _ in range(steps + 3):
        if new_grads:
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
        _synchronize(device)
        start = time.perf_counter()
        optimizer.step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--tensors", type=int, default=1000)
    args = parser.parse_args()
    device = torch.device(args.device)
    contenders = {"descentlab Adam (fused)": lambda p: optim.Adam(p, fused=True),
                  "torch Adam (fused)": lambda p: torch.optim.Adam(p, fused=True)}
    print(f"{args.params:,} float32 params in {args.tensors} tensors on {device}; median ms of one synchronized step")
    for situation, new_grads in (("same gradients", False), ("new gradients every step", True)):
        for name, make in contenders.items():
            ms = median_step_ms(make, device, args.params, args.tensors, new_grads)
            print(f"  {situation:26s} {name:24s} {ms:8.3f}")


if __name__ == "__main__":
    main()
