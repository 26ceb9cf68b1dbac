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

The groups are read from each optimizer's rules, as the talk defines them: *L2 adaptation* divides
by an L2 norm of past gradients (Adagrad's sum of g², the EMA of g² of RMSprop, Adam, AMSGrad,
AdamW and Nadam, Adadelta's ratio of RMS values, FTRL's per-coordinate rate from the same sum),
*adaptation* by any norm (the L∞ family too: Adamax and Nadamax, an EMA-max of |g|).

Clipped variants (``momentum+clipnorm=1``) stay out of every claim unless it says "clipping
allowed": there they stand on their base optimizer's side, so "plain momentum wins on the LSTM
(clipping allowed)" pits the best of momentum and its clipped variants against the best of the
rest, clipped or not. "Clipping deals with exploding gradients" is tested on the cliff and the
LSTM: the best clipped variant (by validation) meets the same optimizer unclipped, by the rule.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import cast

from descentlab.lab import stats
from descentlab.lab.records import Duel, ProblemTable, Row, Summary, VerdictRow
from descentlab.lab.spec import OPTIMIZERS
from descentlab.optim._chain import ChainOptimizer
from descentlab.rules.adaptation import L2

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@functools.cache
def norm(optimizer: str) -> str | None:
    """The norm of past gradients the lab optimizer divides by, read from its chain of rules:
    ``"L2"`` (a sum or an EMA of g², Adadelta's ratio), ``"L∞"`` (an EMA-max of |g|), or None."""
    cls = cast("type[ChainOptimizer]", OPTIMIZERS[optimizer][0])  # every built-in lab optimizer is one
    chain = cls.chain_for("torch")  # the flavor moves ε, never the norm
    return next((rule.norm for rule in chain.stateful if getattr(rule, "norm", None)), None)


# The talk's groups, by its own definitions: "L2 adaptation" divides by an L2 norm of past
# gradients (Adagrad's slide: "by the L2 norm of all previous gradients"), "adaptation" by any norm.
L2_ADAPTATION = frozenset(name for name in OPTIMIZERS if norm(name) == L2)
ADAPTATION = frozenset(name for name in OPTIMIZERS if norm(name) is not None)


@dataclass(frozen=True)
class Claim:
    text: str
    problems: tuple[str, ...]
    group: frozenset[str]
    clipping: bool = False  # clipped variants take part, on their base optimizer's side


CLAIMS = (
    Claim("L2 adaptation wins on word2vec", ("word2vec",), L2_ADAPTATION),
    Claim("adaptation wins on MNIST", ("mnist_mlp", "mnist_logreg"), ADAPTATION),
    Claim("plain momentum wins on the LSTM", ("lstm_lm",), frozenset({"momentum"})),
    Claim("plain momentum wins on the LSTM (clipping allowed)", ("lstm_lm",), frozenset({"momentum"}),
          clipping=True),
)
NO_BEST = "no optimizer wins everywhere"
CLIPPING = "clipping deals with exploding gradients"
CLIPPING_PROBLEMS = ("cliff", "lstm_lm")


def base(optimizer: str) -> str:
    """The optimizer a clipped variant clips (``"momentum+clipnorm=1"`` → ``"momentum"``)."""
    return optimizer.partition("+")[0]


def unclipped(table: ProblemTable) -> ProblemTable:
    """The problem's table without its clipped variants."""
    return {**table, "rows": [r for r in table["rows"] if base(r["optimizer"]) == r["optimizer"]]}


def judge(summary: Summary) -> list[VerdictRow]:
    """One row per testable claim: ``{"claim", "outcome", "evidence": [...], "text"}``."""
    rows: list[VerdictRow] = []
    for claim in CLAIMS:
        evidence = [_duel(label, table if claim.clipping else unclipped(table), claim.group)
                    for label, table in summary["problems"].items() if table["problem"] in claim.problems]
        _append(rows, claim.text, evidence)
    _append(rows, CLIPPING, [clipped_duel(label, table) for label, table in summary["problems"].items()
                             if table["problem"] in CLIPPING_PROBLEMS])
    real = {label: unclipped(table) for label, table in summary["problems"].items() if not table["population"]}
    no_best = _no_best(real)
    if no_best is not None:
        rows.append(no_best)
    return rows


def _append(rows: list[VerdictRow], claim: str, evidence: list[Duel | None]) -> None:
    found = [e for e in evidence if e is not None]
    if found:
        rows.append({"claim": claim, "outcome": combine([e["outcome"] for e in found]), "evidence": found})


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


def _champion(rows: list[Row], goal: str) -> Row | None:
    """The row with the best mean validation metric (ties: the better rank)."""
    scored = [(-stats.oriented(r["valid_mean"], goal), r["rank"] or 0, r) for r in rows if r["valid_mean"] is not None]
    best = min(scored, key=lambda s: s[:2], default=None)
    return None if best is None else best[2]


def _compare(label: str, table: ProblemTable, ours: Row, theirs: Row) -> Duel:
    goal = table["goal"]
    differences = stats.paired_differences(ours["seed_tests"], theirs["seed_tests"], goal)
    interval = stats.bootstrap_ci(differences)
    won, seeds = stats.wins(ours["seed_tests"], theirs["seed_tests"], goal)
    return {"problem": label, "metric": table["metric"], "goal": goal, "ours": ours["optimizer"],
            "theirs": theirs["optimizer"], "ours_mean": ours["test_mean"], "ours_ci": ours["test_ci"],
            "theirs_mean": theirs["test_mean"], "theirs_ci": theirs["test_ci"],
            "difference": stats.mean(differences) if differences else math.nan, "difference_ci": interval,
            "wins": won, "seeds": seeds, "outcome": outcome(interval)}


def _duel(label: str, table: ProblemTable, group: frozenset[str]) -> Duel | None:
    inside = _champion([r for r in table["rows"] if base(r["optimizer"]) in group], table["goal"])
    outside = _champion([r for r in table["rows"] if base(r["optimizer"]) not in group], table["goal"])
    if inside is None or outside is None:
        return None
    return _compare(label, table, inside, outside)


def clipped_duel(label: str, table: ProblemTable) -> Duel | None:
    """The best clipped variant (by validation) against the same optimizer unclipped."""
    plain = {r["optimizer"]: r for r in table["rows"]}
    clipped = _champion([r for r in table["rows"] if base(r["optimizer"]) != r["optimizer"]
                         and base(r["optimizer"]) in plain], table["goal"])
    if clipped is None or plain[base(clipped["optimizer"])]["valid_mean"] is None:
        return None
    return _compare(label, table, clipped, plain[base(clipped["optimizer"])])


def _no_best(tables: dict[str, ProblemTable]) -> VerdictRow | None:
    if len(tables) < 2:
        return None
    names = set.intersection(*({r["optimizer"] for r in t["rows"]} for t in tables.values()))
    if len(names) < 2:
        return None
    duels = {name: _against_all(name, tables) for name in sorted(names)}
    beaten = {name for name, mine in duels.items() if any(d["outcome"] == NOT_REPRODUCED for d in mine)}
    everywhere = [name for name, mine in duels.items() if mine and all(d["outcome"] == REPRODUCED for d in mine)]
    return {"claim": NO_BEST, "outcome": _no_best_outcome(names, beaten, everywhere),
            "evidence": [d for mine in duels.values() for d in mine], "everywhere": everywhere,
            "unbeaten": sorted(names - beaten), "problems": list(tables)}


def _against_all(name: str, tables: dict[str, ProblemTable]) -> list[Duel]:
    """``name`` against every other optimizer, on every task."""
    duels: list[Duel] = []
    for label, table in tables.items():
        mine = next(r for r in table["rows"] if r["optimizer"] == name)
        duels += [_compare(label, table, mine, other) for other in table["rows"] if other is not mine]
    return duels


def _no_best_outcome(names: set[str], beaten: set[str], everywhere: list[str]) -> str:
    """Not reproduced when one optimizer beat every other everywhere; reproduced when every one was
    beaten somewhere."""
    if everywhere:
        return NOT_REPRODUCED
    if beaten == names:
        return REPRODUCED
    return INCONCLUSIVE


def duels(label: str, table: ProblemTable) -> list[Duel]:
    """One problem's optimizers by the same rule: its champion (best mean validation metric)
    against each other optimizer, on the test metric, seed by seed. ``outcome`` REPRODUCED reads
    "the champion beats it", NOT_REPRODUCED "it beats the champion", INCONCLUSIVE "no
    significant difference"."""
    champion = _champion(table["rows"], table["goal"])
    if champion is None:
        return []
    return [_compare(label, table, champion, other) for other in table["rows"] if other is not champion]


def sentence(duel: Duel) -> str:
    """A duel in words: a winner only when the interval excludes 0."""
    ours, theirs = duel["ours"], duel["theirs"]
    if duel["outcome"] == REPRODUCED:
        return f"{ours} beats {theirs}"
    if duel["outcome"] == NOT_REPRODUCED:
        return f"{theirs} beats {ours}"
    return f"no significant difference between {ours} and {theirs}"
