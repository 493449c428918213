"""The search's progress on stderr: a live bar on a terminal, else plain lines.

The best so far is shown as its reward and what the reward was computed from (the
validation accuracy, or a language model's perplexity). Without a terminal, `say`
prints what the search is doing before its first step ends (data loaded, workers
starting), then a line per step.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click


def live_bar(enabled: bool) -> bool:
    """Whether the progress is a live bar (a terminal) rather than plain lines."""
    return enabled and sys.stderr.isatty()


class SearchProgress:
    """A live progress bar (trials done, best reward, ETA) on a terminal, else a line per step."""

    def __init__(
        self, total: int, done: int, best: Any, *, enabled: bool, unit: str = "step"
    ) -> None:
        self.unit = unit  # "round" for the Ray backend's replica rounds
        self.total = total
        self.done = done
        self.best = best  # the best trial stored so far (a TrialRecord), or None
        self.live = live_bar(enabled)
        self.rewards: list[float] = []
        self.began = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> SearchProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("search"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("best {task.fields[best]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                "search", total=self.total, completed=self.done, best=self._best_text()
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def _best_text(self) -> str:
        from ..search.report import validation_text

        if self.best is None:
            return "-"
        return f"{self.best.reward:.4f} ({validation_text(self.best.metrics)})"

    def say(self, line: str) -> None:
        """Print `line` when the progress is plain lines (a live bar shows the state)."""
        if not self.live:
            click.echo(line, err=True)

    def trial(self, record: Any) -> None:
        self.done += 1
        self.rewards.append(record.reward)
        if record.status == "ok" and (self.best is None or record.reward > self.best.reward):
            self.best = record
        if len(self.rewards) == 1:  # the first result of this run: the workers are up
            elapsed = time.perf_counter() - self.began
            self.say(f"first trial done ({record.status}) after {elapsed:.0f} s")
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, best=self._best_text())

    def step(self, step: int, stats: dict[str, float]) -> None:
        if self.live:
            return
        recent = self.rewards[-20:]
        mean = sum(recent) / len(recent) if recent else float("nan")
        elapsed = time.perf_counter() - self.began
        click.echo(
            f"{self.unit} {step}: {self.done}/{self.total} trials, best {self._best_text()}, "
            f"mean of the last {len(recent)} {mean:.4f}, {elapsed:.0f} s",
            err=True,
        )
