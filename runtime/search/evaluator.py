"""What the search loop asks of an evaluator: score one architecture, never crash.

Evaluators: `train` (the runtime's trainer on a data set) and `table` (a
NAS-Bench-201-format CSV: reward from a lookup, cost simulated). An evaluator
turns every failure of a child into an Outcome with status "failed" and the
reason; only a bug in nasforge itself may raise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

FAILED_REWARD = 0.0  # the reward the controller learns from when a child fails


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok" or "failed"
    reward: float  # FAILED_REWARD when failed
    metrics: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable
    parameters: int | None = None
    macs: int | None = None
    seconds: float = 0.0  # wall time, or the simulated cost for the table evaluator
    error: str | None = None  # the reason, when failed

    @classmethod
    def failed(
        cls,
        error: str,
        seconds: float = 0.0,
        *,
        parameters: int | None = None,
        macs: int | None = None,
        **metrics: Any,
    ) -> Outcome:
        """The outcome of a child that failed for `error`; `metrics` (such as a reason code)
        are recorded with it."""
        return cls(
            status="failed",
            reward=FAILED_REWARD,
            metrics=metrics,
            parameters=parameters,
            macs=macs,
            seconds=seconds,
            error=error,
        )


class Evaluator(ABC):
    name: str

    @abstractmethod
    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        """Score the architecture `arch` (canonical text)."""
