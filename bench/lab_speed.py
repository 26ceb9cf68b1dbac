"""Lab speed: the trial loop's overhead over a bare torch loop, and the surface population speed-up.

    python bench/lab_speed.py            (DESCENTLAB_DATA=../shared/data for MNIST)

1. Loop overhead: ``runner.run_trial`` (divergence check every step, curve bookkeeping) against a
   hand-written loop over the same problem object (data already tensors), model, optimizer and
   batches, doing the same evaluations (validation at the end, test). Interleaved, median of 5.
2. Population: every optimizer × 7 learning rates × 5 seeds on Rosenbrock (jittered starts,
   gradient noise), 500 steps: one trial at a time vs ``runner.run_population`` (one tensor).
"""

from __future__ import annotations

import statistics
import time

from descentlab import data, problems
from descentlab.lab import OPTIMIZERS, TrialSpec, default_lr, lr_grid, runner


def bare_loop(spec: TrialSpec) -> None:
    problem = runner.problem_of(spec)
    model = problem.model(spec.seed)
    optimizer = spec.make_optimizer(model.parameters())
    batches = problem.batches("train", spec.batch_size, spec.seed)
    for _ in range(spec.steps):
        loss = problem.loss(model, next(batches))
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
    problem.evaluate(model, "valid")
    problem.evaluate(model, "test")


def loop_overhead(problem: str, steps: int, batch_size: int, repeats: int = 5) -> tuple[float, float]:
    spec = TrialSpec(problem, {}, "adam", {"lr": 1e-3}, 0, steps, batch_size, steps, 10.0)
    runner.problem_of(spec)  # load and tensorize the data once, outside the timings
    return trial_against(spec, lambda: bare_loop(spec), repeats)


def trial_against(spec: TrialSpec, loop, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of the lab's trial of ``spec`` and of ``loop()`` (the same training by hand), run in turns."""
    ours, bare = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = runner.run_trial(spec)
        ours.append(time.perf_counter() - start)
        assert result["status"] == "done", result
        start = time.perf_counter()
        loop()
        bare.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(bare)


def population_speedup(steps: int = 500, grid: int = 7, seeds: int = 5) -> tuple[int, float, float]:
    options = {"jitter": 0.1, "noise": 0.1}
    specs = [TrialSpec("rosenbrock", options, name, {"lr": lr}, seed, steps, 8, 25, 10.0)
             for name in OPTIMIZERS for lr in lr_grid(default_lr(name), grid, 3.0) for seed in range(seeds)]
    (group,) = runner.population_groups(specs)
    start = time.perf_counter()
    runner.run_population(group)
    together = time.perf_counter() - start
    start = time.perf_counter()
    for spec in specs:
        runner.run_trial(spec)
    alone = time.perf_counter() - start
    return len(specs), alone, together


def main() -> None:
    workloads = [("quadratic", 300, 32)]
    try:
        problems.get("mnist_mlp")
        workloads.insert(0, ("mnist_mlp", 300, 128))
    except (data.DataUnavailable, data.ChecksumMismatch) as error:
        print(f"mnist_mlp skipped: {str(error).splitlines()[0]}")
    print("loop overhead (run_trial vs a bare torch loop, same model, data, optimizer; median of 5):")
    for problem, steps, batch_size in workloads:
        ours, bare = loop_overhead(problem, steps, batch_size)
        print(f"  {problem:<10} {steps} steps, batch {batch_size}: lab {ours * 1e3:.1f} ms, bare {bare * 1e3:.1f} ms, "
              f"overhead {100 * (ours / bare - 1):+.1f}%")
    count, alone, together = population_speedup()
    print(f"surface population: {count} trials (12 optimizers × 7 lrs × 5 seeds, rosenbrock, 500 steps): "
          f"one at a time {alone:.2f} s, one population {together:.3f} s, speed-up {alone / together:.0f}×")


if __name__ == "__main__":
    main()
