"""The cost of each trial and the Pareto fronts of a search: accuracy against parameters,
and against multiply-adds (or measured latency, when the search measured it).

A trained trial is on a front when no other trained trial is at least as accurate and at
most as costly, and better in one of the two. Only trained trials count: repeats are the
same architecture again, over-budget proposals were never trained, failed ones have no
accuracy. The accuracy is the validation accuracy the reward was computed from
(report.validation); a language model has none, so its recipe reward stands in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report import validation
from .store import TrialRecord

PARETO_FILE = "pareto.png"
COSTS = {
    "parameters": "parameters",
    "macs": "multiply-adds",
    "latency_ms": "latency (ms, onnxruntime, batch 1)",
}


@dataclass(frozen=True)
class TrialCost:
    """What a trial costs and scores, for the report and summary.json."""

    trial: int
    status: str
    reward: float
    accuracy: float | None
    parameters: int | None
    macs: int | None
    latency_ms: float | None

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def trial_cost(trial: TrialRecord) -> TrialCost:
    latency = trial.metrics.get("latency_ms")
    return TrialCost(
        trial=trial.id,
        status=trial.status,
        reward=trial.reward,
        accuracy=accuracy(trial),
        parameters=trial.parameters,
        macs=trial.macs,
        latency_ms=float(latency) if isinstance(latency, (int, float)) else None,
    )


def accuracy(trial: TrialRecord) -> float | None:
    """The trained trial's validation accuracy (0 to 1); a language model's recipe reward;
    None for a trial that was not trained."""
    if trial.status != "ok":
        return None
    found = validation(trial.metrics)
    if found is not None and found[0] == "val_acc":
        return found[1]
    objective = trial.metrics.get("objective")
    if isinstance(objective, dict) and "recipe_reward" in objective:
        return float(objective["recipe_reward"])
    return trial.reward


def second_cost(trials: list[TrialRecord]) -> str:
    """`latency_ms` when the search measured latency, else `macs`."""
    return "latency_ms" if any(trial_cost(t).latency_ms is not None for t in trials) else "macs"


def pareto_front(trials: list[TrialRecord], cost: str) -> list[TrialCost]:
    """The trained trials no other beats on both accuracy and `cost` (a COSTS key), by
    increasing cost; among equal points the earliest trial."""
    points = [
        c
        for c in map(trial_cost, trials)
        if c.status == "ok" and c.accuracy is not None and getattr(c, cost) is not None
    ]
    points.sort(key=lambda c: (getattr(c, cost), -c.accuracy, c.trial))  # type: ignore[operator]
    front: list[TrialCost] = []
    for point in points:
        if not front or point.accuracy > front[-1].accuracy:  # type: ignore[operator]
            front.append(point)
    return front


def cost_summary(trials: list[TrialRecord]) -> dict[str, Any]:
    """summary.json's `trials` (each one's cost and scores) and `pareto` (the fronts' ids)."""
    second = second_cost(trials)
    return {
        "trials": [trial_cost(t).summary() for t in trials],
        "pareto": {
            cost: [c.trial for c in pareto_front(trials, cost)] for cost in ("parameters", second)
        },
    }


def plot_pareto(trials: list[TrialRecord], title: str, path: Path) -> Path | None:
    """Draw accuracy against parameters and against multiply-adds (or latency), each
    trained trial a dot and the front a line; None (nothing drawn) without one."""
    second = second_cost(trials)
    fronts = {cost: pareto_front(trials, cost) for cost in ("parameters", second)}
    if not any(fronts.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    trained = [c for c in map(trial_cost, trials) if c.status == "ok" and c.accuracy is not None]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    try:
        for ax, (cost, front) in zip(axes, fronts.items(), strict=True):
            dots = [c for c in trained if getattr(c, cost) is not None]
            ax.scatter(
                [getattr(c, cost) for c in dots],
                [c.accuracy for c in dots],
                s=12,
                color="tab:blue",
                alpha=0.5,
                label="trained trial",
            )
            ax.plot(
                [getattr(c, cost) for c in front],
                [c.accuracy for c in front],
                "o-",
                drawstyle="steps-post",
                color="tab:red",
                markersize=5,
                label="Pareto front",
            )
            for c in front:
                ax.annotate(str(c.trial), (getattr(c, cost), c.accuracy), fontsize=7)
            if cost != "latency_ms":
                ax.set_xscale("log")
            ax.set_xlabel(COSTS[cost])
            ax.set_ylabel("validation accuracy")
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right", fontsize=8)
        figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
