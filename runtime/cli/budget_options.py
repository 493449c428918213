"""The options of a search's budget and objective (runtime/search/budget.py).

Torch-free: the CLI's --help imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..search.budget import MNAS_W, OBJECTIVES, TARGETS, BudgetError, parse_count
from .input import FiniteFloat


class Count(click.ParamType):
    """A positive whole count: 20000, 20k, 2.5M, 300M, 1.2G."""

    name = "N"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        try:
            return parse_count(value)
        except BudgetError as err:
            self.fail(str(err), param, ctx)


def budget_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --max-params, --max-macs, --objective, --target-* and --mnas-w to `command`."""
    for option in reversed(
        [
            click.option(
                "--max-params",
                type=Count(),
                help="Never train a proposal with more parameters (e.g. 20000, 20k, 2.5M); "
                "it is stored as over_budget.",
            ),
            click.option(
                "--max-macs",
                type=Count(),
                help="Never train a proposal with more multiply-adds per example "
                "(e.g. 300M, 1.2G); it is stored as over_budget.",
            ),
            click.option(
                "--objective",
                default="accuracy",
                show_default=True,
                type=click.Choice(OBJECTIVES),
                help="accuracy: the recipe's reward; mnas: accuracy x (cost / target) ^ w "
                "(MnasNet), with one --target-*.",
            ),
            click.option(
                "--target-params",
                type=Count(),
                help="mnas: the target parameter count.",
            ),
            click.option("--target-macs", type=Count(), help="mnas: the target multiply-adds."),
            click.option(
                "--target-latency-ms",
                type=FiniteFloat(min=0, min_open=True),
                help="mnas: the target latency, measured per trained child with onnxruntime "
                "(batch 1, one thread, median of 50 runs after 10 warm-up).",
            ),
            click.option(
                "--mnas-w",
                type=float,
                help=f"mnas: the exponent w [{MNAS_W}, MnasNet's soft constraint].",
            ),
        ]
    ):
        command = option(command)
    return command


def pop_budget_options(given: dict[str, Any]) -> dict[str, Any]:
    """Take the budget options out of a command's values, as SearchConfig's `budget`."""
    names = ("max_params", "max_macs", "objective", *TARGETS, "mnas_w")
    values = {name: given.pop(name) for name in names}
    return {
        k: v for k, v in values.items() if v is not None and (k, v) != ("objective", "accuracy")
    }
