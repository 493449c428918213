"""The controller's `screen` option and its reward model: kernel ridge regression that
equals ridge regression on explicit choice and choice-pair features, a controller that
pays only for the new candidates the model ranks best, and `reinforce-screen`, that
search under its own name."""

from __future__ import annotations

import io
import math

import pytest
import torch
from controller_drive import drive, made_up_reward
from nasforge.controller.reinforce import PPO, Reinforce
from nasforge.controller.space import load_space
from nasforge.controller.strategy import make_strategy
from nasforge.controller.surrogate import KernelRidge, kernel


def _features(rows: torch.Tensor, choices: int) -> torch.Tensor:
    """The feature map of the kernel (1 + s)^2: a constant, the one-hot choices scaled by
    sqrt(2 / slots), and every product of two one-hot entries scaled by 1 / slots."""
    slots = rows.shape[1]
    one_hot = torch.nn.functional.one_hot(rows, choices).reshape(len(rows), -1).double()
    pairs = torch.einsum("ni,nj->nij", one_hot, one_hot).reshape(len(rows), -1)
    constant = torch.ones(len(rows), 1, dtype=torch.float64)
    return torch.cat([constant, math.sqrt(2 / slots) * one_hot, pairs / slots], dim=1)


def test_the_kernel_counts_agreeing_slots() -> None:
    a = torch.tensor([[0, 1, 2, 3], [0, 0, 0, 0]])
    b = torch.tensor([[0, 1, 2, 3], [0, 1, 0, 1], [4, 4, 4, 4]])
    expected = torch.tensor([[4.0, 2.25, 1.0], [1.5625, 2.25, 1.0]], dtype=torch.float64)
    assert torch.equal(kernel(a, b), expected)  # (1 + 4/4)^2, (1 + 2/4)^2, (1 + 1/4)^2, 1


def test_kernel_ridge_is_ridge_regression_on_choices_and_choice_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    told = torch.randint(0, 5, (40, 6), generator=generator)
    rewards = torch.rand(40, generator=generator, dtype=torch.float64)
    others = torch.randint(0, 5, (25, 6), generator=generator)
    ridge = 0.3
    model = KernelRidge(ridge).fit(told.tolist(), rewards.tolist())
    # primal ridge on the explicit features, rewards centred as the model centres them
    x = _features(told, 5)
    mean = rewards.mean()
    weights = torch.linalg.solve(x.T @ x + ridge * torch.eye(x.shape[1]), x.T @ (rewards - mean))
    expected = _features(others, 5) @ weights + mean
    assert torch.allclose(model.predict(others), expected, atol=1e-9)
    # a small ridge nearly interpolates what it was told
    close = KernelRidge(1e-6).fit(told.tolist(), rewards.tolist())
    assert torch.allclose(close.predict(told), rewards, atol=1e-4)


def test_kernel_ridge_refuses_bad_use() -> None:
    with pytest.raises(ValueError, match="ridge must be > 0"):
        KernelRidge(0.0)
    with pytest.raises(RuntimeError, match="predict before fit"):
        KernelRidge().predict(torch.zeros(1, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="as many rewards"):
        KernelRidge().fit([[0, 1]], [0.5, 0.6])
    with pytest.raises(ValueError, match="as many rewards"):
        KernelRidge().fit([], [])


OPTIONS = {"lr": 0.01, "tanh_constant": 3.0}


def test_screen_is_off_by_default() -> None:
    space = load_space("nb201")
    plain = Reinforce(space, seed=5, **OPTIONS)
    zero = Reinforce(space, seed=5, screen=0, **OPTIONS)
    assert drive(plain, 20) == drive(zero, 20)
    assert plain.told == {}
    for bad in ({"screen": -1}, {"screen_warmup": 0}, {"screen_memory": 0}):
        with pytest.raises(ValueError, match="screen"):
            Reinforce(space, **bad)
    with pytest.raises(ValueError, match="ridge must be > 0"):
        Reinforce(space, screen=4, screen_ridge=0.0)


def test_screen_proposes_plain_samples_until_its_warmup() -> None:
    space = load_space("nb201")
    screened = Reinforce(space, seed=3, screen=8, screen_warmup=5, **OPTIONS)
    twin = Reinforce(space, seed=3, **OPTIONS)
    rounds = 0
    while len(screened.told) < 5:  # fewer than 5 architectures told: no model yet
        twin.load_state_dict(screened.state_dict())
        candidates = twin.sample(16).decisions.tolist()
        proposals = screened.ask(2)
        assert [list(p.decisions) for p in proposals] == candidates[:2]
        screened.tell(proposals, [made_up_reward(p) for p in proposals])
        rounds += 1
    assert rounds >= 3


@pytest.mark.parametrize("cls", [Reinforce, PPO])
def test_screen_pays_for_the_new_candidates_the_model_ranks_best(cls: type[Reinforce]) -> None:
    space = load_space("nb201")
    controller = cls(space, seed=11, screen=16, screen_warmup=6, screen_ridge=0.05, **OPTIONS)
    twin = Reinforce(space, seed=0, **OPTIONS)
    drive(controller, 4, m=2)  # 8 proposals, at least 6 distinct: the model is on
    assert len(controller.told) >= 6
    for _ in range(10):
        told = dict(controller.told)
        twin.load_state_dict(controller.state_dict())  # the same generator: the same draws
        candidates = twin.sample(3 * 16).decisions
        new = {tuple(r): None for r in candidates.tolist() if (tuple(r), None) not in told}
        model = KernelRidge(0.05).fit([d for d, _ in told], list(told.values()))
        predicted = model.predict(torch.tensor(list(new)))
        expected = [list(new)[i] for i in predicted.argsort(descending=True, stable=True)[:3]]
        proposals = controller.ask(3)
        assert [p.decisions for p in proposals] == expected
        assert all((p.decisions, None) not in told for p in proposals)
        assert controller.last_log_probs is not None
        assert torch.allclose(
            controller.last_log_probs,
            controller.log_probs([p.decisions for p in proposals]),
            atol=1e-5,
        )
        controller.tell(proposals, [made_up_reward(p) for p in proposals])


@pytest.mark.parametrize("cls", [Reinforce, PPO])
def test_a_screened_checkpoint_resumes_exactly(cls: type[Reinforce]) -> None:
    space = load_space("nb201")
    options = {**OPTIONS, "screen": 8, "screen_warmup": 4}
    controller = cls(space, seed=3, **options)
    drive(controller, 6, m=2)
    buffer = io.BytesIO()
    torch.save(controller.state_dict(), buffer)
    expected = drive(controller, 6, m=2)
    restored = cls(space, seed=99, **options)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    assert drive(restored, 6, m=2) == expected
    assert restored.told == controller.told


def test_asking_leaves_the_policy_alone() -> None:
    """The reward model chooses among the samples; only `tell` moves the policy."""
    space = load_space("nb201")
    controller = Reinforce(space, seed=8, screen=16, screen_warmup=6, **OPTIONS)
    drive(controller, 8)
    weights = {k: v.clone() for k, v in controller.policy.state_dict().items()}
    controller.ask(1)
    assert controller.surrogate.rows is not None  # the model was fitted and asked
    assert all(torch.equal(v, controller.policy.state_dict()[k]) for k, v in weights.items())


def test_screen_fits_only_the_last_screen_memory_architectures() -> None:
    space = load_space("nb201")
    controller = Reinforce(space, seed=2, screen=4, screen_warmup=3, screen_memory=5, **OPTIONS)
    drive(controller, 12)
    told = list(controller.told)
    assert len(told) > 5
    controller.ask(1)
    assert controller.surrogate.rows is not None
    assert controller.surrogate.rows.tolist() == [list(d) for d, _ in told[-5:]]


def test_screen_finds_a_hidden_target_with_fewer_evaluations() -> None:
    """A reward that grows with the slots agreeing with a hidden cell: within 30 paid cells
    the screened controller finds that cell for every seed, the plain one for none."""
    space = load_space("nb201")
    target = (3, 1, 3, 2, 3, 4)

    def finds(controller: Reinforce, paid_limit: int = 30, asks: int = 150) -> bool:
        paid: set[tuple[int, ...]] = set()
        for _ in range(asks):
            (proposal,) = controller.ask(1)
            paid.add(proposal.decisions)
            if proposal.decisions == target:
                return True
            if len(paid) >= paid_limit:
                return False
            agree = sum(a == b for a, b in zip(proposal.decisions, target, strict=True))
            controller.tell([proposal], [agree / len(target)])
        return False

    # measured without limits: screened 20-24 cells, plain 35-106
    assert all(finds(Reinforce(space, seed=s, screen=50, **OPTIONS)) for s in range(5))
    assert not any(finds(Reinforce(space, seed=s, **OPTIONS)) for s in range(5))


def test_screen_is_refused_by_the_ray_backend() -> None:
    from nasforge.controller.param_server import LOCAL_ONLY_OPTIONS

    options = {"screen", "screen_warmup", "screen_ridge", "screen_memory"}
    assert options <= set(LOCAL_ONLY_OPTIONS)


def test_screen_models_each_depth_apart() -> None:
    """Spaces with a depth schedule: the model fits only what was told at the asked depth."""
    space = load_space("cifar10_v1")
    controller = Reinforce(space, seed=1, screen=4, screen_warmup=2, **OPTIONS)
    for _ in range(6):
        proposals = controller.ask(1, depth=2)
        controller.tell(proposals, [made_up_reward(p) for p in proposals])
    assert {depth for _, depth in controller.told} == {2}
    twin = Reinforce(space, seed=0, **OPTIONS)
    twin.load_state_dict(controller.state_dict())
    (deeper,) = controller.ask(1, depth=3)  # nothing told at depth 3: a plain sample
    assert list(deeper.decisions) == twin.sample(4, 3).decisions[0].tolist()
    (shallow,) = controller.ask(1, depth=2)
    assert (shallow.decisions, 2) not in controller.told
    assert controller.surrogate.rows is not None
    assert controller.surrogate.rows.shape == (len(controller.told), len(space.slots(2)))


def test_reinforce_screen_is_the_benchmark_row_by_name() -> None:
    """`reinforce-screen` with its defaults proposes what REINFORCE at the paper's lr with
    screen 100 does (benchmarks/bench_nb201.py's row), past the warm-up; an option given
    to it overrides its default as it would Reinforce's."""
    space = load_space("nb201")
    for seed in (0, 1):
        named = make_strategy("reinforce-screen", space, seed=seed)
        assert named.name == "reinforce-screen" and named.options.screen == 100
        row = Reinforce(space, seed=seed, lr=6e-4, screen=100)
        assert drive(named, 16) == drive(row, 16)
        assert len(named.told) > named.options.screen_warmup  # the model chose the last ones
    small = make_strategy("reinforce-screen", space, seed=2, screen=8, lr=0.01)
    assert drive(small, 14) == drive(Reinforce(space, seed=2, screen=8, lr=0.01), 14)
    with pytest.raises(ValueError, match="screen >= 1"):
        make_strategy("reinforce-screen", space, screen=0)
