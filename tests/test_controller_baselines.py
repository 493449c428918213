"""Random search and regularized evolution: determinism, restore, aging, tournaments, progress."""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass

import pytest
import torch
from nasforge.controller.baselines import RandomSearch, RegularizedEvolution
from nasforge.controller.space import load_space
from nasforge.controller.strategy import Proposal, Strategy, make_strategy
from nasforge.grammar import parse, to_text


@dataclass(frozen=True)
class ToySlot:
    name: str
    kind: str
    choices: tuple[str, ...]


class ToySpace:
    """A space of `slots` slots with `choices` choices each, printed as "c0-c1-...".

    It has the two methods the baselines use, so their mechanics are tested apart
    from the real spaces (which have tests of their own below).
    """

    def __init__(self, slots: int = 6, choices: int = 5) -> None:
        self._slots = tuple(
            ToySlot(f"s{i}", "choice", tuple(f"c{j}" for j in range(choices))) for i in range(slots)
        )

    def slots(self, depth: int | None = None) -> tuple[ToySlot, ...]:
        return self._slots

    def to_text(self, decisions: tuple[int, ...], depth: int | None = None) -> str:
        return "-".join(self._slots[i].choices[d] for i, d in enumerate(decisions))


def hidden_target_reward(target: tuple[int, ...]) -> object:
    def reward(decisions: tuple[int, ...]) -> float:
        return sum(d == t for d, t in zip(decisions, target, strict=True)) / len(target)

    return reward


def run(strategy: Strategy, reward: object, steps: int) -> list[Proposal]:
    asked = []
    for _ in range(steps):
        proposals = strategy.ask(1)
        strategy.tell(proposals, [reward(p.decisions) for p in proposals])  # type: ignore[operator]
        asked += proposals
    return asked


def arches(proposals: list[Proposal]) -> list[str]:
    return [p.arch for p in proposals]


@pytest.mark.parametrize("cls", [RandomSearch, RegularizedEvolution])
def test_a_seed_fixes_the_proposals(cls: type[Strategy]) -> None:
    reward = hidden_target_reward((1, 2, 3, 4, 0, 1))
    first = run(cls(ToySpace(), seed=7), reward, 40)
    again = run(cls(ToySpace(), seed=7), reward, 40)
    other = run(cls(ToySpace(), seed=8), reward, 40)
    assert arches(first) == arches(again)
    assert arches(first) != arches(other)
    for proposal in first:
        assert proposal.arch == ToySpace().to_text(proposal.decisions)
        assert all(0 <= d < 5 for d in proposal.decisions) and len(proposal.decisions) == 6


@pytest.mark.parametrize("cls", [RandomSearch, RegularizedEvolution])
@pytest.mark.parametrize("trip", ["torch", "json"])
def test_restore_continues_exactly(cls: type[Strategy], trip: str) -> None:
    reward = hidden_target_reward((4, 3, 2, 1, 0, 4))
    original = cls(ToySpace(), seed=3)
    run(original, reward, 25)
    state = original.state_dict()
    if trip == "torch":  # what a checkpoint in the store does (weights_only loading)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)
    else:
        state = json.loads(json.dumps(state))
    restored = cls(ToySpace(), seed=99)  # a different seed: the state must override it
    restored.load_state_dict(state)
    assert arches(run(restored, reward, 30)) == arches(run(original, reward, 30))
    # Asking in a batch draws the same as asking one at a time.
    assert arches(restored.ask(5)) == arches(original.ask(5))


def test_evolution_starts_with_population_random_proposals() -> None:
    evolution = RegularizedEvolution(ToySpace(), seed=11, population=10, sample=3)
    random_search = RandomSearch(ToySpace(), seed=11)
    # The same random draws as random search, one batch or one at a time.
    first = evolution.ask(4) + evolution.ask(6)
    assert arches(first) == arches(random_search.ask(10))
    evolution.tell(first, [0.5] * 10)
    # From the eleventh on, every proposal is one slot away from a member.
    members = {decisions for decisions, _ in evolution.population}
    for proposal in evolution.ask(20):
        assert min(_distance(proposal.decisions, m) for m in members) == 1


def test_aging_removes_the_oldest_not_the_worst() -> None:
    space = ToySpace()
    evolution = RegularizedEvolution(space, seed=0, population=4, sample=2)
    told = [Proposal(space.to_text(d), d) for d in [(i, 0, 0, 0, 0, 0) for i in range(5)]]
    rewards = [0.9, 0.1, 0.2, 0.3, 0.4]  # the oldest is the best
    stats = evolution.tell(told[:4], rewards[:4])
    assert stats == {"population": 4.0, "population_best": 0.9, "population_mean": 0.375}
    evolution.tell(told[4:], rewards[4:])
    assert list(evolution.population) == [
        ((1, 0, 0, 0, 0, 0), 0.1),
        ((2, 0, 0, 0, 0, 0), 0.2),
        ((3, 0, 0, 0, 0, 0), 0.3),
        ((4, 0, 0, 0, 0, 0), 0.4),
    ]


def test_the_tournament_winner_is_the_best_of_its_sample() -> None:
    space = ToySpace()
    members = [(i, i, 0, 0, 0, 0) for i in range(5)]
    rewards = [0.3, 0.1, 0.8, 0.2, 0.5]
    # A sample as large as the population always picks the best member.
    everyone = RegularizedEvolution(space, seed=1, population=5, sample=5)
    everyone.asked = 5  # past the random start
    everyone.tell([Proposal(space.to_text(m), m) for m in members], rewards)
    for _ in range(50):
        assert everyone.tournament() == members[2]
        child = everyone.ask(1)[0].decisions
        assert _distance(child, members[2]) == 1
    # A sample of one picks members uniformly; of two, never the worst one.
    for sample, allowed in ((1, set(members)), (2, set(members) - {members[1]})):
        evolution = RegularizedEvolution(space, seed=2, population=5, sample=sample)
        evolution.tell([Proposal(space.to_text(m), m) for m in members], rewards)
        assert {evolution.tournament() for _ in range(300)} == allowed


def test_mutation_changes_one_slot_to_another_choice_uniformly() -> None:
    space = ToySpace(slots=3, choices=3)
    evolution = RegularizedEvolution(space, seed=5)
    parent = (0, 1, 2)
    children = [evolution.mutate(parent) for _ in range(3000)]
    assert all(_distance(child, parent) == 1 for child in children)
    counts = {child: children.count(child) for child in set(children)}
    assert len(counts) == 6  # 3 slots x 2 other choices
    assert min(counts.values()) > 400  # about 500 each
    # A slot with a single choice is never picked.
    narrow = RegularizedEvolution(_Narrow(), seed=0)
    assert {narrow.mutate((0, 1))[0] for _ in range(20)} == {0}


def test_evolution_beats_random_search_on_a_hidden_target() -> None:
    # 8 slots of 5 choices (390,625 architectures); the reward is the share of slots
    # that match a hidden target. Evolution climbs; random search does not.
    wins, evolution_best, random_best = 0, [], []
    for seed in range(8):
        target = tuple(random.Random(seed).randrange(5) for _ in range(8))
        reward = hidden_target_reward(target)
        space = ToySpace(slots=8, choices=5)
        best = [
            max(reward(p.decisions) for p in run(cls(space, seed=seed), reward, 300))  # type: ignore[operator]
            for cls in (RegularizedEvolution, RandomSearch)
        ]
        evolution_best.append(best[0])
        random_best.append(best[1])
        wins += best[0] > best[1]
    assert wins >= 7
    assert sum(evolution_best) / 8 >= 0.85
    assert sum(random_best) / 8 <= 0.7


def test_make_strategy_builds_the_baselines_with_options() -> None:
    evolution = make_strategy("evolution", ToySpace(), seed=4, population=20, sample=5)
    assert isinstance(evolution, RegularizedEvolution)
    assert (evolution.population_size, evolution.sample_size) == (20, 5)
    assert isinstance(make_strategy("random", ToySpace(), seed=4), RandomSearch)
    with pytest.raises(ValueError, match="population must be an integer between 1 and 1000000, not 0"):
        RegularizedEvolution(ToySpace(), population=0)
    with pytest.raises(ValueError, match="2 proposals but 1 rewards"):
        evolution.tell(evolution.ask(2), [0.1])


@pytest.mark.parametrize("cls", [RandomSearch, RegularizedEvolution])
def test_proposals_in_the_nb201_space_are_its_architectures(cls: type[Strategy]) -> None:
    space = load_space("nb201")
    strategy = cls(space, seed=1)
    # A reward that prefers conv3x3 everywhere, so evolution mutates toward it.
    asked = run(strategy, lambda d: sum(x == 3 for x in d) / 6, 60)
    for proposal in asked:
        arch = parse(proposal.arch)
        assert to_text(arch, one_line=True) == proposal.arch
        assert space.decisions_of(arch) == (proposal.decisions, None)
        assert proposal.depth is None
    assert len({p.arch for p in asked}) > 20


class _Narrow(ToySpace):
    def __init__(self) -> None:
        self._slots = (ToySlot("a", "choice", ("x",)), ToySlot("b", "choice", ("x", "y")))


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))
