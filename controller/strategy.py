"""What every search strategy offers the search loop: ask for architectures, tell rewards.

The REINFORCE and PPO controllers, random search and regularized evolution all
implement `Strategy`, so the loop, the store and the benchmarks treat them alike.
A strategy is deterministic given its seed and its state: restoring a
`state_dict()` and asking again yields the same proposals (the loop relies on
this to resume a killed search without repeating work).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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
    module, attribute = STRATEGIES[name].split(":")
    cls = getattr(importlib.import_module(module), attribute)
    return cls(space, seed=seed, **options)
