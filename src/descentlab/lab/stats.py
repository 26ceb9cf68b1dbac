"""The statistics of a summary: bootstrap intervals, paired wins, time to a target, and
AlgoPerf-style performance profiles. Pure functions of numbers; no store, no problems."""

from __future__ import annotations

import collections
import itertools
import math
import random
import statistics

from descentlab.lab.spec import worst

EXACT_BOOTSTRAP_MAX = 8  # up to this many seeds, the bootstrap distribution is enumerated exactly
R_MAX = 4.0  # AlgoPerf's bound on the performance ratio


def bootstrap_ci(values: list[float], level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per seed).

    With up to ``EXACT_BOOTSTRAP_MAX`` values it is exact: every multiset of ``n`` values drawn
    with replacement, weighted by its multinomial probability, so the interval is a deterministic
    function of the values (with 2 values it is their range; with 3 it is the range as soon as
    their mean spread needs 1/27 of the mass). Beyond that, ``resamples`` draws from a fixed
    seed. The bounds are the lower and upper ``(1 − level)/2`` quantiles (the smallest mean whose
    cumulative probability reaches each).
    """
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    if n <= EXACT_BOOTSTRAP_MAX:
        distribution = []
        for draw in itertools.combinations_with_replacement(range(n), n):
            counts = collections.Counter(draw).values()
            weight = math.factorial(n) / math.prod(math.factorial(c) for c in counts) / n**n
            distribution.append((mean(values[i] for i in draw), weight))
    else:
        rng = random.Random(seed)
        distribution = [(mean(rng.choices(values, k=n)), 1 / resamples) for _ in range(resamples)]
    distribution.sort(key=lambda item: item[0])
    tail = (1 - level) / 2
    return _quantile(distribution, tail), _quantile(distribution, 1 - tail)


def mean(values) -> float:
    """The mean, exactly rounded where every value is finite."""
    values = list(values)
    return math.fsum(values) / len(values) if all(math.isfinite(v) for v in values) else sum(values) / len(values)


def _quantile(distribution: list[tuple[float, float]], p: float) -> float:
    cumulative = 0.0
    for value, weight in distribution:
        cumulative += weight
        if cumulative >= p - 1e-12:
            return value
    return distribution[-1][0]


def oriented(value: float, goal: str) -> float:
    """``value`` as "higher is better"."""
    return value if goal == "max" else -value


def paired_differences(a: dict[int, float], b: dict[int, float], goal: str) -> list[float]:
    """Per shared seed, how much better ``a`` did than ``b`` (positive: ``a`` better); a seed on
    which both scored worst (both diverged) is a tie."""
    differences = []
    for seed in sorted(set(a) & set(b)):
        difference = oriented(a[seed], goal) - oriented(b[seed], goal)
        differences.append(0.0 if math.isnan(difference) else difference)
    return differences


def wins(a: dict[int, float], b: dict[int, float], goal: str) -> tuple[int, int]:
    """(seeds on which ``a`` beat ``b``, shared seeds): same init and data order on each."""
    differences = paired_differences(a, b, goal)
    return sum(d > 0 for d in differences), len(differences)


def median_curve(curves: list[list[tuple[int, float, float]]], goal: str) -> list[tuple[int, float, float]]:
    """The pointwise median over seeds of curves of (step, seconds, value).

    Steps are those of the longest curve; a seed whose curve ended early (it diverged) counts
    as worst from there on, and its seconds as missing.
    """
    if not curves:
        return []
    longest = max(curves, key=len)
    by_step = [{step: (seconds, value) for step, seconds, value in curve} for curve in curves]
    median = []
    for step, _, _ in longest:
        values = [points[step][1] if step in points else worst(goal) for points in by_step]
        seconds = [points[step][0] for points in by_step if step in points]
        median.append((step, statistics.median(seconds), statistics.median(values)))
    return median


def reached(value: float, target: float, goal: str) -> bool:
    return value <= target if goal == "min" else value >= target


def time_to_target(curve: list[tuple[int, float, float]], target: float, goal: str) -> tuple[float, float]:
    """(steps, seconds) at the first point of ``curve`` that reaches ``target``; (inf, inf) if none does."""
    for step, seconds, value in curve:
        if reached(value, target, goal):
            return float(step), seconds
    return math.inf, math.inf


def target_of(finals: list[float]) -> float | None:
    """A problem's target: the median over optimizers of their final (median-seed) validation
    value, a level half of them reach; None when that is not a finite number."""
    if not finals:
        return None
    target = statistics.median(finals)
    return target if math.isfinite(target) else None


def performance_profile(times: dict[str, dict[str, float]], r_max: float = R_MAX) -> dict:
    """AlgoPerf's performance profile of optimizers over problems (docs/design.md, "The report").

    ``times[optimizer][problem]`` is the time (steps or seconds) to the problem's target, inf if
    never reached. The ratio ``r = t / min over optimizers of t`` (problems no optimizer reached
    are left out); ``ρ(τ)`` is the share of problems with ``r ≤ τ``, and the score
    ``B = 1/(r_max − 1) ∫₁^{r_max} ρ(τ) dτ``, which for a step function ρ is the mean over
    problems of ``clip(r_max − r, 0, r_max − 1) / (r_max − 1)``.
    """
    problems = sorted({p for row in times.values() for p in row})
    fastest = {p: min(row.get(p, math.inf) for row in times.values()) for p in problems}
    problems = [p for p in problems if math.isfinite(fastest[p]) and fastest[p] > 0]
    ratios = {name: {p: row.get(p, math.inf) / fastest[p] for p in problems} for name, row in times.items()}
    scores = {name: (statistics.fmean(min(max(r_max - r, 0.0), r_max - 1) / (r_max - 1) for r in row.values())
                     if row else math.nan) for name, row in ratios.items()}
    return {"problems": problems, "ratios": ratios, "scores": scores, "r_max": r_max}


def profile_share(ratios: dict[str, float], tau: float) -> float:
    """ρ(τ): the share of problems on which the ratio is at most ``tau``."""
    return sum(r <= tau for r in ratios.values()) / len(ratios) if ratios else math.nan
