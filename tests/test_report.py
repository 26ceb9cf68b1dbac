"""The report: a tiny study's page is self-contained and works without data, replayed surface
paths are the stored runs, and the page works in a real headless Chromium."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys

import pytest
from PIL import Image, ImageStat

from descentlab.lab import OPTIMIZERS, Study, run_study
from descentlab.report import frames, style, trajectories, write_report


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> str:
    """A surface and a real (data-free) problem, two optimizers, two seeds."""
    db = str(tmp_path_factory.mktemp("store") / "tiny.sqlite")
    study = Study(problems=["beale", "quadratic"], optimizers=["momentum", "adam"], grid=3, span=2.0, seeds=2,
                  steps=40, name="tiny")
    with open(os.devnull, "w") as quiet:
        run_study(study, db=db, progress_stream=quiet)
    return db


@pytest.fixture(scope="module")
def report(tiny_store, tmp_path_factory) -> str:
    """``descentlab report`` of the tiny study, run with no dataset anywhere it could look."""
    empty = tmp_path_factory.mktemp("no-data")
    out = tmp_path_factory.mktemp("report")
    env = {**os.environ, "DESCENTLAB_DATA": str(empty), "DESCENTLAB_CACHE": str(empty), "DESCENTLAB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "descentlab", "report", "--db", tiny_store, "--out", str(out)],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    path = out / "report.html"
    assert f"report: {path}" in done.stdout
    return str(path)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag, attrs):
        self.links += [(tag, name, value) for name, value in attrs if name in ("src", "href")]


def test_the_report_embeds_every_image_and_loads_nothing(report):
    text = pathlib.Path(report).read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(text)
    images = [value for tag, name, value in parser.links if value.startswith("data:")]
    assert all(value.startswith(("data:", "#")) for _, _, value in parser.links), \
        [value[:80] for _, _, value in parser.links if not value.startswith(("data:", "#"))]
    assert "url(" not in text and "@import" not in text
    kinds = set()
    for value in images:
        header, encoded = value.split(",", 1)
        kind = header.removeprefix("data:image/").removesuffix(";base64")
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        image.load()  # decodes every byte: a truncated or corrupt picture raises
        assert image.format.lower() == kind and image.width > 0 and image.height > 0
        kinds.add(kind)
    # beale: paths, race background, its GIF; both problems: sensitivity; quadratic: curves; the profile
    assert kinds == {"png", "gif"} and len(images) == 7
    order = [text.index(f'id="{section}"') for section in ("verdict", "problem-beale", "problem-quadratic",
                                                             "provenance")]
    assert order == sorted(order)
    assert "not a benchmark" in text and "The lr was tuned" in text


def test_run_with_report_writes_the_page(tmp_path):
    db, out = tmp_path / "r.sqlite", tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "descentlab", "run", "--problems", "saddle", "--optimizers",
                           "sgd,adam", "--grid", "2", "--seeds", "1", "--steps", "20", "--db", str(db),
                           "--out", str(out), "--report"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"report: {out / 'report.html'}")
    assert (out / "report.html").stat().st_size > 0


def test_a_report_draws_every_lab_optimizer_in_its_own_colour(tmp_path):
    # a race on a surface draws every path with Pillow, which takes only a colour it can parse
    db = str(tmp_path / "all.sqlite")
    study = Study(problems=["beale"], optimizers=list(OPTIMIZERS), grid=2, span=1.0, seeds=1, steps=10, name="all")
    with open(os.devnull, "w") as quiet:
        run_study(study, db=db, progress_stream=quiet)
    text = pathlib.Path(write_report(db, out=str(tmp_path))).read_text(encoding="utf-8")
    colours = [style.colour(name) for name in OPTIMIZERS]
    assert len(set(colours)) == len(OPTIMIZERS) and all(re.fullmatch("#[0-9a-f]{6}", c) for c in colours)
    assert all(f'<i style="background:{style.colour(name)}"></i>{name}<' in text for name in OPTIMIZERS)
    assert "data:image/gif" in text


def test_the_report_of_an_unfinished_study_says_what_is_missing(tiny_store, tmp_path):
    copy = str(tmp_path / "unfinished.sqlite")
    shutil.copy(tiny_store, copy)
    with sqlite3.connect(copy) as db:
        db.execute("DELETE FROM choices")  # as while a study is still tuning
    text = pathlib.Path(write_report(copy, out=str(tmp_path))).read_text(encoding="utf-8")
    assert text.count("has not chosen this problem's learning rates") == 2 and "data:image" not in text


def test_report_of_a_missing_study_is_an_argument_error(tiny_store):
    done = subprocess.run([sys.executable, "-m", "descentlab", "report", "--db", tiny_store, "--study", "9"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "--study" in done.stderr and "9" in done.stderr


def test_a_replayed_path_ends_at_the_stored_final_point(tiny_store, tmp_path):
    study = frames.load(tiny_store)
    chosen = list(study.chosen["beale"].values())
    paths = trajectories.replay(chosen, population=True)
    for trial, path in zip(chosen, paths, strict=True):
        assert trial["status"] == "done"
        assert len(path.points) == trial["steps"] + 1  # every step, where the store kept every eval_every-th
        assert path.points[-1] == pytest.approx([trial["valid"]["x"], trial["valid"]["y"]], abs=1e-12)
        assert path.checked == len(trial["curve"]) + 1 and path.deviation <= trajectories.REPLAY_TOLERANCE
    # the check sees a stored point that the replay does not reach
    copy = str(tmp_path / "moved.sqlite")
    shutil.copy(tiny_store, copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE trials SET valid = json_set(valid, '$.x', json_extract(valid, '$.x') + 0.01) "
                   "WHERE key = ?", (chosen[0]["key"],))
    moved = trajectories.replay(list(frames.load(copy).chosen["beale"].values())[:1], population=True)[0]
    assert moved.deviation == pytest.approx(0.01, rel=1e-3)


def test_a_replay_one_trial_at_a_time_matches_the_population_run(tiny_store):
    chosen = list(frames.load(tiny_store).chosen["beale"].values())
    for alone, together in zip(trajectories.replay(chosen, population=False),
                               trajectories.replay(chosen, population=True), strict=True):
        assert alone.deviation <= trajectories.REPLAY_TOLERANCE
        assert alone.points == pytest.approx(together.points, abs=1e-5)


def test_the_page_works_in_headless_chromium(chromium, report, tmp_path):
    from browser import Chromium

    with Chromium(chromium, str(tmp_path / "profile")) as browser:
        browser.open("file://" + report)
        sizes = browser.evaluate("Promise.all([...document.images].map(i => i.decode().then("
                                 "() => [i.naturalWidth, i.getBoundingClientRect().width, "
                                 "i.getBoundingClientRect().height])))")
        assert len(sizes) == 6 and all(natural > 0 and width > 0 and height > 0 for natural, width, height in sizes)
        assert browser.evaluate("document.querySelector('.race').dataset.frame") == "0"
        # the study's surface playground: its paths decode and draw
        assert browser.evaluate("document.querySelector('.playground').playground.ready()")
        assert browser.evaluate("document.querySelector('.playground [data-name=adam] .pg-lr').max") == "24"
        browser.evaluate("document.querySelector('.race button').click()")
        browser.evaluate("new Promise(done => setTimeout(done, 600))")
        frame = int(browser.evaluate("document.querySelector('.race').dataset.frame"))
        assert frame > 0
        # the paths are drawn: some canvas pixels are painted
        painted = browser.evaluate("(() => { const c = document.querySelector('.race canvas');"
                                   "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                                   "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; })()")
        assert painted > 100
        # the slider moves the race too, and pauses it
        last = browser.evaluate("(() => { const s = document.querySelector('.race input'); s.value = s.max;"
                                "s.dispatchEvent(new Event('input')); return +s.max; })()")
        assert int(browser.evaluate("document.querySelector('.race').dataset.frame")) == last
        assert browser.evaluate("document.querySelector('.race button').textContent") == "play"
        shot = Image.open(io.BytesIO(browser.screenshot())).convert("L")
        assert shot.width > 0 and ImageStat.Stat(shot).stddev[0] > 10  # not a blank page
        assert browser.errors() == []
