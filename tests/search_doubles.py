"""Test doubles for the search loop's tests: an evaluator that does what its input says,
and a small deterministic strategy that learns from rewards (imported by child processes
of the local pool, so they live in a module, not in a test file)."""

from __future__ import annotations

import itertools
import os
import random
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasforge.controller.strategy import Proposal, Strategy
from nasforge.runtime.search.evaluator import FAILED_REWARD, Evaluator, Outcome
from nasforge.runtime.search.table import TableEvaluator


class ScriptedEvaluator(Evaluator):
    """The architecture text is a command: `ok R` (reward R), `fail`, `raise`, `hang`,
    `exit` (os._exit), `segv` (SIGSEGV), `kill` (SIGKILL), `sleep S R`, `meet HERE THERE R`
    (create the file HERE, wait for the file THERE, reward R: two trials that meet each
    other finish only if they run at the same time)."""

    name = "scripted"

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        word, *args = arch.split()
        if word == "ok":
            return Outcome(status="ok", reward=float(args[0]), metrics={"seed": seed}, seconds=0.0)
        if word == "sleep":
            time.sleep(float(args[0]))
            return Outcome(status="ok", reward=float(args[1]), seconds=float(args[0]))
        if word == "meet":
            here, there, reward = args
            Path(here).touch()
            while not Path(there).exists():
                time.sleep(0.01)
            return Outcome(status="ok", reward=float(reward))
        if word == "fail":
            return Outcome(status="failed", reward=FAILED_REWARD, error="scripted failure")
        if word == "raise":
            raise RuntimeError("scripted bug")
        if word == "hang":
            time.sleep(3600)
        if word == "exit":
            os._exit(3)
        if word == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(60)
        if word == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)
        raise ValueError(f"unknown script {arch!r}")


def hidden_reward(arch: str) -> float:
    """A deterministic pseudo-random reward in [0, 1) for any text."""
    return random.Random(arch).random()


class HiddenRewardEvaluator(Evaluator):
    """Rewards each `item N` text with hidden_reward; `item 13` fails."""

    name = "hidden"

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        if arch == "item 13":
            return Outcome(status="failed", reward=FAILED_REWARD, error="unlucky")
        return Outcome(status="ok", reward=hidden_reward(arch), metrics={"n": arch}, seconds=0.01)


class GreedyStrategy(Strategy):
    """Proposes `item N` for N in [0, size): half the time a random one, half the time a
    neighbour of the best so far. Deterministic given its seed and state, and its
    proposals depend on the rewards it was told (so a resume must restore it exactly)."""

    name = "greedy"

    def __init__(self, space: Any = None, *, seed: int = 0, size: int = 40) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.best: tuple[float, int] = (-1.0, 0)
        self.told = 0

    def ask(self, n: int) -> list[Proposal]:
        out = []
        for _ in range(n):
            if self.best[0] >= 0 and self.rng.random() < 0.5:
                k = (self.best[1] + self.rng.choice((-1, 1))) % self.size
            else:
                k = self.rng.randrange(self.size)
            out.append(Proposal(arch=f"item {k}", decisions=(k,)))
        return out

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        for proposal, reward in zip(proposals, rewards, strict=True):
            self.best = max(self.best, (reward, proposal.decisions[0]))
        self.told += len(proposals)
        return {"best": self.best[0], "told": float(self.told)}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "best": self.best, "told": self.told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(state["rng"])
        self.best = tuple(state["best"])  # type: ignore[assignment]
        self.told = int(state["told"])


NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def write_nb201_table(path: Path) -> Path:
    """A NAS-Bench-201-format CSV of all 15,625 cells with made-up, deterministic accuracies:
    each 3x3 convolution adds 4 points and each `none` costs 3, plus noise of a few points
    (so there is something to learn, and one best cell)."""
    lines = ["index,arch,valid12,time12,valid200,test200"]
    for index, edges in enumerate(itertools.product(NB201_OPS, repeat=6)):
        arch = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*edges)
        noise = random.Random(arch).random()
        valid = 60.0 + 4.0 * edges.count("nor_conv_3x3") - 3.0 * edges.count("none") + 3 * noise
        time12 = 50.0 + 10.0 * edges.count("nor_conv_3x3")
        lines.append(f"{index},{arch},{valid:.4f},{time12:.2f},{valid + 10:.4f},{valid + 12:.4f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class KillOnceTableEvaluator(TableEvaluator):
    """The table evaluator, except that the process running the `kill_at`-th evaluation
    (counted across processes with files in `marks`) SIGKILLs itself: a child worker that
    dies once, mid-search. Each evaluation takes `delay` seconds, as training would."""

    name = "kill-once-table"

    def __init__(self, table: Path, marks: Path, kill_at: int, delay: float = 0.0) -> None:
        super().__init__(table)
        self.marks = marks
        self.kill_at = kill_at
        self.delay = delay

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        if _claim_number(self.marks) == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)
        time.sleep(self.delay)
        return super().evaluate(arch, seed=seed)


def _claim_number(folder: Path) -> int:
    """The lowest number N without a file folder/N, claimed by creating it (atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        try:
            os.close(os.open(folder / str(number), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return number
    raise AssertionError("unreachable")


class SlowHiddenRewardEvaluator(HiddenRewardEvaluator):
    """HiddenRewardEvaluator taking `delay` seconds per trial, as training would."""

    name = "slow-hidden"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        time.sleep(self.delay)
        return super().evaluate(arch, seed=seed)


class GateEvaluator(Evaluator):
    """Each trial waits until the file `gate` exists (at most `patience` seconds, then it
    fails), then scores like HiddenRewardEvaluator: the test decides when trials end."""

    name = "gate"

    def __init__(self, gate: Path, patience: float = 120.0) -> None:
        self.gate = gate
        self.patience = patience

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        waited = 0.0
        while not self.gate.exists():
            if waited >= self.patience:
                return Outcome(status="failed", reward=FAILED_REWARD, error="the gate stayed shut")
            time.sleep(0.02)
            waited += 0.02
        return Outcome(status="ok", reward=hidden_reward(arch))


def interrupt_search_after(monkeypatch: Any, trial_id: int) -> Any:
    """Make the CLI's search loop raise KeyboardInterrupt (Ctrl-C) once trial `trial_id` is
    stored; returns the real `run_search`, to put back for a resume."""
    import nasforge.runtime.search.loop as loop

    real = loop.run_search

    def interrupted(*args: Any, on_trial: Any = None, **kwargs: Any) -> Any:
        def trial_then_stop(record: Any) -> None:
            on_trial(record)
            if record.id == trial_id:
                raise KeyboardInterrupt

        return real(*args, on_trial=trial_then_stop, **kwargs)

    monkeypatch.setattr(loop, "run_search", interrupted)
    return real


def poll_until(condition: Any, *, polls: int, interval: float = 0.05) -> bool:
    """Check `condition()` up to `polls` times, `interval` seconds apart; whether it held.

    A bound on how often a test looks (so a hung process cannot hang the suite), never a
    claim about speed: the callers' bounds are minutes more than the work needs."""
    for _ in range(polls):
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
