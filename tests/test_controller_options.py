"""The controller's learning options beyond the paper's: each one changes what REINFORCE
computes when switched on, leaves the defaults' arithmetic alone, and survives a checkpoint."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch
from controller_drive import drive, made_up_reward
from nasforge.controller.reinforce import PPO, Reinforce
from nasforge.controller.space import load_space


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_advantage_rms_decay_is_off_by_default() -> None:
    controller = Reinforce(load_space("nb201"), seed=1, lr=0.01)
    drive(controller, 5)
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
    plain = drive(Reinforce(space, seed=4, lr=0.01, tanh_constant=3.0), 40)
    scaled = drive(
        Reinforce(space, seed=4, lr=0.01, tanh_constant=3.0, advantage_rms_decay=0.95), 40
    )
    assert plain[:2] == scaled[:2]  # same seed, same first proposals (no update differs yet)
    assert plain != scaled


@pytest.mark.parametrize("cls", [Reinforce, PPO])
@pytest.mark.parametrize(
    "option",
    [
        {"advantage_rms_decay": 0.9},
        {"top_k": 4},
        {"resample_repeats": 20},
        {"reward_rank": True},
        {"resample_repeats": 20, "reward_rank": True},
        {"screen": 8, "screen_warmup": 4},
        {"screen": 8, "screen_warmup": 4, "reward_rank": True},
        {"screen": 8, "screen_warmup": 4, "screen_imagine": 1.0},
    ],
)
def test_a_checkpoint_with_a_stateful_option_resumes_exactly(
    cls: type[Reinforce], option: dict[str, float]
) -> None:
    space = load_space("nb201")
    options = {"lr": 0.01, "tanh_constant": 3.0, **option}
    controller = cls(space, seed=3, **options)
    drive(controller, 6, m=2)
    buffer = io.BytesIO()
    torch.save(controller.state_dict(), buffer)
    expected = drive(controller, 6, m=2)
    restored = cls(space, seed=99, **options)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    assert drive(restored, 6, m=2) == expected
    assert (restored.top, restored.advantage_ms) == (controller.top, controller.advantage_ms)
    assert (restored.told, restored.ranked) == (controller.told, controller.ranked)


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
    plain_seen, queued_seen = drive(plain, 30), drive(queued, 30)
    best = max(queued_seen, key=made_up_reward)
    assert queued.top[0][1] == best.decisions
    assert (
        queued.log_prob(best.decisions) > plain.log_prob(max(plain_seen, key=made_up_reward).decisions) + 1
    )


def test_resample_repeats_is_off_by_default() -> None:
    space = load_space("nb201")
    plain = Reinforce(space, seed=5, lr=0.1, tanh_constant=3.0)
    zero = Reinforce(space, seed=5, lr=0.1, tanh_constant=3.0, resample_repeats=0)
    asked = drive(plain, 30)
    assert asked == drive(zero, 30)
    assert plain.told == {} and plain.state_dict()["told"] == []
    with pytest.raises(ValueError, match="resample_repeats"):
        Reinforce(space, resample_repeats=-1)


@pytest.mark.parametrize("cls", [Reinforce, PPO])
def test_resample_repeats_proposes_nothing_told_before(cls: type[Reinforce]) -> None:
    """A policy sharpened by a large lr keeps re-proposing the cells it was told about;
    with resample_repeats every proposal is new while new ones are likely enough."""
    space = load_space("nb201")
    options = {"lr": 0.05, "tanh_constant": 3.0}
    plain = drive(cls(space, seed=7, **options), 40, m=3)
    assert len({p.decisions for p in plain}) < len(plain) - 20  # it does repeat
    controller = cls(space, seed=7, resample_repeats=1000, **options)
    asked = drive(controller, 40, m=3)
    assert asked[:3] == plain[:3]  # nothing told yet, no duplicate within the first ask
    assert len({p.decisions for p in asked}) == len(asked) == 120
    assert set(controller.told) == {(p.decisions, None) for p in asked}
    # The log-probabilities reported are those of the proposals handed out.
    last = controller.ask(3)
    assert controller.last_log_probs is not None
    assert torch.allclose(
        controller.last_log_probs, controller.log_probs([p.decisions for p in last]), atol=1e-5
    )


def test_resample_repeats_gives_up_after_its_tries() -> None:
    """With one try, a repeat may be proposed again (the option bounds the re-draws)."""
    space = load_space("nb201")
    options = {"lr": 0.05, "tanh_constant": 3.0}
    once = drive(Reinforce(space, seed=7, resample_repeats=1, **options), 120)
    many = drive(Reinforce(space, seed=7, resample_repeats=1000, **options), 120)
    assert len({p.decisions for p in many}) == 120
    assert len({p.decisions for p in once}) < 120


def test_resample_repeats_is_refused_by_the_ray_backend(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from nasforge.runtime.cli import cli
    from search_doubles import write_nb201_table

    table = write_nb201_table(tmp_path / "nb201.csv")
    args = ["search", "--space", "nb201", "--evaluator", "table", "--table", str(table)]
    args += ["--backend", "ray", "--option", "resample_repeats=10", "--trials", "4"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "--option resample_repeats: the Ray backend's replicas keep no state" in result.output
    assert not (tmp_path / "run" / "search.db").exists()


def testmade_up_reward_rank_learns_from_quantiles_among_distinct_architectures() -> None:
    space = load_space("nb201")
    controller = Reinforce(space, seed=2, lr=0.01, reward_rank=True)
    proposals = controller.ask(3)
    assert len({p.decisions for p in proposals}) == 3
    controller.tell(proposals, [0.2, 0.8, 0.5])
    assert controller.ranked == pytest.approx([0.2, 0.5, 0.8])
    # quantiles (below + not above) / 2N: 0.8 beats all three told rewards but itself
    assert torch.allclose(
        controller.utilities(torch.tensor([0.8, 0.2, 0.6, 0.1])),
        torch.tensor([5 / 6, 1 / 6, 4 / 6, 0.0]),
    )
    controller.tell([proposals[1]], [0.8])  # a repeat adds nothing to the ranking
    assert controller.ranked == pytest.approx([0.2, 0.5, 0.8]) and len(controller.told) == 3
    # The baseline follows the quantiles: 0.5 after the first batch (its mean), then
    # 0.95 * 0.5 + 0.05 * 5/6 after the repeat's
    assert controller.baseline == pytest.approx(0.95 * 0.5 + 0.05 * 5 / 6)


def testmade_up_reward_rank_is_off_by_default_and_changes_what_is_learned() -> None:
    space = load_space("nb201")
    plain = Reinforce(space, seed=4, lr=0.01, tanh_constant=3.0)
    rewards = torch.tensor([0.3, 0.9])
    assert torch.equal(plain.utilities(rewards), rewards)
    asked = drive(plain, 40)
    assert plain.told == {} and plain.ranked == [] and plain.state_dict()["told"] == []
    ranked = drive(Reinforce(space, seed=4, lr=0.01, tanh_constant=3.0, reward_rank=True), 40)
    assert asked[:2] == ranked[:2] and asked != ranked


def testmade_up_reward_rank_is_refused_by_the_ray_backend() -> None:
    from nasforge.controller.param_server import LOCAL_ONLY_OPTIONS

    assert {"resample_repeats", "reward_rank"} <= set(LOCAL_ONLY_OPTIONS)
