"""The talk's claims, tested on a study's summary by one stated rule.

A claim says that a group of optimizers wins on some problems. On each problem, the group's
champion (its member with the best mean *validation* metric, the selection metric) meets the
champion of everyone else in the study, on the *test* metric, seed by seed (same init and data
order). The 95% bootstrap interval of the mean paired difference decides:

- **reproduced**: the interval lies above 0 (the group is better);
- **not reproduced**: the interval lies below 0 (someone outside the group is better);
- **inconclusive**: the interval contains 0.

A claim over several problems is reproduced when it is on each, not reproduced when it is not
on any one, and inconclusive otherwise. "No optimizer wins everywhere" is tested on the real
tasks (problems with data, not the 2-D surfaces), optimizer against optimizer by the same
interval: it is reproduced when every optimizer is significantly beaten by some other on at
least one of two or more tasks, not reproduced when one optimizer significantly beats every
other on every task, inconclusive otherwise.
A diverged seed scores the worst value. Claims whose problems or groups are not in the study
are not tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from descentlab.lab import stats

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"

# The talk's groups, by the adaptation each lab optimizer uses (DESIGN.md §2):
L2_ADAPTATION = frozenset({"rmsprop", "adam", "amsgrad", "nadam", "adamw"})  # an EMA of g²
ADAPTATION = L2_ADAPTATION | {"adagrad", "adadelta", "adamax", "nadamax", "ftrl"}  # any per-coordinate scaling


@dataclass(frozen=True)
class Claim:
    text: str
    problems: tuple[str, ...]
    group: frozenset[str]


CLAIMS = (
    Claim("L2 adaptation wins on word2vec", ("word2vec",), L2_ADAPTATION),
    Claim("adaptation wins on MNIST", ("mnist_mlp", "mnist_logreg"), ADAPTATION),
    Claim("plain momentum wins on the LSTM", ("lstm_lm",), frozenset({"momentum"})),
)
NO_BEST = "no optimizer wins everywhere"


def judge(summary: dict) -> list[dict]:
    """One row per testable claim: ``{"claim", "outcome", "evidence": [...], "text"}``."""
    rows = []
    for claim in CLAIMS:
        evidence = [_duel(label, table, claim.group) for label, table in summary["problems"].items()
                    if table["problem"] in claim.problems]
        evidence = [e for e in evidence if e is not None]
        if evidence:
            rows.append({"claim": claim.text, "outcome": combine([e["outcome"] for e in evidence]),
                         "evidence": evidence})
    real = {label: table for label, table in summary["problems"].items() if not table["population"]}
    no_best = _no_best(real)
    if no_best is not None:
        rows.append(no_best)
    return rows


def outcome(interval: tuple[float, float]) -> str:
    """The rule, on the interval of the mean paired difference (positive: the claim's side better)."""
    low, high = interval
    if low > 0:
        return REPRODUCED
    if high < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(outcomes: list[str]) -> str:
    if all(o == REPRODUCED for o in outcomes):
        return REPRODUCED
    if any(o == NOT_REPRODUCED for o in outcomes):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _champion(rows: list[dict], goal: str) -> dict | None:
    """The row with the best mean validation metric (ties: the better rank)."""
    rows = [r for r in rows if r["valid_mean"] is not None]
    return min(rows, key=lambda r: (-stats.oriented(r["valid_mean"], goal), r["rank"]), default=None)


def _compare(label: str, table: dict, ours: dict, theirs: dict) -> dict:
    goal = table["goal"]
    differences = stats.paired_differences(ours["seed_tests"], theirs["seed_tests"], goal)
    interval = stats.bootstrap_ci(differences)
    won, seeds = stats.wins(ours["seed_tests"], theirs["seed_tests"], goal)
    return {"problem": label, "metric": table["metric"], "goal": goal, "ours": ours["optimizer"],
            "theirs": theirs["optimizer"], "ours_mean": ours["test_mean"], "ours_ci": ours["test_ci"],
            "theirs_mean": theirs["test_mean"], "theirs_ci": theirs["test_ci"],
            "difference": stats.mean(differences) if differences else math.nan, "difference_ci": interval,
            "wins": won, "seeds": seeds, "outcome": outcome(interval)}


def _duel(label: str, table: dict, group: frozenset[str]) -> dict | None:
    inside = _champion([r for r in table["rows"] if r["optimizer"] in group], table["goal"])
    outside = _champion([r for r in table["rows"] if r["optimizer"] not in group], table["goal"])
    if inside is None or outside is None:
        return None
    return _compare(label, table, inside, outside)


def _no_best(tables: dict) -> dict | None:
    if len(tables) < 2:
        return None
    names = set.intersection(*({r["optimizer"] for r in t["rows"]} for t in tables.values()))
    if len(names) < 2:
        return None
    beaten, everywhere, evidence = set(), [], []
    for name in sorted(names):
        duels = []  # name against every other optimizer, on every task
        for label, table in tables.items():
            mine = next(r for r in table["rows"] if r["optimizer"] == name)
            duels += [_compare(label, table, mine, other) for other in table["rows"] if other is not mine]
        if any(d["outcome"] == NOT_REPRODUCED for d in duels):
            beaten.add(name)
        if duels and all(d["outcome"] == REPRODUCED for d in duels):
            everywhere.append(name)
        evidence += duels
    if everywhere:
        result = NOT_REPRODUCED
    elif beaten == names:
        result = REPRODUCED
    else:
        result = INCONCLUSIVE
    return {"claim": NO_BEST, "outcome": result, "evidence": evidence, "everywhere": everywhere,
            "unbeaten": sorted(names - beaten), "problems": list(tables)}


def duels(label: str, table: dict) -> list[dict]:
    """One problem's optimizers by the same rule: its champion (best mean validation metric)
    against each other optimizer, on the test metric, seed by seed. ``outcome`` REPRODUCED reads
    "the champion beats it", NOT_REPRODUCED "it beats the champion", INCONCLUSIVE "no
    significant difference"."""
    champion = _champion(table["rows"], table["goal"])
    if champion is None:
        return []
    return [_compare(label, table, champion, other) for other in table["rows"] if other is not champion]


def sentence(duel: dict) -> str:
    """A duel in words: a winner only when the interval excludes 0."""
    ours, theirs = duel["ours"], duel["theirs"]
    if duel["outcome"] == REPRODUCED:
        return f"{ours} beats {theirs}"
    if duel["outcome"] == NOT_REPRODUCED:
        return f"{theirs} beats {ours}"
    return f"no significant difference between {ours} and {theirs}"
