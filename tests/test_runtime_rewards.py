"""Rewards against hand-computed values (Zoph & Le 2017, sections 4.1 and 4.2)."""

from __future__ import annotations

import math

import pytest
from nasforge.runtime.rewards import accuracy_reward, perplexity_reward


def test_accuracy_reward_is_cube_of_best_of_last_five() -> None:
    accuracies = [0.99, 0.5, 0.6, 0.7, 0.9, 0.8, 0.75]  # the 0.99 is outside the window
    assert accuracy_reward(accuracies) == pytest.approx(0.9**3)  # 0.729
    assert accuracy_reward(accuracies) == pytest.approx(0.729)


def test_accuracy_reward_window_and_power() -> None:
    accuracies = [0.2, 0.4, 0.8, 0.5]
    assert accuracy_reward(accuracies, window=1) == pytest.approx(0.125)  # 0.5^3
    assert accuracy_reward(accuracies, window=2, power=2) == pytest.approx(0.64)  # 0.8^2
    assert accuracy_reward(accuracies, window=10, power=1) == pytest.approx(0.8)
    assert accuracy_reward([0.5]) == pytest.approx(0.125)  # fewer epochs than the window


def test_perplexity_reward_is_square_of_80_over_best() -> None:
    assert perplexity_reward([160.0]) == pytest.approx(0.25)  # (80/160)^2
    assert perplexity_reward([200.0, 100.0, 120.0]) == pytest.approx(0.64)  # (80/100)^2
    assert perplexity_reward([40.0], c=80, power=1) == pytest.approx(2.0)
    assert perplexity_reward([62.4]) == pytest.approx((80 / 62.4) ** 2)  # NAS cell, PTB
    assert perplexity_reward([math.inf]) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy_reward([]), "no validation accuracies"),
        (lambda: accuracy_reward([1.5]), "not in"),
        (lambda: accuracy_reward([0.5], window=0), "window"),
        (lambda: perplexity_reward([]), "no validation perplexities"),
        (lambda: perplexity_reward([math.nan]), "not a perplexity"),
        (lambda: perplexity_reward([0.5]), "not a perplexity"),
    ],
)
def test_reward_rejects_impossible_inputs(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
