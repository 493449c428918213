"""What every search strategy offers the search loop: ask for architectures, tell rewards.

The REINFORCE and PPO controllers, random search and regularized evolution all
implement `Strategy`, so the loop, the store and the benchmarks treat them alike.
A strategy is deterministic given its seed and its state: restoring a
`state_dict()` and asking again yields the same proposals (the loop relies on
this to resume a killed search without repeating work).
"""

from __future__ import annotations

import importlib
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasforge.grammar.errors import NasforgeError


class StrategyDiverged(NasforgeError):
    """A controller's loss or gradient became non-finite: it cannot go on.

    Raised by `tell` before the update is applied, so the parameters stay finite and a
    search store keeps its checkpoint from before this update."""


class UnknownOption(TypeError):
    """An option the strategy does not take; `choices` are those it does."""

    def __init__(self, option: str, strategy: str, choices: Sequence[str]) -> None:
        super().__init__(
            f"unknown option {option!r} for strategy {strategy}; "
            f"choose one of {', '.join(choices)}"
        )
        self.option = option
        self.strategy = strategy
        self.choices = tuple(choices)


def check_option(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    """ValueError unless `value` is a finite number in [low, high] (an int if `integer`)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        if not (number and isinstance(value, int) and low <= value <= high):
            raise ValueError(
                f"{name} must be an integer between {_show(low)} and {_show(high)}, "
                f"not {_show(value)}"
            )
    elif not (number and math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"{name} must be finite and between {_show(low)} and {_show(high)}, not {_show(value)}"
        )


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if not isinstance(value, int) else str(value)


@dataclass(frozen=True)
class Proposal:
    """One architecture a strategy wants evaluated."""

    arch: str  # canonical one-line text (nasforge.grammar.to_text(ir, one_line=True))
    decisions: tuple[int, ...]  # the choice index of each slot of the space, in order
    depth: int | None = None  # the number of layers sampled, for spaces with a depth schedule


class Strategy(ABC):
    """A search strategy over one search space."""

    name: str

    @abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """The next `n` architectures to evaluate."""

    @abstractmethod
    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        """Learn from the rewards of proposals returned by `ask`, in the same order.

        Returns statistics of the update (loss, baseline, entropy, ...) for the log.
        """

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, baseline,
        schedule position, RNG state. Must survive torch.save / torch.load."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()`."""

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options the constructor takes (its keyword-only parameters but `seed`,
        through every `**options` it hands to a parent class)."""
        names: dict[str, None] = {}
        for klass in cls.__mro__:
            init = vars(klass).get("__init__")
            if init is None or klass is object:
                continue
            parameters = inspect.signature(init).parameters.values()
            names.update(
                (p.name, None) for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "seed"
            )
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                break
        return tuple(names)


# name -> "module:class"; each class is built as cls(space, seed=seed, **options).
STRATEGIES: dict[str, str] = {
    "reinforce": "nasforge.controller.reinforce:Reinforce",
    "ppo": "nasforge.controller.reinforce:PPO",
    "reinforce-screen": "nasforge.controller.reinforce:ReinforceScreen",
    "random": "nasforge.controller.baselines:RandomSearch",
    "evolution": "nasforge.controller.baselines:RegularizedEvolution",
}


def make_strategy(name: str, space: Any, *, seed: int = 0, **options: Any) -> Strategy:
    """Build the strategy called `name` over `space` (a nasforge.controller.space.Space)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    cls = strategy_class(name)
    for option in options:
        if option not in cls.option_names():
            raise UnknownOption(option, name, cls.option_names())
    return cls(space, seed=seed, **options)


def strategy_class(name: str) -> type[Strategy]:
    """The class of the strategy called `name` (a key of STRATEGIES)."""
    module, attribute = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]
