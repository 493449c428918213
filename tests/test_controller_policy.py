"""The LSTM controller: every sampled string parses, lies in its space and has a
log-probability recomputable from the text alone; probabilities are a distribution;
checkpoints reproduce proposals; REINFORCE learns where random search does not."""

from __future__ import annotations

import io
import itertools
import math
import multiprocessing
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import torch
from nasforge.controller.baselines import RandomSearch
from nasforge.controller.reinforce import PPO, Reinforce
from nasforge.controller.space import Space, load_space, space_names
from nasforge.controller.strategy import Proposal, make_strategy
from nasforge.grammar import parse

SAMPLES = 10_000
BATCH = 400  # proposals per ask

TINY_CNN = """
family = "cnn"
input = [1, 6, 6]
classes = 3
[depth]
start = 2
max = 3
[layer]
kernel_h = [1, 3]
kernel_w = [3]
stride_h = [1, 2]
filters = [4, 8]
"""


def _tiny_cnn(tmp_path: Path) -> Space:
    path = tmp_path / "tiny_cnn.toml"
    path.write_text(TINY_CNN)
    return load_space(str(path))


def _perturbed(space: Space, seed: int = 0) -> Reinforce:
    """A controller moved away from its initial weights by one large step."""
    controller = Reinforce(space, seed=seed, lr=0.05)
    proposals = controller.ask(16)
    controller.tell(proposals, [random.Random(seed + i).random() for i in range(16)])
    controller.samples = 0  # restart the depth schedule's clock
    return controller


def _parse_chunk(name: str, texts: list[str]) -> list[tuple[tuple[int, ...], int | None]]:
    space = load_space(name)
    return [space.decisions_of(parse(text)) for text in texts]


def _decisions_of_texts(name: str, texts: list[str]) -> list[tuple[tuple[int, ...], int | None]]:
    """parse + decisions_of of every text, on both cores where the OS can fork.

    Parsing is the test's cost (Lark, ~1-2 ms a string), so it is split across
    two processes; forked children share the loaded modules and start in ms.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return _parse_chunk(name, texts)
    half = len(texts) // 2
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        other = pool.submit(_parse_chunk, name, texts[half:])
        mine = _parse_chunk(name, texts[:half])
        return mine + other.result()


@pytest.mark.parametrize("name", space_names())
def test_10000_sampled_strings_parse_lie_inside_and_keep_their_log_prob(name: str) -> None:
    space = load_space(name)
    controller = _perturbed(space)
    proposals: list[Proposal] = []
    sampled: list[torch.Tensor] = []
    # cnn spaces: every depth the space has, in turn (the schedule would only reach the
    # even ones; the mean depth, 8, also keeps the 10,000 parses affordable).
    depths = itertools.cycle(range(1, (space.max_depth or 0) + 1) if space.max_depth else [None])
    while len(proposals) < SAMPLES:
        proposals += controller.ask(BATCH, depth=next(depths))
        assert controller.last_log_probs is not None
        sampled.append(controller.last_log_probs)
    sampled_log_prob = torch.cat(sampled)
    # From the text alone: parse, find the decisions in the space, score them.
    texts = sorted({p.arch for p in proposals})  # nb201 repeats cells; parse each text once
    seen = dict(zip(texts, _decisions_of_texts(name, texts), strict=True))
    recovered: dict[int | None, list[tuple[int, tuple[int, ...]]]] = {}
    for i, proposal in enumerate(proposals):
        decisions, depth = seen[proposal.arch]
        assert (decisions, depth) == (proposal.decisions, proposal.depth)
        recovered.setdefault(depth, []).append((i, decisions))
    recomputed = torch.empty(SAMPLES)
    for depth, rows in recovered.items():
        scores = controller.log_probs([d for _, d in rows], depth)
        recomputed[torch.tensor([i for i, _ in rows])] = scores
    assert torch.allclose(recomputed, sampled_log_prob, rtol=1e-5, atol=1e-5)
    assert bool(torch.isfinite(recomputed).all()) and float(recomputed.max()) < 0
    if space.max_depth is not None:
        assert {p.depth for p in proposals} == set(range(1, space.max_depth + 1))


def test_log_prob_from_a_published_string() -> None:
    space = load_space("nb201")
    controller = Reinforce(space, seed=3)
    text = (Path(__file__).resolve().parent.parent / "examples/nb201_best.arch").read_text()
    decisions, depth = space.decisions_of(parse(text))
    value = controller.log_prob(decisions, depth)
    # An untrained controller is close to uniform over the 5 ops of 6 edges.
    assert math.isfinite(value) and abs(value - 6 * math.log(1 / 5)) < 0.1


def test_probabilities_sum_to_one_over_nb201() -> None:
    space = load_space("nb201")
    controller = _perturbed(space, seed=1)
    every = list(itertools.product(range(5), repeat=6))
    total = controller.log_probs(every).exp().sum()
    assert abs(float(total) - 1.0) < 1e-4


def test_probabilities_sum_to_one_with_anchors(tmp_path: Path) -> None:
    space = _tiny_cnn(tmp_path)
    controller = _perturbed(space, seed=2)
    for depth in (1, 2, 3):
        counts = [len(slot.choices) for slot in space.slots(depth)]
        every = list(itertools.product(*(range(c) for c in counts)))
        assert len(every) == space.size(depth)
        total = controller.log_probs(every, depth).exp().sum()
        assert abs(float(total) - 1.0) < 1e-4, depth


def test_sampling_follows_the_probabilities(tmp_path: Path) -> None:
    space = _tiny_cnn(tmp_path)
    controller = _perturbed(space, seed=4)
    n = 40_000
    rollout = controller.sample(n, depth=2)
    counts = Counter(tuple(row) for row in rollout.decisions.tolist())
    cases = list(counts)
    expected = controller.log_probs(cases, 2).exp() * n
    observed = torch.tensor([counts[c] for c in cases], dtype=torch.float32)
    # Every frequency within 5 standard deviations of its expectation.
    assert bool(((observed - expected).abs() <= 5 * expected.sqrt() + 1).all())
    assert sum(counts.values()) == n


def test_paper_defaults() -> None:
    controller = Reinforce(load_space("digits"))
    policy = controller.policy
    assert len(policy.cells) == 2 and policy.hidden == 35
    assert all(float(p.detach().abs().max()) <= 0.08 for p in policy.parameters())
    assert controller.optimizer.defaults["lr"] == 6e-4
    assert (controller.name, PPO(load_space("digits")).name) == ("reinforce", "ppo")


def test_make_strategy_builds_both() -> None:
    space = load_space("nb201")
    reinforce = make_strategy("reinforce", space, seed=5, lr=0.01, entropy_weight=0.0)
    ppo = make_strategy("ppo", space, seed=5, clip=0.1, epochs=2)
    assert isinstance(reinforce, Reinforce) and reinforce.optimizer.defaults["lr"] == 0.01
    assert isinstance(ppo, PPO) and (ppo.clip, ppo.epochs) == (0.1, 2)
    assert reinforce.ask(3) == make_strategy("reinforce", space, seed=5).ask(3)


def test_depth_schedule_is_followed_and_overridable() -> None:
    space = load_space("cifar10_v1")
    controller = Reinforce(space, depth_start=2, depth_step=1, depth_every=10, max_depth=4)
    depths = [controller.ask(5)[0].depth for _ in range(7)]
    assert depths == [2, 2, 3, 3, 4, 4, 4]
    fixed = Reinforce(space, depth=3)
    assert {p.depth for p in fixed.ask(4) + fixed.ask(2000)} == {3}
    paper = Reinforce(space)
    assert paper.ask(1)[0].depth == 6
    paper.samples = 1600
    assert paper.ask(1)[0].depth == 8


def test_global_rngs_are_left_alone() -> None:
    before = (torch.get_rng_state(), random.getstate())
    controller = Reinforce(load_space("digits"), seed=9)
    controller.tell(controller.ask(4), [0.1, 0.2, 0.3, 0.4])
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]


def test_tell_checks_its_input() -> None:
    controller = Reinforce(load_space("nb201"))
    proposals = controller.ask(2)
    with pytest.raises(ValueError, match="2 proposals but 1 rewards"):
        controller.tell(proposals, [0.5])
    with pytest.raises(ValueError, match="at least one proposal"):
        controller.tell([], [])


@pytest.mark.parametrize("cls", [Reinforce, PPO])
def test_checkpoint_restores_the_next_proposals(cls: type[Reinforce]) -> None:
    space = load_space("cifar10_v2")
    options = {"lr": 0.01, "depth_start": 2, "depth_step": 1, "depth_every": 8, "max_depth": 5}
    controller = cls(space, seed=11, **options)
    for _ in range(3):
        proposals = controller.ask(4)
        controller.tell(proposals, [len(p.arch) / 1000 for p in proposals])
    buffer = io.BytesIO()
    torch.save(controller.state_dict(), buffer)

    def run(strategy: Reinforce) -> tuple[list[Proposal], dict[str, float], list[Proposal]]:
        first = strategy.ask(4)
        stats = strategy.tell(first, [len(p.arch) / 1000 for p in first])
        return first, stats, strategy.ask(4)

    expected = run(controller)
    restored = cls(space, seed=999, **options)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    assert run(restored) == expected
    assert expected[0][0].depth == 3 and expected[2][0].depth == 4  # the schedule resumed too


# --- learning -------------------------------------------------------------------------------

LEARNING_SAMPLES = 800
BATCH_SIZE = 10
TUNED = {"lr": 0.02, "tanh_constant": 2.5, "entropy_weight": 0.01}


def _hidden_target_reward(space: Space, seed: int):
    """Reward: the fraction of slots that match a hidden target architecture (max 1.0)."""
    rng = random.Random(1000 + seed)
    target = [rng.randrange(len(slot.choices)) for slot in space.slots()]

    def reward(proposal: Proposal) -> float:
        return sum(a == b for a, b in zip(proposal.decisions, target, strict=True)) / len(target)

    return reward


def _best_within(strategy: Reinforce | RandomSearch, reward, samples: int) -> float:
    best = 0.0
    for _ in range(samples // BATCH_SIZE):
        proposals = strategy.ask(BATCH_SIZE)
        rewards = [reward(p) for p in proposals]
        strategy.tell(proposals, rewards)
        best = max(best, *rewards)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reinforce_finds_a_hidden_target_where_random_search_does_not(seed: int) -> None:
    """digits: 18 slots (3.4e7 architectures); 0.9 of the maximum means 17 of 18 right."""
    space = load_space("digits")
    reward = _hidden_target_reward(space, seed)
    controller = _best_within(Reinforce(space, seed=seed, **TUNED), reward, LEARNING_SAMPLES)
    random_search = _best_within(RandomSearch(space, seed=seed), reward, LEARNING_SAMPLES)
    assert controller >= 0.9 > random_search


def test_ppo_learns_too() -> None:
    space = load_space("digits")
    reward = _hidden_target_reward(space, 7)
    options = {**TUNED, "lr": 0.01, "epochs": 2}
    assert _best_within(PPO(space, seed=7, **options), reward, LEARNING_SAMPLES) >= 0.9


def test_mean_reward_rises_with_default_options() -> None:
    """Default options but a 10x learning rate: the mean reward of a batch goes up."""
    space = load_space("nb201")
    reward = _hidden_target_reward(space, 3)
    controller = Reinforce(space, seed=3, lr=6e-3)
    means = []
    for _ in range(60):
        proposals = controller.ask(20)
        rewards = [reward(p) for p in proposals]
        controller.tell(proposals, rewards)
        means.append(sum(rewards) / len(rewards))
    assert sum(means[-10:]) / 10 > sum(means[:10]) / 10 + 0.15
