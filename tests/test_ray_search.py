"""The Ray backend on a local 2-CPU cluster: the same strings as the local search for K=1, m=1;
a child worker and a replica killed mid-run; a SIGKILLed driver resumed with --resume; child
retries and timeouts. In each, no trial is lost or stored twice."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="the Ray backend needs the nasforge[ray] extra")

from nasforge.controller.space import load_space  # noqa: E402
from nasforge.controller.strategy import make_strategy  # noqa: E402
from nasforge.runtime.search.executors import InProcessExecutor, Job  # noqa: E402
from nasforge.runtime.search.loop import run_search  # noqa: E402
from nasforge.runtime.search.ray_children import ChildResources, RayExecutor  # noqa: E402
from nasforge.runtime.search.ray_search import RaySettings, replica_name, run_ray_search  # noqa: E402
from nasforge.runtime.search.store import TrialStore  # noqa: E402
from nasforge.runtime.search.table import TableEvaluator  # noqa: E402
from search_doubles import (  # noqa: E402
    KillOnceTableEvaluator,
    ScriptedEvaluator,
    poll_until,
)

TESTS = Path(__file__).resolve().parent
OPTIONS = {"lr": 0.05}

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray cluster of 2 CPUs whose workers can import the test doubles; its address."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}},
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()



def _rows(store: TrialStore) -> list[tuple[object, ...]]:
    return [(t.id, t.step, t.slot, t.arch, t.status, t.reward) for t in store.trials()]


def _check_complete(store: TrialStore, trials: int) -> None:
    """Trials 1..N, each once; no architecture evaluated twice; every round pushed."""
    records = store.trials()
    assert [t.id for t in records] == list(range(1, trials + 1))
    assert len({(t.step, t.slot) for t in records}) == trials
    evaluated = [t.arch for t in records if t.status != "repeat"]
    assert len(evaluated) == len(set(evaluated))
    rounds = store.rounds()
    assert sum(r.size for r in rounds) == trials
    assert all(r.told_at is not None and r.staleness is not None for r in rounds)
    by_id = {t.id: t for t in records}
    for r in rounds:
        for slot, proposal in enumerate(r.proposals):
            assert by_id[r.first_trial + slot].arch == proposal["arch"]


def _pid(actor: object) -> int:
    """The process an actor runs in (a call to a restarting actor waits for the restart)."""
    return ray.get(actor.__ray_call__.remote(lambda _self: os.getpid()))  # type: ignore[attr-defined]


def test_one_replica_one_child_samples_the_local_backends_strings(cluster, table, tmp_path):
    space = load_space("nb201")
    evaluator = TableEvaluator(table)
    local = TrialStore.create(tmp_path / "local.db", {})
    strategy = make_strategy("reinforce", space, seed=5, **OPTIONS)
    run_search(strategy, InProcessExecutor(evaluator), local, trials=16, batch=1, seed=5)
    remote = TrialStore.create(tmp_path / "ray.db", {})
    # One shard: tests/test_param_server.py shows shards change nothing; each actor here is a
    # process that imports torch.
    run_ray_search(space, OPTIONS, evaluator, remote, trials=16, seed=5, settings=RaySettings())
    assert _rows(remote) == _rows(local)
    assert len({row[3] for row in _rows(local)}) > 3  # the controller moved between strings
    assert [r.staleness for r in remote.rounds()] == [0] * 16  # one replica: never stale


@pytest.mark.slow
def test_a_killed_child_worker_and_a_killed_replica_lose_nothing(cluster, table, tmp_path):
    marks = tmp_path / "evaluations"
    evaluator = KillOnceTableEvaluator(table, marks, kill_at=5, delay=0.25)
    store = TrialStore.create(tmp_path / "search.db", {})
    settings = RaySettings(replicas=2, children=2, name_prefix="faults")
    killed: list[int] = []  # the pid of the replica killed

    def kill_a_replica(record: object) -> None:
        if store.count() == 4 and not killed:
            replica = ray.get_actor(replica_name("faults", 0))
            before = _pid(replica)
            killed.append(before)
            ray.kill(replica, no_restart=False)
            # Hold the search (this runs in the driver's loop) until replica 0 answers
            # from its new process, so that rounds are left for it whatever the load:
            # under load, replica 1 did every remaining round while replica 0 restarted.
            while _pid(replica) == before:
                time.sleep(0.05)

    result = run_ray_search(
        load_space("nb201"),
        {},
        evaluator,
        store,
        trials=24,
        seed=2,
        settings=settings,
        on_trial=kill_a_replica,
    )
    _check_complete(store, 24)
    assert result.trials == 24
    # The 5th evaluation's process died and Ray ran that child again: one more evaluation
    # than evaluated trials, and no trial failed.
    records = store.trials()
    assert len(list(marks.iterdir())) == sum(t.status != "repeat" for t in records) + 1
    assert all(t.status in ("ok", "repeat") for t in records)
    # Replica 0 was restarted and sampled again from the shards' weights.
    assert killed and any(r.replica == 0 and r.sampled_at > killed[0] for r in store.rounds())
    assert {r.replica for r in store.rounds()} == {0, 1}


def test_a_child_that_always_dies_fails_after_its_retries_and_a_slow_one_times_out(cluster):
    resources = ChildResources(retries=1, timeout=2.0)
    with RayExecutor(ScriptedEvaluator(), resources, workers=2) as executor:
        jobs = [Job(1, "kill"), Job(2, "ok 0.5"), Job(3, "hang")]
        results = {r.key: r.outcome for r in executor.run(jobs)}
    assert (results[1].status, results[1].metrics["reason"]) == ("failed", "crashed")
    assert results[1].error == (
        "the child's Ray worker died 2 times (killed, out of memory, or a crash)"
    )
    assert (results[2].status, results[2].reward) == ("ok", 0.5)
    assert (results[3].status, results[3].metrics["reason"]) == ("failed", "timeout")
    assert results[3].error == "timed out: no result after 2 s; the child was stopped"


def test_a_trained_childs_weights_come_back_to_the_drivers_folder(cluster, tmp_path):
    from nasforge.runtime.search.evaluators import TrainEvaluator

    folder = tmp_path / "weights"
    evaluator = TrainEvaluator("digits", epochs=1, threads=1, weights_dir=folder)
    arch = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1"
    with RayExecutor(evaluator, ChildResources(), workers=1) as executor:
        (result,) = executor.run([Job(1, arch)])
    assert result.outcome.status == "ok", result.outcome.error
    assert result.worker.startswith("ray ")
    saved = folder / result.outcome.metrics["weights"]
    from nasforge.codegen import load
    from nasforge.grammar import parse

    model = load(parse(arch)).build_model()
    model.load_state_dict(torch.load(saved, weights_only=True))  # strict: every tensor
    assert [p.name for p in folder.iterdir()] == [saved.name]  # no partial file left


DRIVER_TRIALS = 32
HANG_POLLS = 12_000  # looks at most this often (minutes); ends the wait only on a hang


def _arguments(table: Path, out: Path, *extra: str) -> list[str]:
    return [
        "search", "--space", "nb201", "--evaluator", "table", "--table", str(table),
        "--trials", str(DRIVER_TRIALS), "--seed", "3", "--backend", "ray", "--replicas", "2",
        "--children", "2", "--ps-shards", "2", "--option", "lr=0.05", "--out", str(out),
        "--no-progress", "--no-onnx", *extra,
    ]  # fmt: skip


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=30) as db:
            return int(db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_a_sigkilled_driver_resumes_without_losing_or_repeating_a_trial(
    cluster, table, tmp_path
):
    from click.testing import CliRunner
    from nasforge.runtime.cli import cli

    out = tmp_path / "search"
    # The driver to kill is a process of its own that joins this module's cluster.
    driver = subprocess.Popen(
        [sys.executable, "-m", "nasforge.runtime.cli", *_arguments(table, out),
         "--address", cluster],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    poll_until(
        lambda: _count(out / "search.db") >= 8 or driver.poll() is not None, polls=HANG_POLLS
    )
    assert driver.poll() is None, driver.stderr.read().decode() if driver.stderr else ""
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    with TrialStore.open(out / "search.db") as store:
        before = _rows(store)
    assert 8 <= len(before) < DRIVER_TRIALS
    # Resumed in this process (the command uses the connection it finds).
    finished = CliRunner().invoke(cli, _arguments(table, out, "--resume"))
    assert finished.exit_code == 0, finished.output
    with TrialStore.open(out / "search.db") as store:
        _check_complete(store, DRIVER_TRIALS)
        after = _rows(store)
    assert set(before) <= set(after)  # what was stored is kept as it was
    assert "resumed at round" in finished.stderr
    assert "- backend ray: 2 replicas x 2 children, 2 parameter-server shards; " in finished.stdout


def test_other_strategies_run_their_children_as_ray_tasks(cluster, table, tmp_path):
    from click.testing import CliRunner
    from nasforge.runtime.cli import cli

    out = tmp_path / "evolution"
    result = CliRunner().invoke(
        cli,
        ["search", "--space", "nb201", "--evaluator", "table", "--table", str(table),
         "--strategy", "evolution", "--option", "population=4", "--trials", "10",
         "--backend", "ray", "--children", "2", "--out", str(out), "--no-onnx", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert ray.is_initialized()  # the command left the caller's connection alone
    with TrialStore.open(out / "search.db") as store:
        records = store.trials()
        assert [t.id for t in records] == list(range(1, 11))
        assert {t.worker.split()[0] for t in records if t.status == "ok"} == {"ray"}
        assert store.config["batch"] == 2


def test_options_whose_state_a_replica_cannot_keep_are_refused(cluster, table, tmp_path):
    store = TrialStore.create(tmp_path / "s.db", {})
    with pytest.raises(ValueError, match=r"cannot run the option\(s\) screen: their state"):
        run_ray_search(
            load_space("nb201"),
            {"screen": 5},
            TableEvaluator(table),
            store,
            trials=2,
            seed=0,
            settings=RaySettings(),
        )
