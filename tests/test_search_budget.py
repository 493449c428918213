"""Budgets and objectives: limits checked with the cost model before training, the reward
the controller is told for an over-budget proposal, MnasNet's objective, the Pareto fronts."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_runner import run
from nasforge.codegen import generate, load_source
from nasforge.codegen.cost import cost
from nasforge.controller.space import load_space
from nasforge.controller.strategy import Proposal, make_strategy
from nasforge.grammar import parse
from nasforge.runtime.search.budget import Budget, BudgetError, parse_count
from nasforge.runtime.search.budget_gate import BudgetGate, cost_function, mnas_outcome
from nasforge.runtime.search.config import ConfigError, SearchConfig
from nasforge.runtime.search.evaluator import FAILED_REWARD, Outcome
from nasforge.runtime.search.executors import InProcessExecutor
from nasforge.runtime.search.loop import run_search
from nasforge.runtime.search.pareto import pareto_front
from nasforge.runtime.search.report import build_report, render
from nasforge.runtime.search.store import TrialRecord, TrialStore
from nasforge.runtime.search.table import TableEvaluator
from torch import nn

LIMIT = 400_000  # cuts the nb201 cells of the test table roughly in half


def table_search(table: Path, out: Path, *extra: object, trials: int = 24) -> Any:
    return run(
        "search", "--space", "nb201", "--evaluator", "table", "--table", table,
        "--trials", trials, "--batch", 4, "--out", out, "--no-progress", "--no-onnx", *extra,
    )  # fmt: skip


def stored_trials(out: Path) -> list[TrialRecord]:
    with TrialStore.open_readonly(out / "search.db") as store:
        return store.trials()


def built(arch: str) -> nn.Module:
    return load_source(generate(parse(arch), black=False)).build_model()


def hooked_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds of one example counted by forward hooks on every Conv2d and Linear (the
    cost model's convention), independently of the cost model."""
    total = 0

    def count(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += module.in_features * module.out_features

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for hook in hooks:
        hook.remove()
    return total


# --- counts and settings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("20000", 20_000),
        ("20k", 20_000),
        ("20K", 20_000),
        ("2.5M", 2_500_000),
        ("300M", 300_000_000),
        ("1.2G", 1_200_000_000),
        (" 7 ", 7),
        (".5k", 500),
    ],
)
def test_counts_take_suffixes(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "0", "-5", "1.5", "0.0001k", "2.5x", "1e6", "abc", "5 M B"])
def test_bad_counts_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(BudgetError, match=r"20000, 20k, 2\.5M, 300M or 1\.2G"):
        parse_count(text)


def test_a_bad_limit_on_the_command_line_exits_2(table: Path, tmp_path: Path) -> None:
    result = table_search(table, tmp_path / "out", "--max-macs", "300Q")
    assert result.exit_code == 2
    assert "--max-macs" in result.output and "2.5M, 300M or 1.2G" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--objective", "mnas"], "needs a target: one of --target-params"),
        (
            ["--objective", "mnas", "--target-macs", "1M", "--target-params", "10k"],
            "takes one target, not --target-params and --target-macs",
        ),
        (["--target-macs", "1M"], "--target-macs set the MnasNet objective: add --objective mnas"),
        (["--mnas-w", "-0.1"], "--mnas-w set the MnasNet objective"),
        (["--objective", "mnas", "--target-params", "1M", "--mnas-w", "nan"], "finite"),
        (
            ["--objective", "mnas", "--target-latency-ms", "2"],
            "--target-latency-ms measures each trained child with onnxruntime: it needs "
            "--evaluator train",
        ),
    ],
)
def test_objective_settings_that_cannot_run_exit_2(
    table: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = table_search(table, tmp_path / "out", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "out" / "search.db").exists()


def test_the_budget_is_part_of_the_search_identity(table: Path) -> None:
    def config(**budget: Any) -> SearchConfig:
        return SearchConfig.create(
            space="nb201", trials=8, evaluator="table", table=str(table), batch=4, budget=budget
        )

    limited = config(max_params="400k", objective="mnas", target_macs="2.5M")
    assert limited.budget == {
        "max_params": 400_000,
        "objective": "mnas",
        "target_macs": 2_500_000,
        "mnas_w": -0.07,
    }
    stored = limited.stored()
    assert limited.resume_differences(stored) == []
    assert config().resume_differences(stored)[0].startswith("the budget (--max-params")
    # A store written before budgets existed ran without one.
    old = {k: v for k, v in config().stored().items() if k != "budget"}
    assert config().resume_differences(old) == []
    assert config(max_macs="1G").resume_differences(old) != []
    with pytest.raises(ConfigError, match="asynchronous REINFORCE"):
        SearchConfig.create(
            space="nb201", trials=8, evaluator="table", table=str(table), backend="ray",
            budget={"max_params": 1000},
        )  # fmt: skip


# --- the gate: never trained, the stated reward, the exact cost ----------------------


class RefusingTableEvaluator(TableEvaluator):
    """The table evaluator, except that it fails the test when given an architecture over
    `limit` parameters: the gate must never let one through."""

    def __init__(self, table: Path, limit: int) -> None:
        super().__init__(table)
        self.limit = limit
        self.seen: list[str] = []

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        self.seen.append(arch)
        if cost(parse(arch)).params > self.limit:
            pytest.fail(f"an over-budget architecture reached the evaluator: {arch}")
        return super().evaluate(arch, seed=seed)


class TellRecorder:
    """A strategy that passes everything to `inner` and records what it was told."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.told: list[tuple[str, float]] = []

    def ask(self, n: int) -> list[Proposal]:
        return self.inner.ask(n)

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        self.told += [(p.arch, r) for p, r in zip(proposals, rewards, strict=True)]
        return self.inner.tell(proposals, rewards)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


def test_over_budget_proposals_are_stored_never_trained_and_told_their_reward(
    table: Path, tmp_path: Path
) -> None:
    evaluator = RefusingTableEvaluator(table, LIMIT)
    budget = Budget(max_params=LIMIT).check()
    strategy = TellRecorder(make_strategy("random", load_space("nb201"), seed=3))
    gate = BudgetGate(InProcessExecutor(evaluator), budget, cost_function(evaluator))
    with TrialStore.create(tmp_path / "search.db", {"budget": budget.stored()}) as store:
        run_search(strategy, gate, store, trials=40, batch=4)
        trials = store.trials()
    over = [t for t in trials if t.status == "over_budget"]
    trained = [t for t in trials if t.status == "ok"]
    assert over and trained  # the limit cuts the space
    assert all(t.parameters <= LIMIT for t in trained)
    assert all(t.parameters > LIMIT for t in over)
    assert {t.arch for t in over}.isdisjoint(evaluator.seen)
    for t in over:
        # The stated reward: a failed child's, the floor of every trained child's reward.
        assert t.reward == 0.0 == FAILED_REWARD
        assert t.metrics["overshoot"] == pytest.approx(t.parameters / LIMIT - 1)
        assert t.macs == cost(parse(t.arch)).macs
        assert "over the budget" in (t.error or "") and t.worker == "budget"
    # The strategy was told exactly the stored rewards, over-budget ones included.
    assert strategy.told == [(t.arch, t.reward) for t in trials]


def test_every_trained_trial_of_a_limited_search_is_within_the_limit(
    table: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = table_search(table, out, "--max-params", "400k", "--max-macs", "60M", trials=32)
    assert result.exit_code == 0, result.output
    trials = stored_trials(out)
    statuses = {t.status for t in trials}
    assert "over_budget" in statuses and "ok" in statuses
    for t in trials:
        if t.status == "ok":
            assert t.parameters <= 400_000 and t.macs <= 60_000_000
        if t.status == "over_budget":
            assert t.parameters > 400_000 or t.macs > 60_000_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["parameters"] <= 400_000
    assert "over budget (never trained)" in result.output
    assert "proposals over budget, first quarter of the trials" in result.output


def test_the_stored_cost_equals_the_built_model(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert table_search(table, out, "--max-params", "400k", trials=16).exit_code == 0
    originals = [t for t in stored_trials(out) if t.status in ("ok", "over_budget")]
    checked = {t.status: 0 for t in originals}
    for t in originals:
        if checked[t.status] >= 3:
            continue
        checked[t.status] += 1
        model = built(t.arch)
        assert t.parameters == sum(p.numel() for p in model.parameters())
        assert t.macs == hooked_macs(model, parse(t.arch).input_shape)
    assert checked == {"ok": 3, "over_budget": 3}


def test_a_resumed_search_keeps_its_limits(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert table_search(table, out, "--max-params", "400k", trials=8).exit_code == 0
    other = table_search(table, out, "--resume", "--max-params", "300k", trials=16)
    assert other.exit_code == 2 and "the budget" in other.output
    unlimited = table_search(table, out, "--resume", trials=16)
    assert unlimited.exit_code == 2 and "the stored search has {'max_params': 400000}" in (
        unlimited.output
    )
    resumed = table_search(table, out, "--resume", "--max-params", "400000", trials=16)
    assert resumed.exit_code == 0, resumed.output
    assert all(t.parameters <= 400_000 for t in stored_trials(out) if t.status == "ok")


def test_a_store_from_before_over_budget_existed_opens_and_resumes(
    table: Path, tmp_path: Path
) -> None:
    """An older store's trials table allows only ok, failed and repeat; it is read, and a
    search without a budget (the only kind it can hold) continues in it."""
    out = tmp_path / "out"
    assert table_search(table, out, trials=8).exit_code == 0
    with sqlite3.connect(out / "search.db") as db:
        (schema,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'trials'").fetchone()
        old = schema.replace(", 'over_budget'", "")
        assert old != schema
        db.execute("PRAGMA writable_schema = ON")
        db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'trials'", (old,))
        config = json.loads(db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
        del config["budget"]  # an older nasforge recorded no budget
        db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    report = run("report", out)
    assert report.exit_code == 0, report.output
    resumed = table_search(table, out, "--resume", trials=12)
    assert resumed.exit_code == 0, resumed.output
    assert len(stored_trials(out)) == 12


# --- MnasNet's objective -------------------------------------------------------------


def test_the_mnas_objective_rewards_accuracy_times_cost_ratio(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = table_search(
        table, out, "--objective", "mnas", "--target-params", "200k", "--mnas-w", "-0.5"
    )
    assert result.exit_code == 0, result.output
    trained = [t for t in stored_trials(out) if t.status == "ok"]
    assert trained
    for t in trained:
        accuracy = t.metrics["valid12"] / 100
        assert t.reward == pytest.approx(accuracy * (t.parameters / 200_000) ** -0.5)
        objective = t.metrics["objective"]
        assert objective["accuracy"] == pytest.approx(accuracy)
        assert objective["value"] == t.reward and objective["w"] == -0.5
    assert "objective: mnas, reward = accuracy x (parameters / 200,000) ^ -0.5" in result.output


def test_the_latency_objective_needs_a_measured_latency() -> None:
    budget = Budget(objective="mnas", target_latency_ms=2.0).check()
    assert budget.w == -0.07
    measured = Outcome("ok", 0.5, {"valid12": 80.0, "latency_ms": 4.0}, parameters=10, macs=20)
    scored = mnas_outcome(measured, budget)
    assert scored.reward == pytest.approx(0.8 * 2.0**-0.07)
    unmeasured = Outcome("ok", 0.5, {"valid12": 80.0, "latency_error": "ExportError: x"})
    failed = mnas_outcome(unmeasured, budget)
    assert failed.status == "failed" and "ExportError: x" in (failed.error or "")


def test_latency_is_measured_in_onnxruntime_at_batch_1() -> None:
    from nasforge.runtime.latency import measure_latency

    arch = parse("cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1")
    torch.manual_seed(0)
    model = load_source(generate(arch, black=False)).build_model()
    latency = measure_latency(model, arch, warmup=2, runs=5)
    assert latency.median_ms > 0 and math.isfinite(latency.median_ms)
    assert latency.metrics()["latency"] == {"runs": 5, "warmup": 2, "threads": 1}


@pytest.mark.slow
def test_a_train_search_records_latency_and_both_rewards(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "search", "--space", "digits", "--dataset", "digits", "--trials", 3, "--out", out,
        "--no-progress", "--no-onnx", "--executor", "inline", "--objective", "mnas",
        "--target-latency-ms", "0.05", "--max-params", "6k",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    trials = stored_trials(out)
    assert any(t.status == "ok" for t in trials)
    for t in trials:
        if t.status == "ok":
            assert t.metrics["latency_ms"] > 0 and t.metrics["latency"]["threads"] == 1
            objective = t.metrics["objective"]
            assert t.reward == pytest.approx(
                objective["accuracy"] * (t.metrics["latency_ms"] / 0.05) ** -0.07
            )
            model = load_source(generate(parse(t.arch), black=False)).build_model()
            assert t.parameters == sum(p.numel() for p in model.parameters()) <= 6000
            assert t.macs == hooked_macs(model, (1, 8, 8))
        else:
            assert t.status in ("over_budget", "repeat"), t.error
    assert "latency ms" in (out / "report.md").read_text()


# --- the report: costs and Pareto fronts ---------------------------------------------


def record(trial: int, accuracy: float, parameters: int, status: str = "ok") -> TrialRecord:
    return TrialRecord(
        id=trial, step=0, slot=trial, arch=f"a{trial}", status=status, reward=accuracy**3,
        metrics={"valid12": accuracy * 100}, parameters=parameters, macs=parameters * 10,
    )  # fmt: skip


def test_the_pareto_front_keeps_what_nothing_beats() -> None:
    trials = [
        record(1, 0.70, 1000),
        record(2, 0.60, 2000),  # beaten by 1: more parameters, less accurate
        record(3, 0.80, 3000),
        record(4, 0.80, 3000),  # the same point as 3: the earlier stays
        record(5, 0.90, 9000, status="over_budget"),  # never trained
        record(6, 0.75, 500),
    ]
    assert [c.trial for c in pareto_front(trials, "parameters")] == [6, 3]
    trials.append(record(7, 0.65, 400))
    assert [c.trial for c in pareto_front(trials, "macs")] == [7, 6, 3]


def test_the_report_and_summary_show_costs_and_the_front(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert table_search(table, out, "--max-params", "400k").exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    trials = stored_trials(out)
    assert [row["trial"] for row in summary["trials"]] == [t.id for t in trials]
    assert all({"parameters", "macs", "status", "reward"} <= set(r) for r in summary["trials"])
    front = pareto_front(trials, "parameters")
    assert summary["pareto"]["parameters"] == [c.trial for c in front]
    assert summary["pareto"]["macs"] == [c.trial for c in pareto_front(trials, "macs")]
    assert (out / "pareto.png").read_bytes().startswith(b"\x89PNG")
    with TrialStore.open_readonly(out / "search.db") as store:
        text = render(build_report(store))
    assert "## Pareto front: accuracy vs parameters (pareto.png)" in text
    assert "## Pareto front: accuracy vs multiply-adds (pareto.png)" in text
    for c in front:
        assert f"| {c.trial} | {c.accuracy:.4f} | {c.parameters:,} |" in text
    best = max((t for t in trials if t.status == "ok"), key=lambda t: (t.reward, -t.id))
    assert summary["best"]["trial"] == best.id
