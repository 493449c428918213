"""ENAS' controller learner (controller/enas.py): its loss, baseline, skip penalty and learning.

The space for the skip penalty is a small cnn space with anchors (digits.toml's), so the
penalty is computed by hand from the policy's anchor probabilities and compared.
"""

from __future__ import annotations

import math

import pytest
import torch
from nasforge.controller.enas import EnasController, EnasControllerSettings
from nasforge.controller.space import load_space


def controller(space_name: str = "nb201", **changes) -> EnasController:
    settings = EnasControllerSettings(**{"hidden": 16, **changes})
    return EnasController(load_space(space_name), settings, seed=0)


def test_baseline_moves_before_each_advantage_and_starts_at_the_first_reward() -> None:
    learner = controller(entropy_weight=0.0, baseline_decay=0.5)
    rollout = learner.sample(3)
    found = learner.update(rollout.decisions, [0.2, 0.6, 1.0])
    # b: 0.2 (the first reward), then 0.5 * 0.2 + 0.5 * 0.6 = 0.4, then 0.7
    assert found["baseline"] == pytest.approx(0.7)
    assert found["reward"] == pytest.approx(0.6)
    assert "skip_rate" not in found  # nb201 has no anchors


def test_entropy_bonus_is_part_of_the_reward() -> None:
    plain = controller(entropy_weight=0.0, baseline_decay=0.0)
    bonus = controller(entropy_weight=0.1, baseline_decay=0.0)
    rollout = plain.sample(1)
    entropy = float(plain.policy.score(rollout.decisions, None).entropy[0].detach())
    assert plain.update(rollout.decisions, [0.5])["baseline"] == pytest.approx(0.5)
    assert bonus.update(rollout.decisions, [0.5])["baseline"] == pytest.approx(0.5 + 0.1 * entropy)


def test_update_makes_the_rewarded_architecture_more_likely() -> None:
    learner = controller(lr=0.01, entropy_weight=0.0, baseline_decay=0.9)
    good = learner.sample(1).decisions
    bad = learner.sample(1).decisions
    assert not torch.equal(good, bad)
    before = float(learner.policy.score(good, None).log_prob[0].detach())
    learner.update(torch.cat([bad, good]), [0.0, 1.0])  # b: 0.0, then 0.1
    for _ in range(5):
        learner.update(torch.cat([bad, good]), [0.0, 1.0])
    assert float(learner.policy.score(good, None).log_prob[0].detach()) > before


def test_skip_penalty_is_the_per_layer_kl_to_the_target() -> None:
    learner = controller("digits", skip_target=0.4)
    slots = learner.space.slots(learner.depth)
    with torch.no_grad():
        rollout = learner.policy.score(learner.sample(2).decisions, learner.depth)
    assert rollout.anchor_prob is not None
    anchors = [s for s in slots if s.kind == "anchor"]
    assert rollout.anchor_prob.shape == (2, len(anchors))
    expected = []
    for row in rollout.anchor_prob.tolist():
        layers: dict[int, float] = {}
        for slot, p in zip(anchors, row, strict=True):
            kl = p * math.log(p / 0.4) + (1 - p) * math.log((1 - p) / 0.6)
            layers[slot.target] = layers.get(slot.target, 0.0) + kl
        expected.append(sum(layers.values()) / len(layers))
    penalty = learner.skip_penalty(rollout)
    assert penalty is not None
    assert penalty.tolist() == pytest.approx(expected, rel=1e-5)


def test_skip_penalty_pulls_the_skip_rate_toward_the_target() -> None:
    """With no reward signal (all equal) the penalty alone moves P(skip) toward 0.4."""
    learner = controller("digits", lr=0.05, skip_target=0.4, skip_weight=0.8, entropy_weight=0.0)
    decisions = learner.sample(8).decisions

    def distance() -> float:
        probs = learner.policy.score(decisions, learner.depth).anchor_prob.detach()
        return float((probs - 0.4).abs().mean())

    before = distance()
    for _ in range(20):
        learner.update(decisions, [0.5] * 8)
    assert distance() < before


def test_state_dict_restores_sampling_and_learning() -> None:
    first = controller("digits")
    first.update(first.sample(4).decisions, [0.1, 0.2, 0.3, 0.4])
    state = first.state_dict()
    second = controller("digits")
    second.load_state_dict(state)
    a, b = first.sample(3), second.sample(3)
    assert torch.equal(a.decisions, b.decisions)
    assert first.update(a.decisions, [0.5, 0.1, 0.9]) == second.update(b.decisions, [0.5, 0.1, 0.9])


def test_cell_spaces_take_the_micro_searchs_settings() -> None:
    micro = EnasControllerSettings.for_cells()
    assert (micro.lr, micro.tanh_constant, micro.skip_weight) == (0.0035, 1.10, 0.0)
    macro = EnasControllerSettings()
    assert (macro.lr, macro.tanh_constant, macro.skip_target, macro.skip_weight) == (
        0.001,
        1.5,
        0.4,
        0.8,
    )
    assert (macro.hidden, macro.layers, macro.entropy_weight, macro.baseline_decay) == (
        64,
        1,
        1e-4,
        0.99,
    )
