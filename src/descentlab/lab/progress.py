"""A study's progress: trials done, running, queued, diverged and failed, and an ETA.

On a terminal it is a live ``rich`` bar; elsewhere (a log, CI) a plain line every 10 s and at the
end. The ETA weighs the trials left on each problem by the mean time of that problem's finished
trials (problems differ by orders of magnitude: a surface trial takes milliseconds, an LSTM
seconds), divides by the trials run at once, and subtracts the time since the last trial
finished: it counts down while a long trial runs, and never grows between two finished trials.
"""

from __future__ import annotations

import statistics
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.text import Text


class Progress:
    """Counts trials as the study submits and finishes them; use as a context manager."""

    def __init__(self, stream=None, capacity: int = 1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.capacity = capacity  # trials the executor runs at once; the rest of the submitted wait
        self.total = self.done = self.running = self.diverged = self.failed = self.ran = 0
        self.left: dict[str, int] = {}  # trials left per problem
        self.seconds: dict[str, list[float]] = {}  # seconds of each problem's trials finished here
        self.started = self.last_finish = time.perf_counter()
        self.console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self.live = self.console.is_terminal
        self.last_line = 0.0
        self.bar = RichProgress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[state]}"), _EtaColumn(self),
                                console=self.console, disable=not self.live, refresh_per_second=4)
        self.task = self.bar.add_task("trials", total=0, state="")

    def __enter__(self) -> Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.update(force=True)
        self.bar.stop()

    def plan(self, count: int, problem: str) -> None:
        """``count`` more trials on ``problem`` belong to the study (already finished ones included)."""
        self.total += count
        self.left[problem] = self.left.get(problem, 0) + count
        self.update()

    def skip(self, problem: str) -> None:
        """A planned trial was found finished in the store."""
        self.done += 1
        self.left[problem] -= 1
        self.update()

    def submit(self, count: int) -> None:
        self.running += count
        self.update()

    def finish(self, status: str, problem: str, seconds: float) -> None:
        self.running -= 1
        self.done += 1
        self.ran += 1
        self.left[problem] -= 1
        self.seconds.setdefault(problem, []).append(seconds)
        self.last_finish = time.perf_counter()
        self.diverged += status == "diverged"
        self.failed += status == "failed"
        self.update()

    def eta(self) -> float | None:
        """Seconds left, or None before this process has finished a trial."""
        if not self.ran:
            return None
        overall = sum(map(sum, self.seconds.values())) / self.ran
        work = sum(left * (statistics.fmean(self.seconds[p]) if p in self.seconds else overall)
                   for p, left in self.left.items())
        return max(0.0, work / self.capacity - (time.perf_counter() - self.last_finish))

    def state(self) -> str:
        running = min(self.running, self.capacity)
        return (f"{running} running, {self.running - running} queued, {self.diverged} diverged, "
                f"{self.failed} failed")

    def line(self) -> str:
        return f"{self.done}/{self.total} done, {self.state()}, ETA {_clock(self.eta())}"

    def update(self, force: bool = False) -> None:
        if self.live:
            self.bar.update(self.task, total=self.total, completed=self.done, state=self.state())
            return
        now = time.perf_counter()
        if force or now - self.last_line >= 10.0:
            self.last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()


class _EtaColumn(ProgressColumn):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task) -> Text:
        return Text(f"ETA {_clock(self.progress.eta())}", style="progress.remaining")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"
