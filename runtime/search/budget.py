"""A search's budget and objective: limits on a child's cost, and what its reward is.

- Limits (`--max-params`, `--max-macs`): a proposal whose exact cost (the cost model,
  codegen/cost.py) is over a limit is never trained. It is stored with status
  `over_budget`, its cost, its overshoot (the largest relative excess over a limit,
  cost / limit - 1) and the reward OVER_BUDGET_REWARD: 0, the reward of a child that
  fails, the floor of every trained child's reward. So it is on the scale of the
  trained children's rewards, whatever that scale is, and no better than the worst of
  them (docs/search.md, "Budgets and objectives", says why this value and not a
  penalty or MnasNet's form).
- Objective (`--objective`): `accuracy` (the recipe's reward, unchanged) or `mnas`,
  MnasNet's soft constraint (Tan et al. 2019, eq. 2): reward = ACC x (cost / target)^w,
  with one target (`--target-params`, `--target-macs` or `--target-latency-ms`, measured
  by onnxruntime: runtime/latency.py) and w = -0.07 by default.

Torch-free: SearchConfig validates a budget with it, and the CLI's --help lists its forms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .evaluator import FAILED_REWARD

OBJECTIVES = ("accuracy", "mnas")
# Told for a proposal over a limit: a child that fails gets it too, one that learns nothing
# earns about as much (a penalty below it drags the policy's baseline under the rewards of
# tiny children: benchmarks/README.md, bench_budget.py).
OVER_BUDGET_REWARD = FAILED_REWARD
MNAS_W = -0.07  # MnasNet's soft constraint (Tan et al. 2019, section 3)
TARGETS = ("target_params", "target_macs", "target_latency_ms")
COUNT_FORMS = "a positive whole count such as 20000, 20k, 2.5M, 300M or 1.2G"
_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_COUNT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgG]?)\s*")


class BudgetError(ValueError):
    """A count or a budget that cannot be used; the message names the accepted forms."""


def parse_count(text: str | int) -> int:
    """`20000`, `20k`, `2.5M`, `300M`, `1.2G` -> a positive integer; BudgetError otherwise
    (a fraction of one, zero, a negative number or another suffix)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 1:
            raise BudgetError(f"{text} is not {COUNT_FORMS}")
        return text
    match = _COUNT.fullmatch(str(text))
    if match is None:
        raise BudgetError(f"{text!r} is not {COUNT_FORMS}")
    number, suffix = match.groups()
    scale = _SUFFIXES[suffix.lower()]
    whole, _, fraction = number.partition(".")
    # Exact decimal arithmetic: 1.2G is 1,200,000,000, never 1,199,999,999.
    digits = int((whole or "0") + fraction) * scale
    value, rest = divmod(digits, 10 ** len(fraction))
    if rest or value < 1:
        raise BudgetError(f"{text!r} is not {COUNT_FORMS} (it is not a whole count >= 1)")
    return value


def count_text(n: int) -> str:
    """20000 -> '20,000'."""
    return f"{n:,}"


@dataclass(frozen=True)
class Budget:
    """The limits and the objective of one search (part of its identity)."""

    max_params: int | None = None
    max_macs: int | None = None
    objective: str = "accuracy"
    target_params: int | None = None
    target_macs: int | None = None
    target_latency_ms: float | None = None
    mnas_w: float | None = None  # None: MNAS_W, for --objective mnas

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> Budget:
        """The budget a config's `budget` JSON describes ({} for none)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(stored or {}) - known)
        if unknown:
            raise BudgetError(f"unknown budget settings {', '.join(unknown)}")
        return cls(**dict(stored or {}))

    def stored(self) -> dict[str, Any]:
        """The settings that differ from the defaults, as JSON (the store records them)."""
        default = Budget()
        return {k: v for k, v in asdict(self).items() if v != getattr(default, k)}

    @property
    def limited(self) -> bool:
        return self.max_params is not None or self.max_macs is not None

    @property
    def active(self) -> bool:
        """True when the search's rewards or gate differ from a plain search's."""
        return self.limited or self.objective != "accuracy"

    @property
    def w(self) -> float:
        return MNAS_W if self.mnas_w is None else self.mnas_w

    @property
    def target(self) -> tuple[str, float] | None:
        """(which target, its value) for --objective mnas."""
        for name in TARGETS:
            value = getattr(self, name)
            if value is not None:
                return name, float(value)
        return None

    @property
    def measures_latency(self) -> bool:
        return self.target_latency_ms is not None

    def check(self) -> Budget:
        """This budget, its counts as integers and mnas_w resolved; BudgetError naming the
        options to fix."""
        counts = {
            name: parse_count(getattr(self, name))
            for name in ("max_params", "max_macs", "target_params", "target_macs")
            if getattr(self, name) is not None
        }
        if any(getattr(self, name) is not n for name, n in counts.items()):
            return replace(self, **counts).check()
        if self.objective not in OBJECTIVES:
            raise BudgetError(
                f"--objective {self.objective}: choose one of {', '.join(OBJECTIVES)}"
            )
        given = [_option(name) for name in TARGETS if getattr(self, name) is not None]
        if self.objective == "accuracy":
            extra = given + (["--mnas-w"] if self.mnas_w is not None else [])
            if extra:
                raise BudgetError(
                    f"{', '.join(extra)} set the MnasNet objective: add --objective mnas"
                )
            return self
        if not given:
            raise BudgetError(
                "--objective mnas needs a target: one of --target-params, --target-macs or "
                "--target-latency-ms (reward = accuracy x (cost / target) ^ w)"
            )
        if len(given) > 1:
            raise BudgetError(
                f"--objective mnas takes one target, not {' and '.join(given)}: give one"
            )
        latency = self.target_latency_ms
        if latency is not None and not (math.isfinite(latency) and latency > 0):
            raise BudgetError(f"--target-latency-ms {latency}: give a positive number of ms")
        if not math.isfinite(self.w):
            raise BudgetError(f"--mnas-w {self.mnas_w}: give a finite number (MnasNet: -0.07)")
        return replace(self, mnas_w=self.w)

    def overshoot(self, parameters: int, macs: int) -> float:
        """The largest relative excess of a cost over a limit (0 when within every limit)."""
        excess = 0.0
        for cost, limit in ((parameters, self.max_params), (macs, self.max_macs)):
            if limit is not None and cost > limit:
                excess = max(excess, cost / limit - 1.0)
        return excess

    def over_limits(self, parameters: int, macs: int) -> list[str]:
        """What an over-budget cost exceeds, in words; empty when within every limit."""
        over = []
        if self.max_params is not None and parameters > self.max_params:
            over.append(
                f"{count_text(parameters)} parameters > --max-params {count_text(self.max_params)}"
            )
        if self.max_macs is not None and macs > self.max_macs:
            over.append(
                f"{count_text(macs)} multiply-adds > --max-macs {count_text(self.max_macs)}"
            )
        return over

    def objective_value(self, accuracy: float, cost: float) -> float:
        """MnasNet's reward: accuracy x (cost / target) ^ w."""
        target = self.target
        if target is None:
            raise BudgetError("the accuracy objective has no target")
        if cost <= 0:
            raise BudgetError(f"a cost of {cost} has no MnasNet reward (it must be > 0)")
        return accuracy * (cost / target[1]) ** self.w


def _option(name: str) -> str:
    return f"--{name.replace('_', '-')}"
