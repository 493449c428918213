"""A search whose fork server is killed while trials start goes on: the server is
started again, trials it took down are run again, and every trial is recorded once."""

from __future__ import annotations

import os
import signal
import threading
import time
from multiprocessing import forkserver
from pathlib import Path

import pytest
from nasforge.runtime.search.executors import Job, LocalPoolExecutor, default_start_method
from nasforge.runtime.search.loop import run_search
from nasforge.runtime.search.store import TrialRecord, TrialStore
from search_doubles import GateEvaluator, GreedyStrategy, SlowHiddenRewardEvaluator

pytestmark = pytest.mark.skipif(
    default_start_method() != "forkserver", reason="this platform has no fork server"
)


def server_pid() -> int | None:
    return forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]


@pytest.mark.parametrize("kill_after", [1, 2, 5])
def test_killing_the_fork_server_mid_search_loses_and_repeats_nothing(
    tmp_path: Path, kill_after: int
) -> None:
    killed: list[int] = []

    def kill_the_server(record: TrialRecord) -> None:
        if len(killed) == 0 and record.id >= kill_after:
            pid = server_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # while the other worker's trial still runs
            killed.append(pid)

    store = TrialStore.create(tmp_path / "search.db", {"strategy": "greedy", "seed": 3})
    with LocalPoolExecutor(SlowHiddenRewardEvaluator(0.2), 2) as executor:
        result = run_search(
            GreedyStrategy(seed=3), executor, store, trials=12, batch=4, on_trial=kill_the_server
        )
    trials = store.trials()
    store.close()
    assert killed, "the fork server was never killed"
    assert result.trials == 12
    assert [t.id for t in trials] == list(range(1, 13))
    # None of them failed for the lost server ("item 13" is the double's one failure).
    assert [t.error for t in trials if t.error not in (None, "unlucky")] == []
    assert server_pid() not in (None, killed[0])  # a new server took its place


def test_trials_running_when_the_server_dies_run_again_once(tmp_path: Path) -> None:
    gate = tmp_path / "open"
    executor = LocalPoolExecutor(GateEvaluator(gate), 3)
    lost: list[int] = []

    def kill_while_they_run() -> None:
        while len(executor._running) < 3 or not all(  # every trial's process runs
            r.reported for r in list(executor._running.values())
        ):
            time.sleep(0.02)
        pid = server_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        lost.append(pid)
        while len(executor._rerun) < 3:  # the pool noticed all three were lost
            time.sleep(0.02)
        gate.touch()

    killer = threading.Thread(target=kill_while_they_run, daemon=True)
    killer.start()
    with executor:
        results = list(executor.run([Job(key, f"item {key}") for key in range(5)]))
    killer.join()
    assert lost
    assert executor._rerun == {0, 1, 2}
    assert sorted(r.key for r in results) == [0, 1, 2, 3, 4]
    assert [r.outcome.error for r in results if r.outcome.status != "ok"] == []
