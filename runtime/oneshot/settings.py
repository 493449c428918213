"""One-shot search settings: the strategy, epochs, batch, seed, device, and checked options.

Each strategy declares its options as `Option`s (default, where the default comes
from, and the values it accepts); `resolve_options` fills in the defaults and refuses
an unknown name or a value out of range, naming what is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..choices import ONESHOT_STRATEGIES


@dataclass(frozen=True)
class OneShotSettings:
    """What a one-shot search runs with (see make_oneshot)."""

    strategy: str  # one of ONESHOT_STRATEGIES
    epochs: int  # search epochs: one pass over the weight part of the training data each
    batch: int  # paper: 64 (DARTS), 128 (ENAS's macro search)
    seed: int = 0
    device: str = "auto"  # resolved with runtime.devices.resolve_device
    # Strategy-specific overrides of the paper defaults (the strategy's OPTIONS).
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy not in ONESHOT_STRATEGIES:
            raise ValueError(
                f"unknown one-shot strategy {self.strategy!r}; "
                f"valid: {', '.join(ONESHOT_STRATEGIES)}"
            )
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a whole number of at least 1, not {self.epochs!r}")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"batch must be a whole number of at least 1, not {self.batch!r}")


@dataclass(frozen=True)
class Option:
    """One option: its default, the source of that default, and the values allowed."""

    default: Any
    source: str  # paper section or reference file the default comes from
    kind: type = float  # float, int or bool
    low: float | None = None
    high: float | None = None
    optional: bool = False  # None is allowed (off / no cap)

    def check(self, name: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"option {name} takes true or false, not {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"option {name} takes a number, not {value!r}")
        if self.kind is int:
            if value != int(value):
                raise ValueError(f"option {name} takes a whole number, not {value!r}")
            value = int(value)
        else:
            value = float(value)
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise ValueError(f"option {name} is {value!r}, outside {self.low}..{self.high}")
        return value


def resolve_options(
    declared: Mapping[str, Option], given: Mapping[str, Any], strategy: str
) -> dict[str, Any]:
    """The declared defaults with `given`'s overrides, each checked."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for the one-shot strategy {strategy}; "
            f"valid: {', '.join(sorted(declared))}"
        )
    resolved = {name: option.default for name, option in declared.items()}
    for name, value in given.items():
        resolved[name] = declared[name].check(name, value)
    return resolved


def options_table(declared: Mapping[str, Option]) -> list[tuple[str, Any, str]]:
    """(name, default, source) rows, for documentation and reports."""
    return [(name, option.default, option.source) for name, option in declared.items()]
