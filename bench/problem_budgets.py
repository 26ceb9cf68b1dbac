"""Measure each problem's default budget: load time, training time with Adam at its default lr,
and the validation loss and metric before and after. Prints a table; asserts nothing.

    python bench/problem_budgets.py [--threads 2] [name ...]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from descentlab import optim, problems


def measure(name: str) -> dict:
    start = time.perf_counter()
    problem = problems.get(name)
    loaded = time.perf_counter()
    model = problem.model(0)
    before = problem.evaluate(model, "valid")
    optimizer = optim.Adam(model.parameters())
    trained = time.perf_counter()
    for batch in itertools.islice(problem.batches("train", problem.default_batch_size, 0), problem.default_steps):
        optimizer.zero_grad()
        problem.loss(model, batch).backward()
        optimizer.step()
    trained = time.perf_counter() - trained
    after = problem.evaluate(model, "valid")
    return {"name": name, "load_s": loaded - start, "train_s": trained, "steps": problem.default_steps,
            "metric": problem.metric, "before": before, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=problems.names())
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'problem':<14} {'load s':>7} {'train s':>8} {'steps':>6}  "
          "valid loss before -> after   metric before -> after")
    for name in args.names:
        r = measure(name)
        m = r["metric"]
        print(f"{name:<14} {r['load_s']:>7.2f} {r['train_s']:>8.2f} {r['steps']:>6}  "
              f"{r['before']['loss']:>10.4f} -> {r['after']['loss']:<10.4f} "
              f"{m} {r['before'][m]:.4f} -> {r['after'][m]:.4f}")


if __name__ == "__main__":
    main()
