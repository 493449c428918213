"""The budget's gate: an executor around the search's executor that never lets a proposal
over a limit reach the evaluator, and turns each trained child's outcome into the
objective's reward (runtime/search/budget.py says which).

The gate counts each proposal with the cost model (codegen/cost.py), as the train evaluator
does, with the same build arguments (a language model's vocabulary size from the data set),
so the cost stored for an over-budget proposal is the one its model would have had.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from nasforge.grammar.errors import NasforgeError

from .budget import OVER_BUDGET_REWARD, Budget
from .evaluator import FAILED_REWARD, Outcome
from .executors import Executor, Job, JobResult
from .report import validation

CostFunction = Callable[[str], Any]  # arch text -> codegen.cost.Cost, or None
OVER_BUDGET = "over_budget"
GATE_WORKER = "budget"  # the worker named on an over-budget trial's row: nothing ran it


class BudgetGate(Executor):
    """Runs `inner` on the proposals within `budget`; the others become over-budget results."""

    def __init__(self, inner: Executor, budget: Budget, cost_of: CostFunction) -> None:
        self.inner = inner
        self.budget = budget
        self.cost_of = cost_of
        self.workers = inner.workers

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        inside: list[Job] = []
        costs: dict[int, Any] = {}
        for job in jobs:
            counted = self.cost_of(job.arch)
            costs[job.key] = counted
            over = counted is not None and self.budget.overshoot(counted.params, counted.macs)
            if over:
                yield self._over_budget(job, counted)
            else:
                inside.append(job)
        for result in self.inner.run(inside):
            yield replace(result, outcome=self.scored(result.outcome, costs.get(result.key)))

    def close(self) -> None:
        self.inner.close()

    def _over_budget(self, job: Job, counted: Any) -> JobResult:
        overshoot = self.budget.overshoot(counted.params, counted.macs)
        now = time.time()
        outcome = Outcome(
            status=OVER_BUDGET,
            reward=OVER_BUDGET_REWARD,
            metrics={"overshoot": overshoot},
            parameters=counted.params,
            macs=counted.macs,
            error="over the budget: "
            + "; ".join(self.budget.over_limits(counted.params, counted.macs)),
        )
        return JobResult(job.key, outcome, GATE_WORKER, now, now)

    def scored(self, outcome: Outcome, counted: Any) -> Outcome:
        """A trained child's outcome with its cost filled in (the table evaluator counts
        none) and, for --objective mnas, the objective as its reward."""
        if counted is not None and outcome.parameters is None:
            outcome = replace(outcome, parameters=counted.params, macs=counted.macs)
        if outcome.status != "ok" or self.budget.objective == "accuracy":
            return outcome
        return mnas_outcome(outcome, self.budget)


def mnas_outcome(outcome: Outcome, budget: Budget) -> Outcome:
    """`outcome` rewarded with MnasNet's objective; the recipe's reward, the accuracy and
    the cost it used are kept in its metrics (`objective`)."""
    target = budget.target
    assert target is not None  # Budget.check: --objective mnas has one
    name, value = target
    cost = {
        "target_params": outcome.parameters,
        "target_macs": outcome.macs,
        "target_latency_ms": outcome.metrics.get("latency_ms"),
    }[name]
    if cost is None:
        why = outcome.metrics.get("latency_error", "not measured")
        return replace(
            outcome,
            status="failed",
            reward=FAILED_REWARD,
            metrics={**outcome.metrics, "reason": "objective"},
            error=f"--objective mnas: no {name.removeprefix('target_')} for this child ({why})",
        )
    found = validation(outcome.metrics)
    # Accuracy where the child has one; a language model's recipe reward otherwise.
    accuracy = found[1] if found is not None and found[0] == "val_acc" else outcome.reward
    reward = budget.objective_value(accuracy, float(cost))
    metrics = {
        **outcome.metrics,
        "objective": {
            "name": "mnas",
            "accuracy": accuracy,
            "recipe_reward": outcome.reward,
            "cost": cost,
            "target": {name: value},
            "w": budget.w,
            "value": reward,
        },
    }
    return replace(outcome, reward=reward, metrics=metrics)


def cost_function(evaluator: Any) -> CostFunction:
    """How the gate counts a proposal for `evaluator`: with the train evaluator's data set's
    build arguments (as it counts the child it trains); None for a text the cost model
    cannot count (the evaluator then records why the child fails)."""
    from nasforge.codegen.cost import cost
    from nasforge.grammar import parse

    from .evaluators import TrainEvaluator

    data = evaluator.data() if isinstance(evaluator, TrainEvaluator) else None

    def cost_of(arch: str) -> Any:
        try:
            ir = parse(arch, "<proposal>")
            kwargs: dict[str, Any] = {}
            if data is not None:
                from ..train import build_kwargs

                kwargs = build_kwargs(ir, data)
            return cost(ir, **kwargs)
        except NasforgeError:
            return None

    return cost_of


def gated(executor: Any, config: Any, evaluator: Any) -> Any:
    """`executor` behind the gate of `config`'s budget; itself when the search has none."""
    budget = Budget.from_stored(config.budget)
    if not budget.active:
        return executor
    return BudgetGate(executor, budget, cost_function(evaluator))
