"""Every table the lab shows, built once as data and rendered for the terminal (rich), Markdown or HTML.

A :class:`Table` holds text cells; ``problem_table``, ``profile_table``, ``verdict_table`` and
``leaderboard_table`` build them from a summary, and ``render`` draws them in any style.
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from descentlab.lab.records import Duel, ProblemTable, Row, Summary, VerdictRow

WIDTH = 160  # terminal tables wider than this wrap their cells


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    right: set[int] = field(default_factory=set)  # right-aligned (numeric) columns
    notes: list[str] = field(default_factory=list)


def number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}"


def interval(bounds) -> str:
    return "" if bounds is None else f"[{number(bounds[0])}, {number(bounds[1])}]"


def problem_table(label: str, table: ProblemTable) -> Table:
    """One problem's ranking: lr and bracket, test metric with its interval, selection metric,
    paired wins over the next row, steps and seconds to the target, divergences."""
    metric, goal = table["metric"], table["goal"]
    arrow = "≤" if goal == "min" else "≥"
    target = f"; target {metric} {arrow} {number(table['target'])}" if table["target"] is not None else ""
    columns = ["rank", "optimizer", "lr", "bracketed", f"test {metric} (95% CI)", f"valid {metric}",
               "beats next", "steps→target", "s→target", "diverged"]
    rows = [_problem_row(row) for row in table["rows"]]
    return Table(f"{label}: {table['description']} ({goal} {metric}){target}", columns, rows,
                 {0, 2, 4, 5, 6, 7, 8, 9}, _problem_notes(table))


def _problem_row(row: Row) -> list[str]:
    """One optimizer's cells in its problem's ranking."""
    test = number(row["test_mean"])
    if row["seeds_lost"]:
        test += f" ({row['seeds'] - row['seeds_lost']}/{row['seeds']} seeds)"
    else:
        test += " " + interval(row["test_ci"])
    won = row.get("beats_next")
    rank = "—" if row["rank"] is None else str(row["rank"])
    return [rank, row["optimizer"], f"{row['lr']:.3g}", _bracket(row), test,
            number(row["valid_mean"]), f"{won[0]}/{won[1]}" if won else "",
            _time(row["steps_to_target"], "{:g}"), _time(row["seconds_to_target"], "{:.2f}"),
            str(row["diverged"])]


def _problem_notes(table: ProblemTable) -> list[str]:
    """The notes under a problem's ranking: an unfinished problem, an lr left at an edge, shared clocks."""
    notes = []
    progress = table.get("progress")
    if progress and not progress["complete"]:
        notes.append(f"INCOMPLETE: {progress['finished']} trials finished, {progress['running']} running now"
                     + (f", {progress['abandoned']} left running by a process that is gone (rerun to redo them)"
                        if progress["abandoned"] else "") + "; nothing is ranked until every optimizer is tuned "
                     "and confirmed on every seed")
    if any(row["bracket"] == "edge" for row in table["rows"]):
        notes.append("edge: the best lr is still at an edge of its grid after every extension allowed (--extend)")
    if table["population"]:
        notes.append("seconds are each trial's share of a population run")
    return notes


def _bracket(row: Row) -> str:
    extended = f" (+{row['extended']})" if row["extended"] else ""
    return {"interior": "yes", "edge": "EDGE", "single": "—"}[row["bracket"]] + extended


def _time(value: float | None, style: str) -> str:
    if value is None:
        return "—"
    return "never" if math.isinf(value) else style.format(value)


def profile_table(profile: dict) -> Table | None:
    """The AlgoPerf scores from steps and from seconds, with ρ(1): the share of problems an
    optimizer reached the target first."""
    steps, seconds = profile["steps"], profile["seconds"]
    names = sorted(steps["scores"], key=lambda n: -steps["scores"][n])
    if not names or not steps["problems"]:
        return None
    rows = []
    for name in names:
        fastest = sum(r <= 1.0 for r in steps["ratios"][name].values())
        rows.append([name, number(steps["scores"][name], 3), number(seconds["scores"].get(name), 3),
                     f"{fastest}/{len(steps['problems'])}"])
    return Table(f"performance profile over {len(steps['problems'])} problems (AlgoPerf score B, r_max "
                 f"{steps['r_max']:g}; seconds over {len(seconds['problems'])} problems run alone)",
                 ["optimizer", "B (steps)", "B (seconds)", "fastest to target"], rows, {1, 2, 3},
                 ["B = 1/(r_max−1) ∫₁^r_max ρ(τ) dτ, ρ(τ) = share of problems reached within τ × the fastest "
                  "optimizer's time; 1 = fastest everywhere, 0 = never within r_max"])


def verdict_table(rows: list[VerdictRow]) -> Table | None:
    """One row per claim of the talk: our evidence, paired wins, and the outcome of the rule."""
    if not rows:
        return None
    return Table("the talk's claims, tested (rule: 95% bootstrap interval of the paired test-metric "
                 "difference between the claim's champion and the best other; see docs/lab.md)",
                 ["claim", "our result (test metric, 95% CI)", "seeds won", "outcome"],
                 [_verdict_cells(row) for row in rows], {2})


def _verdict_cells(row: VerdictRow) -> list[str]:
    """One claim's cells: the claim, our evidence, the seeds won, the outcome."""
    if "everywhere" in row:
        return [row["claim"], _no_best_evidence(row), "", row["outcome"]]
    evidence = "; ".join(_duel(duel) for duel in row["evidence"])
    won = ", ".join(f"{d['wins']}/{d['seeds']}" for d in row["evidence"])
    return [row["claim"], evidence, won, row["outcome"]]


def _no_best_evidence(row: VerdictRow) -> str:
    """The evidence on "no optimizer wins everywhere": the best on each task, then who beat every
    other optimizer everywhere, or who was never beaten."""
    evidence = "; ".join(f"{problem}: best {_best_of(row, problem)}" for problem in row["problems"])
    if row["everywhere"]:
        evidence += f"; {', '.join(row['everywhere'])} significantly beat every other optimizer everywhere"
    elif row["unbeaten"]:
        evidence += f"; never significantly beaten: {', '.join(row['unbeaten'])}"
    else:
        evidence += "; every optimizer significantly beaten by another on at least one task"
    return evidence


def _best_of(row: VerdictRow, problem: str) -> str:
    ranked = {d["ours"]: d for d in row["evidence"] if d["problem"] == problem}
    best = min(ranked.values(), key=lambda d: -_oriented(d["ours_mean"], d["goal"]), default=None)
    return "—" if best is None else f"{best['ours']} {number(best['ours_mean'])}"


def _oriented(value, goal):
    return -math.inf if value is None else (value if goal == "max" else -value)


def _duel(duel: Duel) -> str:
    return (f"{duel['problem']}: {duel['ours']} {number(duel['ours_mean'])} {interval(duel['ours_ci'])} vs "
            f"{duel['theirs']} {number(duel['theirs_mean'])} {interval(duel['theirs_ci'])}, "
            f"Δ {number(duel['difference'], 3)} {interval(duel['difference_ci'])}")


def duel_table(label: str, table: ProblemTable) -> Table | None:
    """One problem's verdict by the lab's rule: its champion on validation against each other
    optimizer, on the test metric paired by seed (:func:`verdict.duels`)."""
    from descentlab.lab import verdict

    if not table.get("progress", {}).get("complete", True):
        return None
    rows = [[verdict.sentence(d), f"{number(d['difference'])} {interval(d['difference_ci'])}",
             f"{d['wins']}/{d['seeds']}"] for d in verdict.duels(label, table)]
    if not rows:
        return None
    return Table(f"{label}: the champion on validation against each other optimizer, on test",
                 ["verdict", f"paired test {table['metric']} difference (95% CI)", "seeds won"], rows, {1, 2},
                 ["a winner is named only when the interval excludes 0; positive: the champion is better"])


def leaderboard_table(summary: Summary) -> Table | None:
    """Each optimizer's rank on every ranked (complete) problem (by mean test metric, a lost seed
    ranking last) and its mean rank, best first."""
    labels = [label for label, table in summary["problems"].items()
              if table["rows"] and table["rows"][0]["rank"] is not None]
    ranks: dict[str, dict[str, int]] = {}
    for label in labels:
        for row in summary["problems"][label]["rows"]:
            if row["rank"] is not None:  # a ranked table ranks every row
                ranks.setdefault(row["optimizer"], {})[label] = row["rank"]
    if not ranks:
        return None
    means = {name: sum(mine.values()) / len(mine) for name, mine in ranks.items()}
    rows = [[name, *(str(ranks[name].get(label, "—")) for label in labels), f"{means[name]:.2f}"]
            for name in sorted(ranks, key=lambda name: (means[name], name))]
    return Table(f"leaderboard: rank on each of {len(labels)} problems (1 = best mean test metric)",
                 ["optimizer", *labels, "mean rank"], rows, set(range(1, len(labels) + 2)),
                 ["a rank alone says nothing of the margin: the per-problem tables give the intervals"])


def summary_tables(summary: Summary) -> list[Table]:
    tables = [problem_table(label, table) for label, table in summary["problems"].items()]
    return [t for t in (*tables, profile_table(summary["profile"]), verdict_table(summary["verdict"])) if t]


def render(tables: list[Table], style: str = "text", width: int = WIDTH) -> str:
    """The tables as terminal text (``"text"``), GitHub Markdown (``"markdown"``) or HTML (``"html"``)."""
    if style == "markdown":
        return "\n\n".join(_markdown(table) for table in tables)
    if style == "html":
        return "\n".join(_html(table) for table in tables)
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None, legacy_windows=False)
    for table in tables:
        console.print(table.title, highlight=False)
        rich = RichTable(box=box.SIMPLE_HEAD)
        for index, column in enumerate(table.columns):
            rich.add_column(column, justify="right" if index in table.right else "left")
        for row in table.rows:
            rich.add_row(*row)
        console.print(rich)
        for note in table.notes:
            console.print(note, highlight=False)
        console.print()
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()).strip("\n")


def _markdown(table: Table) -> str:
    def escape(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = [f"**{escape(table.title)}**", "", "| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---:" if i in table.right else "---" for i in range(len(table.columns))) + "|"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in table.rows]
    lines += [""] + [f"*{escape(note)}*" for note in table.notes] if table.notes else []
    return "\n".join(lines)


def _html(table: Table) -> str:
    def cell(tag: str, index: int, text: str) -> str:
        numeric = ' class="num"' if index in table.right else ""
        return f"<{tag}{numeric}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", i, column) for i, column in enumerate(table.columns))
    body = "".join("<tr>" + "".join(cell("td", i, text) for i, text in enumerate(row)) + "</tr>\n"
                   for row in table.rows)
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in table.notes)
    return (f"<table><caption>{html.escape(table.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{body}</tbody></table>{notes}")


def format_summary(summary: Summary, style: str = "text") -> str:
    study = summary["study"]
    head = f"study {study['id']} ({study['name']})"
    if not summary["complete"]:
        resume = study["meta"].get("command")
        head += (": INCOMPLETE, rankings only for finished problems"
                 + (f"; not started: {', '.join(summary['missing'])}" if summary["missing"] else "")
                 + (f". Resume with: {resume}" if resume else ""))
    return head + "\n\n" + render(summary_tables(summary), style)
