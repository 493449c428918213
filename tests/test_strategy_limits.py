"""Strategy options out of range are refused up front; a controller that diverges in a
search stops it with a clear error and leaves the store resumable."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from nasforge.controller.baselines import RandomSearch, RegularizedEvolution
from nasforge.controller.reinforce import PPO, Reinforce, ReinforceOptions
from nasforge.controller.space import load_space
from nasforge.controller.strategy import StrategyDiverged, make_strategy
from nasforge.runtime.cli import cli
from nasforge.runtime.search.evaluator import Evaluator, Outcome
from nasforge.runtime.search.executors import InProcessExecutor
from nasforge.runtime.search.loop import run_search
from nasforge.runtime.search.store import TrialStore
from search_doubles import write_nb201_table


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lr", math.inf),
        ("lr", math.nan),
        ("lr", -0.1),
        ("lr", 2.0),
        ("entropy_weight", 1e308),
        ("entropy_weight", -1.0),
        ("tanh_constant", 0),
        ("tanh_constant", math.inf),
        ("temperature", 0),
        ("screen", 1_000_000_000),
        ("screen_memory", 10**7),
        ("screen_ridge", math.nan),
        ("hidden", 0),
        ("hidden", 35.5),
        ("layers", 10**6),
        ("init_range", math.inf),
        ("baseline_decay", 1.5),
        ("grad_clip", 0),
        ("grad_clip", math.nan),
        ("depth", 2.5),
    ],
)
def test_reinforce_options_out_of_range_are_refused(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"^{option} "):
        ReinforceOptions(**{option: value})


def test_the_defaults_and_the_benchmarks_settings_are_in_range() -> None:
    ReinforceOptions()
    ReinforceOptions(lr=0.01, tanh_constant=3.0, screen=100, grad_clip=5.0, depth=6)
    ReinforceOptions(lr=0.0)  # a frozen policy (the screen ablation)


@pytest.mark.parametrize(
    ("build", "options"),
    [
        (PPO, {"clip": math.nan}),
        (PPO, {"clip": 0}),
        (PPO, {"epochs": 10**6}),
        (RegularizedEvolution, {"population": 10**9}),
        (RegularizedEvolution, {"sample": 2.5}),
        (RegularizedEvolution, {"population": math.inf}),
        (RandomSearch, {"depth": math.nan}),
    ],
)
def test_other_strategies_options_out_of_range(build: type, options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=f"^{next(iter(options))} "):
        build(load_space("nb201"), **options)


def test_unknown_options_name_the_strategy_and_the_choices() -> None:
    with pytest.raises(TypeError) as caught:
        make_strategy("evolution", load_space("nb201"), lr=0.1)
    assert str(caught.value) == (
        "unknown option 'lr' for strategy evolution; choose one of population, sample, depth"
    )
    with pytest.raises(TypeError, match="unknown option 'clip' for strategy reinforce; "):
        make_strategy("reinforce", load_space("nb201"), clip=0.1)
    assert "clip" in make_strategy("ppo", load_space("nb201"), clip=0.1).option_names()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "lr=1e999",
            "--strategy reinforce: lr must be finite and between 0 and 1, not inf",
        ),
        ("entropy_weight=1e308", "entropy_weight must be finite and between 0 and 10"),
        (
            "tanh_constant=0",
            "tanh_constant must be finite and between 0.01 and 100, not 0",
        ),
        (
            "screen=1000000000",
            "screen must be an integer between 0 and 10000, not 1000000000",
        ),
        (
            "bogus=1",
            "unknown option 'bogus' for --strategy reinforce; choose one of lr, hidden, layers,",
        ),
    ],
)
def test_the_cli_refuses_bad_options_up_front(tmp_path: Path, option: str, message: str) -> None:
    table = write_nb201_table(tmp_path / "nb201.csv")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["search", "--space", "nb201", "--evaluator", "table", "--table", str(table),
         "--trials", "4", "--out", str(out), "--option", option, "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "unexpected keyword" not in result.output
    assert "Traceback" not in result.output
    assert not (out / "search.db").exists()


# --- a controller that diverges during a search ------------------------------------


def test_a_non_finite_loss_is_refused_before_the_update() -> None:
    controller = Reinforce(load_space("nb201"), seed=1)
    proposals = controller.ask(2)
    before = [p.detach().clone() for p in controller.policy.parameters()]
    with pytest.raises(StrategyDiverged, match="the controller's loss is nan at update 1"):
        controller.tell(proposals, [math.nan, 0.5])
    after = list(controller.policy.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_non_finite_parameters_stop_the_next_update() -> None:
    controller = Reinforce(load_space("nb201"), seed=1)
    proposals = controller.ask(2)
    with torch.no_grad():
        next(controller.policy.parameters()).fill_(math.inf)
    with pytest.raises(StrategyDiverged, match=r"the controller's loss is (nan|inf) at update 1"):
        controller.tell(proposals, [0.1, 0.5])
    assert controller.updates == 0


@pytest.mark.parametrize("cls", [Reinforce, PPO])
def test_a_non_finite_gradient_is_refused(cls: type[Reinforce]) -> None:
    controller = cls(load_space("nb201"), seed=1)
    proposals = controller.ask(2)
    # A finite loss whose gradient overflows float32.
    with pytest.raises(StrategyDiverged, match=r"the controller's (gradient norm|loss) is"):
        controller.tell(proposals, [3e38, -3e38])


class Exploding(Evaluator):
    """A reward that grows without bound after the first `calm` trials (an evaluator bug)."""

    name = "exploding"

    def __init__(self, calm: int) -> None:
        self.calm = calm
        self.seen = 0

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        self.seen += 1
        reward = 0.5 if self.seen <= self.calm else math.inf
        return Outcome(status="ok", reward=reward)


def test_a_search_whose_controller_diverges_stops_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    store = TrialStore.create(path, {"strategy": "reinforce", "seed": 0})
    with pytest.raises(StrategyDiverged) as caught:
        run_search(
            Reinforce(load_space("nb201")), InProcessExecutor(Exploding(8)), store,
            trials=16, batch=4,
        )  # fmt: skip
    assert "update 3" in str(caught.value)
    # The store holds the trials of the three steps and the checkpoint before the bad update.
    assert store.count() == 12
    assert store.latest_checkpoint().step == 2  # type: ignore[union-attr]
    # Resuming loads that checkpoint and reuses the stored trials: the same update fails
    # the same way, and the store is left as it was, never written with a broken controller.
    with pytest.raises(StrategyDiverged):
        run_search(
            Reinforce(load_space("nb201")), InProcessExecutor(Exploding(0)), store,
            trials=16, batch=4,
        )  # fmt: skip
    assert store.count() == 12
    assert store.latest_checkpoint().step == 2  # type: ignore[union-attr]
    store.close()
