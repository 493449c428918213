"""Executors: every kind of child failure becomes a failed Outcome with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from nasforge.runtime.search.evaluator import FAILED_REWARD
from nasforge.runtime.search.executors import InProcessExecutor, Job, LocalPoolExecutor
from search_doubles import ScriptedEvaluator


@pytest.fixture(scope="module")
def pool() -> LocalPoolExecutor:
    executor = LocalPoolExecutor(ScriptedEvaluator(), workers=2, timeout=4.0)
    # Start the fork server (a restart, when another pool started it with other modules)
    # before the tests' trials count on the timeout.
    assert [r.outcome.reward for r in executor.run([Job(0, "ok 1")])] == [1.0]
    return executor


def run_all(executor: object, scripts: list[str]) -> dict[int, object]:
    jobs = [Job(key=i, arch=script, seed=7) for i, script in enumerate(scripts)]
    results = list(executor.run(jobs))  # type: ignore[attr-defined]
    assert sorted(r.key for r in results) == list(range(len(scripts)))
    return {r.key: r for r in results}


def test_in_process_records_an_exception_as_a_failure() -> None:
    results = run_all(InProcessExecutor(ScriptedEvaluator()), ["ok 0.5", "raise", "fail"])
    assert results[0].outcome.status == "ok" and results[0].outcome.reward == 0.5
    assert results[0].outcome.metrics == {"seed": 7}
    assert results[0].worker == "main"
    assert results[1].outcome.status == "failed"
    assert results[1].outcome.reward == FAILED_REWARD
    assert "RuntimeError: scripted bug" in results[1].outcome.error
    assert results[2].outcome.error == "scripted failure"


def test_pool_survives_every_kind_of_child_failure(pool: LocalPoolExecutor) -> None:
    scripts = ["ok 0.25", "raise", "exit", "segv", "kill", "hang", "ok 0.75", "fail"]
    results = run_all(pool, scripts)
    outcomes = {scripts[k]: r.outcome for k, r in results.items()}
    assert outcomes["ok 0.25"].status == "ok" and outcomes["ok 0.25"].reward == 0.25
    assert outcomes["ok 0.75"].reward == 0.75
    for script in ("raise", "exit", "segv", "kill", "hang", "fail"):
        assert outcomes[script].status == "failed", script
        assert outcomes[script].reward == FAILED_REWARD
    assert "RuntimeError: scripted bug" in outcomes["raise"].error
    assert "exited with status 3" in outcomes["exit"].error
    assert "SIGSEGV" in outcomes["segv"].error
    assert "SIGKILL" in outcomes["kill"].error
    assert outcomes["hang"].error.startswith("timed out: no result after 4 s")
    assert outcomes["hang"].metrics["reason"] == "timeout"
    assert outcomes["exit"].metrics["reason"] == "crashed"
    # Each trial ran in a process of its own, on one of two pool slots.
    pids = {r.worker.split("pid ")[1] for r in results.values()}
    assert len(pids) == len(scripts)
    assert {r.worker.split("/")[0] for r in results.values()} == {"pool-0", "pool-1"}
    # The hang holds one slot until its timeout; the trials after it ran on the other slot
    # meanwhile, so its result came last (results arrive as trials finish).
    assert [scripts[k] for k in results][-1] == "hang"


def test_pool_runs_workers_in_parallel(pool: LocalPoolExecutor, tmp_path: Path) -> None:
    """Two trials that each wait for the other to start finish only side by side: run one
    after the other, the first would wait until its timeout and fail."""
    a, b = tmp_path / "a", tmp_path / "b"
    results = run_all(pool, [f"meet {a} {b} 0.1", f"meet {b} {a} 0.2"])
    assert [r.outcome.status for r in results.values()] == ["ok", "ok"]
    assert {r.outcome.reward for r in results.values()} == {0.1, 0.2}


def test_pool_kills_its_children_when_the_caller_stops(pool: LocalPoolExecutor) -> None:
    results = pool.run([Job(0, "ok 0.5"), Job(1, "hang"), Job(2, "hang")])
    first = next(results)
    assert first.key == 0
    running = list(pool._running.values())
    assert running
    results.close()  # what happens when the search loop raises mid-batch
    assert not pool._running
    assert all(not r.process.is_alive() for r in running)
