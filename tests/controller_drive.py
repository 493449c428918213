"""Drive a controller with a made-up deterministic reward, for the controller tests."""

from __future__ import annotations

import random

from nasforge.controller.reinforce import Reinforce
from nasforge.controller.strategy import Proposal


def made_up_reward(proposal: Proposal) -> float:
    """A deterministic reward in [0, 1) from the decisions."""
    return random.Random(hash(proposal.decisions)).random()


def drive(controller: Reinforce, rounds: int, m: int = 1) -> list[Proposal]:
    """`rounds` asks of m proposals, each told its made-up rewards; every proposal, in order."""
    asked: list[Proposal] = []
    for _ in range(rounds):
        proposals = controller.ask(m)
        controller.tell(proposals, [made_up_reward(p) for p in proposals])
        asked += proposals
    return asked
