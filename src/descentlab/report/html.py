"""The report as one self-contained HTML page: every figure embedded (base64 PNG and GIF), the race
player in a few lines of inline JavaScript, nothing loaded from another host.

Sections: the verdict first (the talk's claims, the leaderboard, the performance profile), then
each problem (its table and figures), then the provenance (study, budgets, data, versions).
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
from collections import Counter

import descentlab
from descentlab.lab import tables
from descentlab.lab.records import ProblemTable
from descentlab.lab.tables import Table
from descentlab.report import style
from descentlab.report.frames import Frames, data_files
from descentlab.report.trajectories import REPLAY_TOLERANCE

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 1240px; margin: 0 auto; padding: 0 1.2em 3em; }
h1 { font-size: 1.6em; margin-top: 1.2em; } h2 { border-top: 1px solid #ccc; padding-top: 1em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0 0.3em; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note, figcaption, .muted { color: #555; font-size: 13px; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; display: block; }
.pair img { width: 100%; height: auto; display: block; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em; }
.stage { position: relative; } .stage canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
.controls { display: flex; gap: 0.6em; align-items: center; margin-top: 0.3em; }
.controls input { flex: 1; } .key span { display: inline-block; margin-right: 1em; white-space: nowrap; }
.key i { display: inline-block; width: 1.6em; height: 0.35em; vertical-align: middle; margin-right: 0.3em; }
.warning { color: #a00; font-weight: 600; } code { font-size: 12px; word-break: break-all; }
"""

# The race player: frame k draws every path up to its k-th shown step over the background
# picture (the paths' pixel coordinates come with the page), clipped to the plot area.
SCRIPT = """
document.querySelectorAll(".race").forEach(function (race) {
  var data = JSON.parse(race.querySelector("script").textContent);
  var canvas = race.querySelector("canvas"), slider = race.querySelector("input");
  var button = race.querySelector("button"), label = race.querySelector(".step");
  var box = data.axes, last = data.steps.length - 1, timer = null;
  canvas.width = data.size[0]; canvas.height = data.size[1];
  slider.max = last;
  function draw(k) {
    var context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.save(); context.beginPath(); context.rect(box[0], box[1], box[2], box[3]); context.clip();
    data.paths.forEach(function (path) {
      context.strokeStyle = path.colour; context.fillStyle = path.colour; context.lineWidth = 2;
      context.beginPath();
      for (var i = 0; i <= k; i++) {
        var p = path.points[i];
        if (i === 0) context.moveTo(p[0], p[1]); else context.lineTo(p[0], p[1]);
      }
      context.stroke();
      var head = path.points[k];
      context.beginPath(); context.arc(head[0], head[1], 4.5, 0, 2 * Math.PI); context.fill();
      context.strokeStyle = "black"; context.lineWidth = 1; context.stroke();
    });
    context.restore();
    slider.value = k; race.dataset.frame = k;
    label.textContent = "step " + data.steps[k] + " / " + data.steps[last];
  }
  function stop() { clearInterval(timer); timer = null; button.textContent = "play"; }
  button.addEventListener("click", function () {
    if (timer) { stop(); return; }
    if (+slider.value >= last) draw(0);
    button.textContent = "pause";
    timer = setInterval(function () { var k = +slider.value + 1; draw(Math.min(k, last)); if (k >= last) stop(); },
                        Math.max(10, 6000 / last));
  });
  slider.addEventListener("input", function () { stop(); draw(+slider.value); });
  draw(0);
});
"""


def page(frames: Frames, figures: dict, profile: bytes | None, playground: str | None = None) -> str:
    """The whole page: ``figures`` maps each problem label to its :class:`ProblemFigures`;
    ``playground``: the surface playground's section, if the study has surfaces."""
    study = frames.study
    title = f"descentlab report: study {study['id']} ({study['name']})"
    body = [f"<h1>{_text(title)}</h1>", _intro(frames), _contents(frames, bool(playground)), _verdict(frames, profile)]
    body += [_problem(frames, label, figures[label]) for label in frames.problems]
    body += [playground] if playground else []
    body.append(_provenance(frames, figures))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_text(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body)
            + f"\n<script>{SCRIPT}</script>\n</body></html>\n")


def _text(value) -> str:
    return html.escape(str(value))


def _image(data: bytes, alt: str, kind: str = "png") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/{kind};base64,{encoded}" alt="{_text(alt)}">'


def _figure(data: bytes, alt: str, caption: str) -> str:
    return f"<figure>{_image(data, alt)}<figcaption>{caption}</figcaption></figure>"


def _anchor(label: str) -> str:
    return "problem-" + "".join(c if c.isalnum() else "-" for c in label)


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _tuning(spec: dict, metric: str) -> str:
    """How every learning rate on the page was chosen, in one sentence."""
    return (f"The lr was tuned for each optimizer alike, on seed 0: a log grid of {spec['grid']} points over "
            f"{spec['span']:g} decades centred on the optimizer's default lr, extended by the same step while "
            f"the best lr sat at an edge (up to {spec['extend']} more points); the lr with the best final "
            f"validation {_text(metric)} was chosen, then run on {spec['seeds']} seeds.")


def _intro(frames: Frames) -> str:
    study, spec = frames.study, frames.study["spec"]
    statuses = Counter(t["status"] for t in frames.trials)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    key = "".join(f'<span><i style="background:{style.colour(name)}"></i>{_text(name)}</span>'
                  for name in spec["optimizers"])
    incomplete = ""
    if not frames.summary["complete"]:
        missing = frames.summary["missing"]
        incomplete = ('<p class="warning">This study is incomplete: the rankings, the profile and the verdict '
                      "cover only its finished problems"
                      + (f"; not started: {_text(', '.join(missing))}" if missing else "")
                      + f". Resume it with <code>{_text(study['meta'].get('command', 'its command'))}</code>.</p>")
    host = study["meta"].get("host", "an unrecorded host")
    return (f"{incomplete}<p>Started {_when(study['created'])} on {_text(host)}: "
            f"{len(frames.problems)} problems × {len(spec['optimizers'])} optimizers, {len(frames.trials)} trials "
            f"({counts}). Everything here is read from the results store "
            f"<code>{_text(os.path.basename(frames.path))}</code>. Each optimizer keeps one colour in every "
            f'figure:</p><p class="key">{key}</p>')


def _contents(frames: Frames, playground: bool = False) -> str:
    links = ['<a href="#verdict">verdict</a>']
    links += [f'<a href="#{_anchor(label)}">{_text(label)}</a>' for label in frames.problems]
    links += ['<a href="#playground">playground</a>'] if playground else []
    links.append('<a href="#provenance">provenance</a>')
    return "<p>Contents: " + " · ".join(links) + "</p>"


def _verdict(frames: Frames, profile: bytes | None) -> str:
    summary = frames.summary
    built = [tables.verdict_table(summary["verdict"]), tables.leaderboard_table(summary),
             tables.profile_table(summary["profile"])]
    parts = ['<h2 id="verdict">Verdict</h2>', tables.render([t for t in built if t], "html")]
    if not summary["verdict"]:
        parts.append('<p class="muted">None of the talk\'s claims can be tested on this study\'s problems.</p>')
    if profile is not None:
        parts.append(_figure(profile, "performance profile",
                             "ρ(τ): the share of problems on which an optimizer reached the problem's target "
                             "within τ times the fastest optimizer's steps (left) or seconds (right; problems run "
                             "alone only). The target is the median over optimizers of their final validation "
                             "value. B is the area under ρ over [1, r_max], scaled to [0, 1] (AlgoPerf)."))
    return "\n".join(parts)


def _problem(frames: Frames, label: str, figures) -> str:
    table = frames.problems[label]
    parts = _problem_tables(label, table)
    if figures.sensitivity is None:
        parts.append('<p class="warning">No figures: the study has not chosen this problem\'s learning rates '
                     "yet (it is unfinished; rerunning its command resumes it).</p>")
        return "\n".join(parts)
    tuning = _tuning(frames.study["spec"], table["metric"])
    return "\n".join(parts + _problem_figures(label, table, figures, tuning))


def _problem_tables(label: str, table: ProblemTable) -> list[str]:
    """A problem's heading, its description and its tables (the rows, and the duels where there are any)."""
    batch = table["batch_size"] or "full"
    parts = [f'<h2 id="{_anchor(label)}">{_text(label)}</h2>',
             (f"<p>{_text(table['description'])}. Metric: {_text(table['metric'])} ({table['goal']}imize); "
              f"{table['steps']} steps of batch {batch}, validated every {table['eval_every']} steps. "
              f"Data: {_text(table['provenance'])}.</p>"),
             tables.render([tables.problem_table(label, table)], "html")]
    duels = tables.duel_table(label, table)
    if duels is not None:
        parts.append(tables.render([duels], "html"))
    return parts


def _problem_figures(label: str, table: ProblemTable, figures, tuning: str) -> list[str]:
    """A problem's figures with their captions: the surface's paths and race, the clipping picture,
    the training curves, the lr sensitivity (each where the problem has it)."""
    parts = []
    if figures.surface is not None:
        parts.append(_surface(label, table, figures.surface, tuning))
    if figures.clipping is not None:
        parts.append(_figure(figures.clipping, f"{label} with and without clipping",
                             "With and without clipping, seed 0 replayed from the store: left, each at its own "
                             "tuned lr; right, all at the tuned lr of the best clipped variant (by validation; "
                             "each at the nearest lr of its grid), where the paths differ only by the clipping. "
                             "The verdict's row “clipping deals with exploding gradients” pairs the "
                             "same two contestants on every seed."))
    if figures.curves is not None:
        parts.append(_figure(figures.curves, f"{label} training curves",
                             "Validation metric on the problem's fixed validation subset, every "
                             f"{table['eval_every']} steps, of each optimizer at its tuned lr. " + tuning))
    parts.append(_figure(figures.sensitivity, f"{label} lr sensitivity",
                         "Final validation metric at every lr tried on seed 0, one line per optimizer; filled "
                         "dots are the initial grid, hollow ones the extensions, × a diverged run (the worst "
                         "score), the ring the chosen lr. A chosen lr with a worse point on each side is "
                         "bracketed."))
    return parts


def _surface(label: str, table: ProblemTable, surface, tuning: str) -> str:
    race = surface.race
    worst = max((path.deviation for path in race.paths), default=0.0)
    checked = sum(path.checked for path in race.paths)
    match = "exactly" if worst == 0 else f"to within {worst:.1g}"
    replayed = (f"Paths are the stored seed-0 runs replayed at every step (the store keeps every "
                f"{table['eval_every']}th); the replays match the {checked} stored points {match}.")
    if worst > REPLAY_TOLERANCE:
        replayed = (f'<span class="warning">The replays differ from the stored runs by up to {worst:.3g}: '
                    f"these paths are not the runs that were scored.</span>")
    caption = (f"An illustration with tuned learning rates, not a benchmark: one run per optimizer from the "
               f"start (○) towards the minimum (★), on the surface's contours (log-spaced levels). {tuning} "
               f"{replayed}")
    data = json.dumps(race.player(), separators=(",", ":")).replace("</", "<\\/")
    gif = base64.b64encode(surface.gif).decode("ascii")
    return (f'<div class="pair">{_image(surface.picture, f"{label} paths")}'
            f'<div class="race"><div class="stage">{_image(race.background, f"{label} race")}<canvas></canvas></div>'
            f'<div class="controls"><button type="button">play</button><input type="range" min="0" value="0" '
            f'aria-label="step"><span class="step"></span></div><script type="application/json">{data}</script>'
            f'<p class="muted">The race, step by step (play, pause, or drag the slider); also as '
            f'<a download="{_text(label)}-race.gif" href="data:image/gif;base64,{gif}">a GIF</a> '
            f"({len(surface.gif) // 1024} KB).</p></div></div><p class=\"muted\">{caption}</p>")


def _provenance(frames: Frames, figures: dict) -> str:
    study, spec, meta = frames.study, frames.study["spec"], frames.study["meta"]
    versions = meta.get("versions", {})
    about = Table("the study", ["", ""], [
        ["command", meta.get("command", "—")], ["started", _when(study["created"])],
        ["host", meta.get("host", "—")], ["platform", meta.get("platform", "—")],
        ["versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "—"],
        ["workers", f"{meta.get('workers', '—')} ({meta.get('executor', '—')} executor)"],
        ["protocol", (f"lr grid {spec['grid']} points over {spec['span']:g} decades, up to {spec['extend']} "
                      f"extensions, {spec['seeds']} seeds, "
                      f"divergence at {spec['divergence_factor']:g}× the first loss")],
    ])
    budgets = Table("budgets", ["problem", "steps", "batch", "validated every", "curve subset", "train examples"],
                    [[label, str(t["steps"]), str(t["batch_size"] or "full"), str(t["eval_every"]),
                      str(t["curve_limit"] or "whole split"), str(t["train_examples"] or "—")]
                     for label, t in frames.problems.items()], {1, 2, 3, 4, 5})
    files = [[label, f["dataset"], f["file"], f["sha256"] or "no trusted checksum known"]
             for label, t in frames.problems.items() for f in data_files(t["provenance"])]
    data = Table("data files read (each checked against its sha256 before use)", ["problem", "dataset", "file",
                                                                                  "sha256"], files,
                 notes=["splits: see each problem's data line above"])
    seen = Counter((t["host"] or "—", json.dumps(t["versions"], sort_keys=True)) for t in frames.trials
                   if t["versions"])
    runs = Table("where the trials ran", ["host", "versions", "trials"],
                 [[host, ", ".join(f"{k} {v}" for k, v in sorted(json.loads(v).items())), str(n)]
                  for (host, v), n in sorted(seen.items())], {2})
    splits = Table("data and splits", ["problem", "provenance"],
                   [[label, t["provenance"]] for label, t in frames.problems.items()])
    written = (f'<p class="muted">Written {_when(datetime.datetime.now().timestamp())} by descentlab '
               f"{_text(descentlab.__version__)} from the store alone; no dataset was read.</p>")
    built = [about, budgets, splits] + ([data] if files else []) + [runs]
    return '<h2 id="provenance">Provenance</h2>\n' + tables.render(built, "html") + written
