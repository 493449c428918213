"""The search's progress on stderr: a live bar on a terminal, else a line per step."""

from __future__ import annotations

import sys
import time
from typing import Any

import click


class SearchProgress:
    """A live progress bar (trials done, best reward, ETA) on a terminal, else a line per step."""

    def __init__(
        self, total: int, done: int, best: float | None, *, enabled: bool, unit: str = "step"
    ) -> None:
        self.unit = unit  # "round" for the Ray backend's replica rounds
        self.total = total
        self.done = done
        self.best = best  # the best reward stored so far
        self.live = enabled and sys.stderr.isatty()
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
        return "-" if self.best is None else f"{self.best:.4f}"

    def trial(self, record: Any) -> None:
        self.done += 1
        self.rewards.append(record.reward)
        if record.status == "ok" and (self.best is None or record.reward > self.best):
            self.best = record.reward
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
