"""Baseline strategies: random search and regularized evolution (Real et al. 2019).

Both work on the slots of a search space (`Space.slots()`): a proposal is one
choice index per slot, printed by `Space.to_text`. Neither uses torch; their only
randomness is a `random.Random` seeded at construction, whose state travels in
`state_dict()` so a restored strategy asks for exactly what the original would.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from typing import Any

from .strategy import Proposal, Strategy, check_option

MAX_POPULATION = 1_000_000  # population and tournament size: each member is kept in memory
MAX_DEPTH = 1_000_000  # the space checks the depth it can sample; this bounds the type


def _check_depth(depth: int | None) -> None:
    if depth is not None:
        check_option("depth", depth, 1, MAX_DEPTH, integer=True)


def _choice_counts(space: Any, depth: int | None) -> tuple[int, ...]:
    counts = tuple(len(slot.choices) for slot in space.slots(depth=depth))
    if not counts or min(counts) < 1:
        raise ValueError("a search space needs at least one slot, each with at least one choice")
    return counts


def _check_told(proposals: Sequence[Proposal], rewards: Sequence[float]) -> None:
    if len(proposals) != len(rewards):
        raise ValueError(f"{len(proposals)} proposals but {len(rewards)} rewards")


class RandomSearch(Strategy):
    """Every slot's choice drawn uniformly and independently; rewards are ignored."""

    name = "random"

    def __init__(self, space: Any, *, seed: int = 0, depth: int | None = None) -> None:
        _check_depth(depth)
        self.space = space
        self.depth = depth
        self.counts = _choice_counts(space, depth)
        self.rng = random.Random(seed)
        self.asked = 0

    def ask(self, n: int) -> list[Proposal]:
        proposals = []
        for _ in range(n):
            decisions = tuple(self.rng.randrange(count) for count in self.counts)
            proposals.append(_proposal(self.space, decisions, self.depth))
        self.asked += n
        return proposals

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        _check_told(proposals, rewards)
        return {"asked": float(self.asked)}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "asked": self.asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(_rng_state(state["rng"]))
        self.asked = int(state["asked"])


class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al. 2019, Algorithm 1).

    The first `population` proposals are random. After that each proposal is a
    mutant of a tournament winner: `sample` members drawn without replacement
    from the population, the one with the highest reward wins, and one slot of
    its decisions changes to a different choice. Every told (decisions, reward)
    joins the population and, once it holds more than `population`, the oldest
    member leaves, whatever its reward (aging, the "regularized" part).
    NAS-Bench-201 runs it with population 10 and sample 3, the defaults here.
    """

    name = "evolution"

    def __init__(
        self,
        space: Any,
        *,
        seed: int = 0,
        population: int = 10,
        sample: int = 3,
        depth: int | None = None,
    ) -> None:
        check_option("population", population, 1, MAX_POPULATION, integer=True)
        check_option("sample", sample, 1, MAX_POPULATION, integer=True)
        _check_depth(depth)
        self.space = space
        self.depth = depth
        self.population_size = population
        self.sample_size = sample
        self.counts = _choice_counts(space, depth)
        # Only slots with an alternative can mutate.
        self.mutable = tuple(i for i, count in enumerate(self.counts) if count > 1)
        self.rng = random.Random(seed)
        self.asked = 0
        self.population: deque[tuple[tuple[int, ...], float]] = deque()  # oldest first

    def ask(self, n: int) -> list[Proposal]:
        proposals = []
        for _ in range(n):
            # Random until `population` have been asked for; also while nothing has
            # been told yet (a first batch bigger than the population).
            if self.asked < self.population_size or not self.population:
                decisions = tuple(self.rng.randrange(count) for count in self.counts)
            else:
                decisions = self.mutate(self.tournament())
            self.asked += 1
            proposals.append(_proposal(self.space, decisions, self.depth))
        return proposals

    def tournament(self) -> tuple[int, ...]:
        """The decisions of the best of `sample` members drawn without replacement."""
        size = min(self.sample_size, len(self.population))
        contestants = self.rng.sample(range(len(self.population)), size)
        # The first drawn wins a tie, so ties are broken at random, not by age.
        winner = max(contestants, key=lambda i: self.population[i][1])
        return self.population[winner][0]

    def mutate(self, decisions: tuple[int, ...]) -> tuple[int, ...]:
        """`decisions` with one slot changed to a different choice, both picked uniformly."""
        if not self.mutable:  # a space of one architecture: nothing to change
            return decisions
        slot = self.rng.choice(self.mutable)
        other = self.rng.randrange(self.counts[slot] - 1)
        choice = other if other < decisions[slot] else other + 1  # skip the current one
        return (*decisions[:slot], choice, *decisions[slot + 1 :])

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        _check_told(proposals, rewards)
        for proposal, reward in zip(proposals, rewards, strict=True):
            self.population.append((tuple(proposal.decisions), float(reward)))
            if len(self.population) > self.population_size:
                self.population.popleft()  # the oldest dies, not the worst
        told = [reward for _, reward in self.population]
        return {
            "population": float(len(told)),
            "population_best": max(told, default=0.0),
            "population_mean": sum(told) / len(told) if told else 0.0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.getstate(),
            "asked": self.asked,
            "population": [(list(decisions), reward) for decisions, reward in self.population],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(_rng_state(state["rng"]))
        self.asked = int(state["asked"])
        self.population = deque(
            (tuple(int(d) for d in decisions), float(reward))
            for decisions, reward in state["population"]
        )


def _proposal(space: Any, decisions: tuple[int, ...], depth: int | None) -> Proposal:
    return Proposal(space.to_text(decisions, depth=depth), decisions, depth)


def _rng_state(saved: Any) -> tuple[Any, ...]:
    """random.Random's state from a state_dict, which a JSON round trip turns into lists."""
    version, internal, gauss = saved
    return (int(version), tuple(int(x) for x in internal), gauss)
