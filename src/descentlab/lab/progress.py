"""A study's progress: trials done, running, queued, diverged and failed, and an ETA.

On a terminal it is a live ``rich`` bar; elsewhere (a log, CI) a plain line every 10 s and at the
end. The ETA counts down while a long trial runs: it is the time per finished trial (over this
process's run) times the trials left, less the time since the last one finished, so it never
grows between two finished trials.
"""

from __future__ import annotations

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

    def plan(self, count: int) -> None:
        """``count`` more trials belong to the study (already finished ones included)."""
        self.total += count
        self.update()

    def skip(self, count: int) -> None:
        """``count`` planned trials were found finished in the store."""
        self.done += count
        self.update()

    def submit(self, count: int) -> None:
        self.running += count
        self.update()

    def finish(self, status: str) -> None:
        self.running -= 1
        self.done += 1
        self.ran += 1
        self.last_finish = time.perf_counter()
        self.diverged += status == "diverged"
        self.failed += status == "failed"
        self.update()

    def eta(self) -> float | None:
        """Seconds left, or None before this process has finished a trial."""
        if not self.ran:
            return None
        per_trial = (self.last_finish - self.started) / self.ran
        return max(0.0, per_trial * (self.total - self.done) - (time.perf_counter() - self.last_finish))

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
