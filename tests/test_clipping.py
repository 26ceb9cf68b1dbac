"""The talk's last slides: the cliff surface, clipped lab optimizers, their verdict rows and picture."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from descentlab import optim
from descentlab.lab import Study, TrialSpec, default_lr, run_study, runner, verdict
from descentlab.lab.spec import optimizer_of, parse_optimizer
from descentlab.problems.surfaces import SURFACES
from descentlab.report import clipping, frames, style
from descentlab.report.build import write_report
from test_stats import _row, _summary

# --- the cliff ----------------------------------------------------------------------------------


def test_the_cliff_has_its_minimum_exactly_and_a_wall_far_steeper_than_its_valley():
    cliff = SURFACES["cliff"]
    xs = torch.arange(-120, 121, dtype=torch.float64) / 20  # 0 among them, exactly
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), dim=-1)
    assert cliff.f(grid).min() == 0 and cliff.f(torch.zeros(2, dtype=torch.float64)) == 0
    assert torch.equal(cliff.grad(torch.zeros(2, dtype=torch.float64)), torch.zeros(2, dtype=torch.float64))
    face, terrace = torch.tensor([1.0, 0.0]), torch.tensor(cliff.starts[0])
    assert cliff.grad(face).norm() > 100 * cliff.grad(terrace).norm()  # the start lies before the wall
    assert cliff.f(terrace) > 40 > cliff.f(torch.tensor([0.7, 0.0]))


def test_a_step_on_the_wall_throws_the_point_away_and_a_clipped_step_does_not():
    moved = {}
    for clip in ({}, {"clipnorm": 1.0}, {"clipvalue": 0.5}):
        point = torch.nn.Parameter(torch.tensor([1.0, 0.5], dtype=torch.float64))
        optimizer = optim.SGD([point], lr=0.1, **clip)
        SURFACES["cliff"].f(point).backward()
        optimizer.step()
        moved[tuple(clip)] = (point.detach() - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm().item()
    assert moved[()] > 10 and moved[("clipnorm",)] == pytest.approx(0.1)
    assert moved[("clipvalue",)] == pytest.approx(0.05 * 2**0.5)


# --- clipped variants as lab names ----------------------------------------------------------------


def test_clipped_variant_names_parse_and_bad_ones_say_what_is_wrong():
    assert parse_optimizer("momentum+clipnorm=1") == ("momentum", {"clipnorm": 1.0})
    assert optimizer_of("sgd+clipvalue=0.5") == (optim.SGD, {"clipvalue": 0.5})
    assert optimizer_of("nesterov+global_clipnorm=2") == (optim.SGD, {"momentum": 0.9, "nesterov": True,
                                                                      "global_clipnorm": 2.0})
    assert default_lr("adam+clipnorm=1") == default_lr("adam")  # the same lr grid as its base
    for name, message in (("adamm+clipnorm=1", "Unknown optimizer 'adamm'"),
                          ("adam+lr=1", "OPTION one of clipnorm"), ("adam+clipnorm", "OPTION one of clipnorm"),
                          ("adam+clipnorm=x", "`clipnorm` must be a number. Received: clipnorm='x'"),
                          ("adam+clipvalue=-1", "`clipvalue` must be > 0"), ("adam+clipnorm=nan", "must be > 0")):
        with pytest.raises(ValueError, match=message):
            parse_optimizer(name)
    with pytest.raises(ValueError, match="Unknown optimizer 'sgdd'"):
        Study(problems=["cliff"], optimizers=["momentum", "sgdd+clipnorm=1"])


def test_a_clipped_variant_differs_from_its_base_only_by_the_clipping():
    spec = TrialSpec("quadratic", {}, "momentum", {"lr": 0.05}, 1, 30, 8, 10, 10.0)
    never = dataclasses.replace(spec, optimizer=f"momentum+clipnorm={2.0**40}")  # a bound no gradient reaches
    tight = dataclasses.replace(spec, optimizer="momentum+clipnorm=0.01")
    assert never.key != spec.key and tight.settings == {"momentum": 0.9, "clipnorm": 0.01, "lr": 0.05}
    base, unclipped, clipped = (runner.run_trial(s) for s in (spec, never, tight))
    assert base["curve"] == [{**p, "wall": q["wall"]} for p, q in zip(unclipped["curve"], base["curve"], strict=True)]
    assert base["valid"] == unclipped["valid"] and clipped["valid"] != base["valid"]
    assert clipped["optimizer_config"]["clipnorm"] == 0.01


def test_clipped_variants_stay_out_of_surface_populations_and_take_their_base_colour_dashed():
    specs = [TrialSpec("cliff", {}, name, {"lr": 0.1}, 0, 5, None, 1, 10.0)
             for name in ("momentum", "momentum+clipnorm=1", "sgd")]
    (group,) = runner.population_groups(specs)
    assert [s.optimizer for s in group] == ["momentum", "sgd"]
    shades = {style.colour(n) for n in ("momentum", "momentum+clipnorm=1", "momentum+clipvalue=0.5", "adam")}
    assert len(shades) == 4
    assert style.colour("momentum+clipnorm=1") == style._mix(style.colour("momentum"), "#000000", style.SHADE)
    # a shade of momentum's orange lies near RMSprop's brown: the line style keeps them apart
    styles = [style.line(n)["linestyle"] for n in ("momentum", "momentum+clipnorm=1", "momentum+clipvalue=0.5")]
    assert styles == ["-", "--", ":"]


# --- the verdict's rows, on made-up results ---------------------------------------------------------


def _judged(rows_by_problem, claim):
    return [r for r in verdict.judge(_summary(rows_by_problem)) if r["claim"] == claim]


@pytest.mark.parametrize("clipped_tests, outcome", [([1.0, 1.1, 1.2], "reproduced"),
                                                     ([3.0, 3.1, 3.2], "not reproduced"),
                                                     ([1.0, 3.0, 2.0], "inconclusive")])
def test_clipping_claim_pairs_the_best_clipped_variant_with_its_base(clipped_tests, outcome):
    rows = [_row("momentum", [2.0, 2.1, 2.0], 2.0, 2), _row("momentum+clipnorm=1", clipped_tests, 1.0, 1),
            _row("momentum+clipvalue=0.5", [0.5, 0.5, 0.5], 9.0, 3),  # worse validation: not the champion
            _row("adam", [0.1, 0.1, 0.1], 0.1, 4)]  # the best by far, but not what the claim is about
    (row,) = _judged({"cliff": rows, "lstm_lm": rows}, verdict.CLIPPING)
    assert row["outcome"] == outcome and [e["problem"] for e in row["evidence"]] == ["cliff", "lstm_lm"]
    assert {(e["ours"], e["theirs"]) for e in row["evidence"]} == {("momentum+clipnorm=1", "momentum")}
    assert not _judged({"cliff": rows[:1] + rows[3:]}, verdict.CLIPPING)  # no clipped variant: not tested


def test_momentum_on_the_lstm_with_clipping_allowed_is_its_own_row():
    lstm = [_row("momentum", [300.0, 310.0, 320.0], 300.0, 3), _row("nadam", [200.0, 210.0, 190.0], 200.0, 2),
            _row("momentum+clipnorm=1", [150.0, 160.0, 170.0], 150.0, 1)]
    rows = {r["claim"]: r for r in verdict.judge(_summary({"lstm_lm": lstm}))}
    plain, allowed = rows["plain momentum wins on the LSTM"], rows["plain momentum wins on the LSTM (clipping allowed)"]
    assert (plain["outcome"], plain["evidence"][0]["ours"]) == ("not reproduced", "momentum")  # the variant is out
    assert (allowed["outcome"], allowed["evidence"][0]["ours"]) == ("reproduced", "momentum+clipnorm=1")
    clipped_rival = [lstm[0], _row("nadam+clipnorm=1", [100.0, 110.0, 90.0], 100.0, 1)]
    (row,) = _judged({"lstm_lm": clipped_rival}, "plain momentum wins on the LSTM (clipping allowed)")
    assert row["outcome"] == "not reproduced" and row["evidence"][0]["theirs"] == "nadam+clipnorm=1"


def test_clipped_variants_do_not_change_the_unclipped_claims():
    mlp = [_row("adam", [0.97, 0.98, 0.975], 0.97, 1), _row("sgd", [0.90, 0.91, 0.92], 0.9, 2)]
    plus = mlp + [_row("sgd+clipnorm=1", [0.99, 0.99, 0.99], 0.99, 1)]
    summary = _summary({"mnist_mlp": mlp, "mnist_logreg": list(reversed(mlp))}, goal="max")
    clipped = _summary({"mnist_mlp": plus, "mnist_logreg": list(reversed(plus))}, goal="max")
    assert verdict.judge(summary) == verdict.judge(clipped)


# --- the picture ------------------------------------------------------------------------------------


def test_the_clipping_picture_is_drawn_from_a_study(tmp_path):
    db = str(tmp_path / "cliff.sqlite")
    study = Study(problems=["cliff"], optimizers=["momentum", "momentum+clipnorm=1"], grid=2, span=1.0, seeds=2,
                  steps=40, extend=1, problem_options={"cliff": {"jitter": 0.1}})
    with open(os.devnull, "w") as quiet:
        run_study(study, db=db, progress_stream=quiet)
    loaded = frames.load(db)
    names, common = clipping.contestants(loaded, "cliff")
    assert names == ["momentum", "momentum+clipnorm=1"]
    assert common == loaded.chosen["cliff"]["momentum+clipnorm=1"]["hyperparameters"]["lr"]
    png = clipping.figure(loaded, "cliff")
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    # The whole report too: its playground section leaves the clipped variant out of the populations.
    page = write_report(db, out=str(tmp_path / "report"))
    assert "momentum+clipnorm=1" in open(page, encoding="utf-8").read()
