"""compare's per-trial overhead: a trial of ``descentlab.compare`` against the loop a user writes.

    python bench/compare_overhead.py [--device cuda] [--steps 300]

The same model (an MLP 784-256-10), data (synthetic MNIST-sized tensors: 8,192 train, 1,024
valid, 1,024 test), optimizer (the lab's Adam, lr 1e-3), batch size 128 and evaluations (the
whole validation and test splits once, at the end). The user's loop: a shuffling DataLoader
(pinned memory on CUDA), non-blocking copies, forward, backward, step. compare's trial:
``runner.run_trial`` on the problem ``compare`` builds (seeded sampler, divergence check every
step, curve bookkeeping, device moves). Interleaved, median of 5; prints the ratio.
"""

from __future__ import annotations

import argparse

import torch
from lab_speed import trial_against  # this folder's (scripts here run with it on the path)
from torch.nn import functional as F

from descentlab.lab import TrialSpec, runner
from descentlab.lab.compare import UserProblem
from descentlab.lab.devices import resolve


def model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def splits():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(10240, 784, generator=generator)
    y = (x[:, :10].argmax(1) + (torch.rand(10240, generator=generator) < 0.1).long()) % 10
    return (x[:8192], y[:8192]), (x[8192:9216], y[8192:9216]), (x[9216:], y[9216:])


def users_loop(spec: TrialSpec, train, valid, test) -> None:
    device = spec.device
    net = model().to(device)
    optimizer = spec.make_optimizer(net.parameters())
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train), batch_size=spec.batch_size,
                                         shuffle=True, drop_last=True, pin_memory=device != "cpu",
                                         generator=torch.Generator().manual_seed(0))
    step = 0
    while step < spec.steps:
        for inputs, targets in loader:
            loss = F.cross_entropy(net(inputs.to(device, non_blocking=True)), targets.to(device, non_blocking=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step == spec.steps:
                break
    with torch.no_grad():
        for inputs, targets in (valid, test):
            F.cross_entropy(net(inputs.to(device)), targets.to(device)).item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    device = resolve(args.device)
    train, valid, test = splits()
    runner.register("user:bench", UserProblem("bench", model, F.cross_entropy, None, train, valid, test,
                                              eval_examples=None))
    spec = TrialSpec("user:bench", {}, "adam", {"lr": 1e-3}, 0, args.steps, 128, args.steps, 10.0, device)
    ours_s, bare_s = trial_against(spec, lambda: users_loop(spec, train, valid, test))
    print(f"{device}, {args.steps} steps of batch 128, MLP 784-256-10, Adam: compare's trial {ours_s * 1e3:.0f} ms, "
          f"the user's loop {bare_s * 1e3:.0f} ms, ratio {ours_s / bare_s:.3f}")


if __name__ == "__main__":
    main()
