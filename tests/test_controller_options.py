"""The controller's learning options beyond the paper's: each one changes what REINFORCE
computes when switched on, leaves the defaults' arithmetic alone, and survives a checkpoint."""

from __future__ import annotations

import io
import math
import random

import pytest
import torch
from nasforge.controller.reinforce import PPO, Reinforce
from nasforge.controller.space import load_space
from nasforge.controller.strategy import Proposal


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _reward(proposal: Proposal) -> float:
    """A deterministic made-up reward in [0, 1) from the decisions."""
    return random.Random(hash(proposal.decisions)).random()


def _drive(controller: Reinforce, rounds: int, m: int = 1) -> list[Proposal]:
    asked: list[Proposal] = []
    for _ in range(rounds):
        proposals = controller.ask(m)
        controller.tell(proposals, [_reward(p) for p in proposals])
        asked += proposals
    return asked


def test_advantage_rms_decay_is_off_by_default() -> None:
    controller = Reinforce(load_space("nb201"), seed=1, lr=0.01)
    _drive(controller, 5)
    assert controller.advantage_ms is None and controller.advantage_rms_decay is None
    rewards = torch.tensor([0.8, 0.6])
    assert torch.allclose(controller.advantages(rewards, 0.7), torch.tensor([0.1, -0.1]))
    assert controller.state_dict()["advantage_ms"] is None


def test_advantage_rms_decay_divides_by_the_moving_root_mean_square() -> None:
    decay = 0.9
    controller = Reinforce(load_space("nb201"), seed=1, lr=0.01, advantage_rms_decay=decay)
    controller.tell(controller.ask(1), [0.5])  # R - mean R = 0: no scale yet
    assert controller.advantage_ms == 0.0 and controller.baseline == pytest.approx(0.5)
    controller.tell(controller.ask(1), [0.7])  # the first nonzero advantage starts the mean
    assert controller.advantage_ms == pytest.approx(0.2**2)
    ms, baseline = controller.advantage_ms, controller.baseline
    rewards = torch.tensor([0.3, 0.6])
    raw = rewards - baseline
    expected_ms = decay * ms + (1 - decay) * float((raw**2).mean())
    got = controller.advantages(rewards, baseline)
    assert torch.allclose(got, raw / math.sqrt(expected_ms), atol=1e-6)
    assert controller.advantage_ms == ms  # advantages() reads the state, tell advances it
    controller.tell(controller.ask(2), [0.3, 0.6])
    assert controller.advantage_ms != ms
    with pytest.raises(ValueError, match="advantage_rms_decay"):
        Reinforce(load_space("nb201"), advantage_rms_decay=1.0)


def test_advantage_rms_decay_changes_what_is_learned() -> None:
    space = load_space("nb201")
    plain = _drive(Reinforce(space, seed=4, lr=0.01, tanh_constant=3.0), 40)
    scaled = _drive(
        Reinforce(space, seed=4, lr=0.01, tanh_constant=3.0, advantage_rms_decay=0.95), 40
    )
    assert plain[:2] == scaled[:2]  # same seed, same first proposals (no update differs yet)
    assert plain != scaled


@pytest.mark.parametrize("cls", [Reinforce, PPO])
@pytest.mark.parametrize("option", [{"advantage_rms_decay": 0.9}, {"top_k": 4}])
def test_a_checkpoint_with_a_stateful_option_resumes_exactly(
    cls: type[Reinforce], option: dict[str, float]
) -> None:
    space = load_space("nb201")
    options = {"lr": 0.01, "tanh_constant": 3.0, **option}
    controller = cls(space, seed=3, **options)
    _drive(controller, 6, m=2)
    buffer = io.BytesIO()
    torch.save(controller.state_dict(), buffer)
    expected = _drive(controller, 6, m=2)
    restored = cls(space, seed=99, **options)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    assert _drive(restored, 6, m=2) == expected
    assert (restored.top, restored.advantage_ms) == (controller.top, controller.advantage_ms)


def test_top_k_keeps_the_best_distinct_proposals() -> None:
    controller = Reinforce(load_space("nb201"), seed=2, lr=0.01, top_k=3)
    proposals = controller.ask(5)
    rewards = [0.1, 0.5, 0.3, 0.9, 0.2]
    controller.tell(proposals, rewards)
    assert [r for r, _, _ in controller.top] == [0.9, 0.5, 0.3]
    assert controller.top[0][1] == proposals[3].decisions
    controller.tell([proposals[3], proposals[0]], [0.9, 0.1])  # repeats: no duplicates
    assert [r for r, _, _ in controller.top] == [0.9, 0.5, 0.3]
    off = Reinforce(load_space("nb201"), seed=2, lr=0.01)
    off.tell(proposals, rewards)
    assert off.top == [] and off.state_dict()["top"] == []
    with pytest.raises(ValueError, match="top_k"):
        Reinforce(load_space("nb201"), top_k=-1)


def test_top_k_adds_the_queue_log_likelihood_to_the_loss() -> None:
    space = load_space("nb201")
    controller = Reinforce(space, seed=2, lr=0.01, top_k=2, top_k_weight=0.5)
    plain = Reinforce(space, seed=2, lr=0.01)
    proposals = controller.ask(4)
    assert proposals == plain.ask(4)
    controller.remember(proposals, [0.4, 0.8, 0.6, 0.1])
    advantages = torch.tensor([0.1, -0.2, 0.3, 0.0])
    with_queue, _ = controller.loss(proposals, advantages)
    without, _ = plain.loss(proposals, advantages)
    queue = controller.log_probs([proposals[1].decisions, proposals[2].decisions])
    expected = float(without.detach()) - 0.5 * float(queue.mean())
    assert float(with_queue.detach()) == pytest.approx(expected, abs=1e-5)


def test_top_k_pulls_the_policy_towards_the_best_found() -> None:
    """The same rewards: the queue makes the best architecture found far more likely."""
    space = load_space("nb201")
    options = {"lr": 0.01, "tanh_constant": 3.0}
    plain, queued = (
        Reinforce(space, seed=6, **options),
        Reinforce(space, seed=6, top_k=5, **options),
    )
    plain_seen, queued_seen = _drive(plain, 30), _drive(queued, 30)
    best = max(queued_seen, key=_reward)
    assert queued.top[0][1] == best.decisions
    assert (
        queued.log_prob(best.decisions) > plain.log_prob(max(plain_seen, key=_reward).decisions) + 1
    )
