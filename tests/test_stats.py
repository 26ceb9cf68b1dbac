"""The statistics and the verdict rule, against values computed by hand on small tables."""

from __future__ import annotations

import dataclasses
import math

import pytest

from descentlab.lab import stats, verdict


def test_bootstrap_interval_of_two_seeds_is_their_range():
    # resampled means of [1, 2]: 1 (p 1/4), 1.5 (1/2), 2 (1/4); the 2.5% and 97.5% quantiles are 1 and 2
    assert stats.bootstrap_ci([1.0, 2.0]) == (1.0, 2.0)
    assert stats.bootstrap_ci([1.0, 2.0], level=0.4) == (1.5, 1.5)  # 30% and 70% quantiles both fall on 1.5


def test_bootstrap_interval_by_hand_with_three_seeds():
    # [0, 0, 3]: the mean is k, the number of draws of the 3 ~ Binomial(3, 1/3):
    # P(0) = 8/27, P(1) = 12/27, P(2) = 6/27, P(3) = 1/27; CDF 0.296, 0.741, 0.963, 1
    assert stats.bootstrap_ci([0.0, 0.0, 3.0]) == (0.0, 3.0)  # 0.963 < 0.975: the top needs 3
    assert stats.bootstrap_ci([0.0, 0.0, 3.0], level=0.90) == (0.0, 2.0)  # 0.963 >= 0.95
    assert stats.bootstrap_ci([5.0]) == (5.0, 5.0)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([]))


def test_bootstrap_of_many_seeds_is_deterministic_and_covers_the_mean():
    values = [float(v) for v in range(20)]
    low, high = stats.bootstrap_ci(values)
    assert stats.bootstrap_ci(values) == (low, high)
    assert low < 9.5 < high and high - low == pytest.approx(2 * 1.96 * 5.77 / math.sqrt(20), rel=0.2)


def test_performance_profile_by_hand():
    # times to target on three problems; a is fastest on p and q, b on r, c never reaches q
    times = {"a": {"p": 10, "q": 20, "r": 60}, "b": {"p": 20, "q": 30, "r": 30}, "c": {"p": 50, "q": math.inf, "r": 45}}
    profile = stats.performance_profile(times)
    assert profile["ratios"]["a"] == {"p": 1.0, "q": 1.0, "r": 2.0}
    assert profile["ratios"]["b"] == {"p": 2.0, "q": 1.5, "r": 1.0}
    assert profile["ratios"]["c"] == {"p": 5.0, "q": math.inf, "r": 1.5}
    # B = mean over problems of clip(4 − r, 0, 3) / 3
    assert profile["scores"]["a"] == pytest.approx((3 + 3 + 2) / 9)
    assert profile["scores"]["b"] == pytest.approx((2 + 2.5 + 3) / 9)
    assert profile["scores"]["c"] == pytest.approx((0 + 0 + 2.5) / 9)
    assert stats.profile_share(profile["ratios"]["b"], 1.5) == pytest.approx(2 / 3)


def test_steps_to_target_uses_the_median_curve_with_two_and_three_seeds():
    # seeds reach the target at steps 200 and never: the median curve (mean of the two middle
    # values) reaches it when its median value does, not "never" as the median of [200, ∞] would say
    two = [[(100, 1.0, 5.0), (200, 2.0, 1.0), (300, 3.0, 0.8)], [(100, 1.0, 6.0), (200, 2.0, 4.0), (300, 3.0, 2.5)]]
    median = stats.median_curve(two, "min")
    assert [v for _, _, v in median] == [5.5, 2.5, 1.65]
    target = stats.target_of([median[-1][2], 3.0, 9.0])  # three optimizers' final median values
    assert target == 3.0 and stats.time_to_target(median, target, "min") == (200.0, 2.0)
    three = two + [[(100, 1.0, 7.0)]]  # a third seed diverged after step 100: worst from there on
    median = stats.median_curve(three, "min")
    assert [v for _, _, v in median] == [6.0, 4.0, 2.5]
    assert stats.time_to_target(median, 2.5, "min") == (300.0, 3.0)
    assert stats.time_to_target(median, 0.5, "min") == (math.inf, math.inf)


def _row(optimizer, tests, valid, rank):
    return {"optimizer": optimizer, "seed_tests": dict(enumerate(tests)), "valid_mean": valid, "rank": rank,
            "test_mean": sum(tests) / len(tests), "test_ci": stats.bootstrap_ci(tests)}


def _summary(rows_by_problem, goal="min"):
    return {"problems": {name: {"problem": name, "metric": "loss", "goal": goal, "population": False, "rows": rows}
                         for name, rows in rows_by_problem.items()}}


def test_verdict_rule_reproduced():
    summary = _summary({"word2vec": [_row("adam", [1.0, 1.1, 1.2], 1.0, 1), _row("momentum", [2.0, 2.2, 2.1], 2.0, 2)]})
    (row,) = [r for r in verdict.judge(summary) if r["claim"].startswith("L2")]
    assert row["outcome"] == "reproduced"
    (duel,) = row["evidence"]
    assert (duel["ours"], duel["theirs"], duel["wins"], duel["seeds"]) == ("adam", "momentum", 3, 3)
    assert duel["difference"] == pytest.approx(1.0) and duel["difference_ci"][0] > 0


def test_verdict_rule_not_reproduced_and_inconclusive():
    lstm = [_row("momentum", [300.0, 310.0, 320.0], 300.0, 2), _row("rmsprop", [200.0, 210.0, 190.0], 200.0, 1),
            _row("adam", [250.0, 260.0, 255.0], 250.0, 3)]
    (row,) = [r for r in verdict.judge(_summary({"lstm_lm": lstm})) if r["claim"] == "plain momentum wins on the LSTM"]
    assert row["outcome"] == "not reproduced" and row["evidence"][0]["theirs"] == "rmsprop"  # champion by validation
    mixed = [_row("momentum", [1.0, 3.0, 2.0], 1.0, 1), _row("sgd", [2.0, 2.0, 2.0], 2.0, 2)]
    (row,) = [r for r in verdict.judge(_summary({"lstm_lm": mixed})) if r["claim"] == "plain momentum wins on the LSTM"]
    assert row["outcome"] == "inconclusive" and row["evidence"][0]["wins"] == 1


def test_verdict_over_two_problems_and_no_best_optimizer():
    # accuracy (max): adaptation wins on one MNIST problem and loses on the other
    mlp = [_row("adam", [0.97, 0.98, 0.975], 0.97, 1), _row("sgd", [0.90, 0.91, 0.92], 0.9, 2)]
    logreg = [_row("adam", [0.80, 0.81, 0.82], 0.8, 2), _row("sgd", [0.90, 0.91, 0.92], 0.9, 1)]
    rows = verdict.judge(_summary({"mnist_mlp": mlp, "mnist_logreg": logreg}, goal="max"))
    mnist = next(r for r in rows if "MNIST" in r["claim"])
    assert [e["outcome"] for e in mnist["evidence"]] == ["reproduced", "not reproduced"]
    assert mnist["outcome"] == "not reproduced"
    no_best = next(r for r in rows if r["claim"] == verdict.NO_BEST)
    assert no_best["outcome"] == "reproduced"  # adam beaten on logreg, sgd on the MLP
    everywhere = verdict.judge(_summary({"mnist_mlp": mlp, "mnist_logreg": mlp}, goal="max"))
    no_best = next(r for r in everywhere if r["claim"] == verdict.NO_BEST)
    assert no_best["outcome"] == "not reproduced" and no_best["everywhere"] == ["adam"]
    assert verdict.combine(["reproduced", "inconclusive"]) == "inconclusive"


def test_a_flat_grid_is_no_bracket():
    from descentlab.lab.selection import LrAxis, ties

    # word2vec's SGD: every lr from 1e-4 to 3e-2 leaves the untrained loss, to within float noise
    assert ties(4.158881, 4.158879) and not ties(4.14, 4.158879) and not ties(1e-7, 0.0)
    axis = LrAxis(size=3, cap=8)
    assert axis.outward({0, 1, 2}) == 3  # a plateau reaching the top: larger lrs first
    assert axis.outward({0}) == -1 and axis.outward({1}) is None
    assert axis.bracket({1}) == "interior" and axis.bracket({1, 2}) == "edge"
    axis.add(3)
    assert axis.outward({1, 2, 3}) == 4 and axis.outward({2}) is None


def test_winning_everywhere_means_beating_every_other_optimizer():
    # a beats b on every seed of both tasks, but c is level with a on one task: a does not win everywhere
    level = [_row("a", [0.95, 0.96, 0.97], 0.96, 1), _row("c", [0.97, 0.95, 0.96], 0.95, 2),
             _row("b", [0.90, 0.91, 0.92], 0.97, 3)]  # b has the best validation: the group rule's champion
    ahead = [_row("a", [0.95, 0.96, 0.97], 0.96, 1), _row("c", [0.90, 0.91, 0.92], 0.95, 2),
             _row("b", [0.90, 0.91, 0.92], 0.94, 3)]
    (row,) = [r for r in verdict.judge(_summary({"mnist_mlp": level, "mnist_logreg": ahead}, goal="max"))
              if r["claim"] == verdict.NO_BEST]
    assert row["everywhere"] == [] and row["unbeaten"] == ["a"] and row["outcome"] == "inconclusive"


def test_each_lab_optimizer_is_grouped_by_the_norm_its_rules_divide_by():
    from descentlab.lab.spec import OPTIMIZERS

    expected = {"adadelta": "L2", "adagrad": "L2", "adam": "L2", "adamw": "L2", "amsgrad": "L2", "ftrl": "L2",
                "nadam": "L2", "rmsprop": "L2", "adabelief": "L2", "adamax": "L∞", "nadamax": "L∞",
                "sgd": None, "momentum": None, "nesterov": None}
    assert {name: verdict.norm(name) for name in OPTIMIZERS} == expected
    assert verdict.L2_ADAPTATION == {name for name, norm in expected.items() if norm == "L2"}
    assert verdict.ADAPTATION == {name for name, norm in expected.items() if norm}


def _word2vec_duel(summary):
    (row,) = [r for r in verdict.judge(summary) if r["claim"] == "L2 adaptation wins on word2vec"]
    return row["outcome"], row["evidence"][0]["ours"], row["evidence"][0]["theirs"]


def test_word2vec_verdict_turns_on_adagrad_being_l2_adaptation(monkeypatch):
    # Adagrad best, momentum second, Adam third: with Adagrad in the L2 group the group's champion
    # beats momentum; without it, Adam meets Adagrad and loses
    word2vec = [_row("adagrad", [3.0, 3.1, 3.05], 3.0, 1), _row("momentum", [3.5, 3.6, 3.55], 3.5, 2),
                _row("adam", [4.0, 4.1, 4.05], 4.0, 3)]
    summary = _summary({"word2vec": word2vec})
    assert _word2vec_duel(summary) == ("reproduced", "adagrad", "momentum")
    claims = tuple(dataclasses.replace(c, group=c.group - {"adagrad"}) for c in verdict.CLAIMS)
    monkeypatch.setattr(verdict, "CLAIMS", claims)
    assert _word2vec_duel(summary) == ("not reproduced", "adam", "adagrad")
