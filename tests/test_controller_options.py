"""Reinforce's options: one checked table of names and defaults, the plain arithmetic they
leave alone, and checkpoints from before the table shrank."""

from __future__ import annotations

import io

import pytest
import torch
from controller_drive import drive
from nasforge.controller.reinforce import PPO, Reinforce, ReinforceOptions
from nasforge.controller.space import load_space
from nasforge.controller.strategy import make_strategy

RETIRED = ("advantage_norm", "advantage_rms_decay", "top_k", "top_k_weight")
RETIRED += ("resample_repeats", "reward_rank", "screen_imagine")


@pytest.mark.parametrize("name", RETIRED)
def test_retired_options_are_refused_not_ignored(name: str) -> None:
    space = load_space("nb201")
    for build in (Reinforce, PPO):
        with pytest.raises(TypeError, match=name):
            build(space, **{name: 1})
    with pytest.raises(TypeError, match=name):
        make_strategy("reinforce-screen", space, **{name: 1})


def test_the_options_table_holds_the_defaults() -> None:
    controller = Reinforce(load_space("nb201"))
    assert controller.options == ReinforceOptions()
    assert (controller.options.lr, controller.options.screen) == (6e-4, 0)
    assert Reinforce(load_space("nb201"), lr=0.01).options.lr == 0.01


def test_advantages_are_rewards_minus_the_baseline() -> None:
    controller = Reinforce(load_space("nb201"), seed=1, lr=0.01)
    drive(controller, 5)
    rewards = torch.tensor([0.8, 0.6])
    assert torch.allclose(controller.advantages(rewards, 0.7), torch.tensor([0.1, -0.1]))
    assert torch.allclose(controller.advantages(rewards, None), torch.tensor([0.1, -0.1]))


@pytest.mark.parametrize("cls", [Reinforce, PPO])
def test_a_checkpoint_written_with_the_retired_options_off_still_loads(
    cls: type[Reinforce],
) -> None:
    """Before the retired options went, state_dict also held their state: `advantage_ms`
    (None when off) and `top` (empty when off)."""
    space = load_space("nb201")
    options = {"lr": 0.01, "tanh_constant": 3.0}
    controller = cls(space, seed=3, **options)
    drive(controller, 6, m=2)
    buffer = io.BytesIO()
    torch.save({**controller.state_dict(), "advantage_ms": None, "top": []}, buffer)
    expected = drive(controller, 6, m=2)
    restored = cls(space, seed=99, **options)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    assert drive(restored, 6, m=2) == expected
    assert "advantage_ms" not in restored.state_dict() and "top" not in restored.state_dict()
