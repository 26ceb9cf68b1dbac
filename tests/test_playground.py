"""The surface playground: its data against the population runner, and the page in headless Chromium."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import zlib

import numpy as np
import pytest
import torch

from descentlab.lab import runner
from descentlab.report import playground
from descentlab.report.playground import VIEWS, Group, Setting

STEPS = 60


@pytest.fixture(scope="module")
def built():
    """A small playground: Beale with and without gradient noise, and the saddle; sgd (no second
    slider) and adam (β1), lrs from crawling to diverging."""
    setting = Setting(VIEWS[0], {"start": 0, "noise": 0.0, "jitter": 0.0}, STEPS, None)
    noisy = Setting(VIEWS[0], {"start": 0, "noise": 1.0, "jitter": 0.0}, STEPS, 1)
    saddle = Setting(VIEWS[2], {"start": VIEWS[2].start, "noise": 0.0, "jitter": 0.0}, STEPS, None)
    sliders = [playground.slider("sgd", 1e-3, 0.3, points=5), playground.slider("adam", 1e-2, 3.0, points=5)]
    names = [s.optimizer for s in sliders]
    groups = [Group([setting, noisy], names, sliders), Group([saddle], names, sliders)]
    return setting, sliders, playground.build(groups)


def _decode(variant: dict) -> tuple[list[np.ndarray], list[int]]:
    """The page's paths, as integer (x, y, loss code) rows, and their ends: the format read independently."""
    values, value, shift = [], 0, 0
    for byte in zlib.decompress(base64.b85decode(variant["data"])):
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(-(value + 1) // 2 if value % 2 else value // 2)
            value, shift = 0, 0
    count = variant["paths"]
    lengths, ends, values = values[:count], values[count : 2 * count], values[2 * count :]
    total = sum(lengths)
    assert len(values) == 3 * total
    bounds = np.cumsum([0, *lengths])
    paths = []
    for a, b in itertools.pairwise(bounds):
        columns = []
        for stream in range(3):
            coded = np.array(values[stream * total + a : stream * total + b])
            steps = np.cumsum(coded[1:])  # a path's first step, then each step's change
            columns.append(coded[0] + np.concatenate([[0], np.cumsum(steps)]))
        paths.append(np.stack(columns, axis=1))
    return paths, ends


def _runner_paths(setting, settings: list[tuple[str, dict]], population: bool = True) -> list[tuple[np.ndarray, dict]]:
    """The runner's points at every step (its curve with a point per step) for each (optimizer, hyperparameters)."""
    specs = [dataclasses.replace(setting.spec(optimizer, hp), eval_every=1) for optimizer, hp in settings]
    results = runner.run_population(specs) if population else [runner.run_trial(spec) for spec in specs]
    start = runner.problem_of(specs[0]).model(setting.seed).xy.detach().double().numpy()
    return [(np.array([start] + [[p["valid"]["x"], p["valid"]["y"]] for p in result["curve"]]), result)
            for result in results]


def test_the_stored_paths_are_the_runners_to_within_half_a_level(built):
    setting, sliders, data = built
    variant = data["variants"][0]
    x0, x1, y0, y1 = setting.view.window
    half = 0.5 / playground.LEVELS * np.array([x1 - x0, y1 - y0]) + 1e-9
    surface = runner.problem_of(setting.spec("sgd", {"lr": 1.0})).surface
    paths, path_ends = _decode(variant)
    settings = [(s.optimizer, hp) for s in sliders for hp in s.settings()]
    assert len(paths) == len(settings) == 5 + 5 * len(playground.MOMENTA)
    ends = set()
    runs = _runner_paths(setting, settings)
    for codes, end, (optimizer, hyperparameters), (expected, result) in zip(paths, path_ends, settings, runs,
                                                                             strict=True):
        n = len(codes)
        # only a path's last point may lie past the plot's margin, kept clamped to it
        edge = playground.LEVELS / 2 + playground.MARGIN
        clamped = (np.abs(codes[:, :2] - playground.LEVELS / 2) == edge).any(axis=1)
        assert not clamped[:-1].any() and (clamped[-1] or end >= 0) and (not clamped[-1] or end != 0)
        shown = np.stack([playground.dequantize(codes[:, 0], x0, x1), playground.dequantize(codes[:, 1], y0, y1)], 1)
        assert (np.abs(shown - expected[:n])[~clamped] <= half).all(), (optimizer, hyperparameters)
        loss = surface.f(torch.from_numpy(expected[:n])).numpy()
        assert playground.decode_loss(codes[:, 2]) == pytest.approx(loss, rel=0.006, abs=1e-7)
        if end > 0:  # drawn up to the point judged diverged, or to where it left the plot before that
            assert result["status"] == "diverged" and result["diverged_at"] == end >= n
        elif end < 0:
            assert n == -end + 1
        else:
            assert result["status"] == "done" and n == STEPS + 1
        ends.add(np.sign(end))
    assert ends >= {0, 1}  # the grid runs from converging to diverging


def test_the_page_in_headless_chromium(built, chromium, tmp_path):
    from browser import Chromium

    setting, sliders, data = built
    page = tmp_path / "playground.html"
    page.write_text(playground.page(data), encoding="utf-8")
    assert "<script src" not in page.read_text() and "http" not in page.read_text().split("<script>", 1)[1]
    x0, x1, y0, y1 = setting.view.window
    half = 0.5 / playground.LEVELS * np.array([x1 - x0, y1 - y0]) + 1e-9
    root = "document.querySelector('.playground')"
    with Chromium(chromium, str(tmp_path / "profile")) as browser:
        browser.open(page.as_uri())
        assert browser.evaluate(f"{root}.playground.ready()")
        browser.evaluate("new Promise(done => setTimeout(done, 200))")
        assert int(browser.evaluate(f"{root}.dataset.step")) == STEPS  # whole paths first

        # the page's last point of adam's path is the runner's final point for that setting
        adam = sliders[1]
        chosen = browser.evaluate(f"{root}.playground.setting('adam')")
        hyperparameters = adam.hyperparameters(chosen["second"], adam.lrs[chosen["lr"]])
        # run alone: the same arithmetic as a population row, up to rounding
        ((expected, result),) = _runner_paths(setting, [("adam", hyperparameters)], population=False)
        drawn = browser.evaluate(f"{root}.playground.path('adam')")
        assert result["status"] == "done" and drawn["end"] == 0
        final = [result["valid"]["x"], result["valid"]["y"]]
        assert (np.abs(np.array(drawn["points"][-1]) - final) <= half + 1e-6).all()

        # "reproduce this path" shows Python that computes that very path
        browser.evaluate(f"{root}.querySelector('[data-name=adam] .pg-reproduce').click()")
        code = browser.evaluate(f"{root}.querySelector('.pg-call').textContent")
        assert f"optim.Adam(model.parameters(), lr={adam.lrs[chosen['lr']]!r}" in code
        scope: dict = {}
        exec(code, scope)
        assert np.abs(np.array(scope["path"]) - expected).max() < 1e-9

        # the noise box and the surface picker show the other variants' paths, from their own starts
        def switch(selector: str, value: str) -> dict:
            browser.evaluate(f"(() => {{ const e = {root}.querySelector('{selector}'); "
                             f"if (e.type === 'checkbox') e.checked = {value}; else e.value = '{value}';"
                             "e.dispatchEvent(new Event('change')); })()")
            assert browser.evaluate(f"{root}.playground.ready()")
            return browser.evaluate(f"{root}.playground.path('adam')")

        noisy = switch(".pg-noise", "true")
        assert noisy["points"][0] == drawn["points"][0] and noisy["points"] != drawn["points"]
        assert switch(".pg-view", "saddle")["points"][0] != drawn["points"][0]
        assert switch(".pg-noise", "false")["points"][0] != drawn["points"][0]  # the saddle has no noisy variant
        assert browser.evaluate(f"{root}.querySelector('.pg-noise').disabled")
        assert switch(".pg-view", "beale")["points"] == drawn["points"]

        # a slider move redraws the path
        canvas = f"{root}.querySelector('canvas').toDataURL()"
        before, picture = drawn["points"], browser.evaluate(canvas)
        browser.evaluate(f"(() => {{ const s = {root}.querySelector('[data-name=adam] .pg-lr');"
                         "s.value = +s.value === 0 ? 1 : 0; s.dispatchEvent(new Event('input')); })()")
        assert browser.evaluate(f"{root}.playground.path('adam')")["points"] != before
        assert browser.evaluate(canvas) != picture

        # play advances all paths together; step moves one step
        browser.evaluate(f"(() => {{ const t = {root}.querySelector('.pg-time'); t.value = 0;"
                         "t.dispatchEvent(new Event('input')); })()")
        assert browser.evaluate(f"{root}.dataset.step") == "0"
        browser.evaluate(f"{root}.querySelector('.pg-play').click()")
        browser.evaluate("new Promise(done => setTimeout(done, 500))")
        browser.evaluate(f"{root}.querySelector('.pg-play').click()")  # pause
        shown = int(browser.evaluate(f"{root}.dataset.step"))
        assert shown > 0
        browser.evaluate(f"{root}.querySelector('.pg-step').click()")
        assert int(browser.evaluate(f"{root}.dataset.step")) == shown + 1
        assert "loss" in browser.evaluate(f"{root}.querySelector('[data-name=sgd] .pg-state').textContent")

        # sgd's largest lr stops: at the last step, its row says where, and the cross lies on the plot
        browser.evaluate(f"(() => {{ const s = {root}.querySelector('[data-name=sgd] .pg-lr'); s.value = s.max;"
                         "s.dispatchEvent(new Event('input'));"
                         f"const t = {root}.querySelector('.pg-time'); t.value = t.max;"
                         "t.dispatchEvent(new Event('input')); })()")
        end = browser.evaluate(f"{root}.playground.path('sgd')")["end"]
        state = browser.evaluate(f"{root}.querySelector('[data-name=sgd] .pg-state').textContent")
        assert end != 0 and (f"diverged at step {end}" if end > 0 else f"left the plot at step {-end}") in state
        left, top, width, height = data["views"][setting.view.key]["axes"]
        mark = browser.evaluate(f"{root}.playground.mark('sgd')")
        assert left - 1e-6 <= mark[0] <= left + width + 1e-6 and top - 1e-6 <= mark[1] <= top + height + 1e-6
        assert browser.errors() == []


def test_the_command_writes_every_view_with_the_promised_sliders(tmp_path, capsys):
    from descentlab import cli

    out = tmp_path / "site"
    assert cli.main(["playground", "--out", str(out), "--steps", "4", "--optimizers", "sgd,nesterov,adam"]) == 0
    text = (out / "playground.html").read_text(encoding="utf-8")
    assert f"wrote {out / 'playground.html'}" in capsys.readouterr().out
    data = json.loads(text.split('class="playground-data">', 1)[1].split("</script>", 1)[0])
    assert sorted(data["views"]) == sorted(view.key for view in VIEWS)
    assert len(data["variants"]) == 2 * len(VIEWS) and {v["noise"] for v in data["variants"]} == {0.0, 1.0}
    for variant in data["variants"]:
        sliders = {o["name"]: o for o in variant["optimizers"]}
        assert all(len(o["lrs"]) == playground.LR_POINTS for o in sliders.values())
        assert sliders["sgd"]["values"] == [] and sliders["adam"]["second"] == "beta1"
        assert len(sliders["adam"]["values"]) == len(sliders["nesterov"]["values"]) == 7
        assert min(sliders["nesterov"]["values"]) > 0
    with pytest.raises(SystemExit) as stopped:
        cli.main(["playground", "--out", str(out), "--optimizers", "sgd,nope"])
    assert stopped.value.code == 2 and "--optimizers" in capsys.readouterr().err
