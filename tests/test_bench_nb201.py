"""benchmarks/bench_nb201.py's protocol on a synthetic complete table (no real data needed).

Every one of the 15,625 cells gets a made-up row whose valid12 grows with the
number of conv3x3 edges, so the budget accounting, the free repeats and the
choice of the reported cell can be checked exactly.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from nasforge.controller.space import load_space
from nasforge.controller.strategy import STRATEGIES, Proposal, Strategy, make_strategy

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_nb201.py"
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
COST = 100.0  # every cell's time12


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_nb201", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    lines = ["index,arch,valid12,time12,valid200,test200"]
    for index, ops in enumerate(itertools.product(range(5), repeat=6)):
        a, b, c, d, e, f = (OPS[i] for i in ops)
        string = f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"
        valid12 = 50 + 5 * ops.count(3) + index / 100_000  # distinct, conv3x3 the best
        lines.append(f"{index},{string},{valid12:.5f},{COST},{valid12 + 1:.5f},{valid12 + 2:.5f}")
    table = tmp_path_factory.mktemp("nb201") / "synthetic.csv"
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    module = load_bench()
    module.load(str(table))
    return module


class SameCell(Strategy):
    """Proposes cell (k, k, ..., k) for k = 0, 1, 2, 0, 1, 2, ... only: three cells in all."""

    name = "same"

    def __init__(self, space: Any, *, seed: int = 0) -> None:
        self.space = space
        self.asked = 0
        self.told: list[float] = []

    def ask(self, n: int) -> list[Proposal]:
        proposals = []
        for _ in range(n):
            decisions = (self.asked % 3,) * 6
            proposals.append(Proposal(self.space.to_text(decisions), decisions))
            self.asked += 1
        return proposals

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        self.told += rewards
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def test_each_new_cell_costs_its_time_until_the_budget_is_spent(bench: ModuleType) -> None:
    result = bench.run_once("random", 3, {}, 1, 1000.0, 5000)
    assert result.distinct == 10  # 10 x 100 s: the tenth spends the last of the budget
    assert result.spent == 1000.0 and not result.capped
    assert result.proposals >= 10
    # The reported cell is the best valid12 one found, and its test200 is reported.
    assert result.test200 == pytest.approx(result.valid12 + 2, abs=1e-4)


def test_a_batch_stops_where_the_budget_ends(bench: ModuleType) -> None:
    result = bench.run_once("random", 3, {}, 4, 1000.0, 5000)
    assert (result.distinct, result.spent) == (10, 1000.0)


def test_repeats_are_free_and_the_proposal_cap_ends_a_run(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STRATEGIES, "same", f"{__name__}:SameCell")
    result = bench.run_once("same", 0, {}, 2, 12_000.0, 301)
    assert result.distinct == 3 and result.spent == 3 * COST
    assert result.capped and result.proposals == 302  # whole batches of 2: 151 of them
    # Cell (2, 2, ...) is all conv1x1, (0, ...) all none: the best of the three is (2, ...).
    space = load_space("nb201")
    assert result.valid12 == pytest.approx(50 + 5 * 0 + int("222222", 5) / 100_000, abs=1e-4)
    assert space.to_text((2,) * 6).count("conv1x1") == 6


def test_evolution_finds_more_conv3x3_than_random_search(bench: ModuleType) -> None:
    evolution = [bench.run_once("evolution", s, {}, 1, 5_000.0, 5000) for s in range(4)]
    random = [bench.run_once("random", s, {}, 1, 5_000.0, 5000) for s in range(4)]
    assert sum(r.valid12 for r in evolution) > sum(r.valid12 for r in random)
    assert sum(r.valid12 for r in evolution) / 4 > 70  # 4 conv3x3 edges or more on average
    assert all(r.distinct == 50 for r in evolution + random)


def test_settings_and_batches_from_the_command_line(bench: ModuleType) -> None:
    options = bench.parse_settings(["reinforce.lr=0.05", "ppo.clip=0.1", "ppo.x=text"])
    assert options["reinforce"]["lr"] == 0.05
    assert options["ppo"]["clip"] == 0.1 and options["ppo"]["x"] == "text"
    assert options["evolution"] == {"population": 10, "sample": 3}
    assert bench.parse_batches(["ppo=8"])["ppo"] == 8
    with pytest.raises(SystemExit):
        bench.parse_settings(["lr=0.1"])
    with pytest.raises(SystemExit):
        bench.parse_batches(["ppo=0"])


def test_the_screened_row_runs_reinforce_with_its_reward_model(bench: ModuleType) -> None:
    options = bench.parse_settings([])["reinforce-screen"]
    assert options == {}  # the named strategy as `--strategy reinforce-screen` runs it
    assert make_strategy("reinforce-screen", load_space("nb201"), **options).options.screen > 0
    screened = [bench.run_once("reinforce-screen", s, options, 1, 5_000.0, 5000) for s in range(4)]
    random = [bench.run_once("random", s, {}, 1, 5_000.0, 5000) for s in range(4)]
    assert all(r.strategy == "reinforce-screen" for r in screened)
    # every proposal after the first few is a cell not paid for yet, chosen by the model
    assert all(r.distinct == 50 and r.proposals == 50 for r in screened)
    assert sum(r.valid12 for r in screened) > sum(r.valid12 for r in random)
