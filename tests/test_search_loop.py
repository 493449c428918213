"""The search loop with test doubles: dedup, failures, checkpoints, and resuming after a
crash at every possible point gives the same trials as an uninterrupted run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from nasforge.runtime.search.executors import InProcessExecutor, Job, JobResult
from nasforge.runtime.search.loop import SearchError, run_search
from nasforge.runtime.search.store import TrialStore, load_state
from search_doubles import GreedyStrategy, HiddenRewardEvaluator, hidden_reward, write_nb201_table

CONFIG = {"strategy": "greedy", "seed": 3}


class Crash(Exception):
    """Stands in for a SIGKILL of the search process."""


class CrashingExecutor(InProcessExecutor):
    """Evaluates until `budget` results have been returned, then 'dies'."""

    def __init__(self, budget: int) -> None:
        super().__init__(HiddenRewardEvaluator())
        self.budget = budget

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        for result in super().run(jobs):
            if self.budget == 0:
                raise Crash
            self.budget -= 1
            yield result


class Recording(InProcessExecutor):
    """Remembers what it evaluated."""

    def __init__(self) -> None:
        super().__init__(HiddenRewardEvaluator())
        self.evaluated: list[str] = []

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        self.evaluated.extend(job.arch for job in jobs)
        yield from super().run(jobs)


def summary(store: TrialStore) -> list[tuple[object, ...]]:
    return [(t.id, t.step, t.slot, t.arch, t.status, t.reward, t.repeat_of) for t in store.trials()]


def search(store: TrialStore, executor: InProcessExecutor, trials: int = 30) -> object:
    return run_search(GreedyStrategy(seed=3), executor, store, trials=trials, batch=4, seed=5)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[object, ...]]:
    store = TrialStore.create(tmp_path_factory.mktemp("ref") / "search.db", CONFIG)
    result = search(store, InProcessExecutor(HiddenRewardEvaluator()))
    rows = summary(store)
    assert result.trials == 30 and result.resumed_from is None
    assert result.evaluated == sum(1 for row in rows if row[4] != "repeat")
    store.close()
    return rows


def test_every_proposal_is_a_trial_and_repeats_are_not_evaluated(
    reference: list[tuple[object, ...]],
) -> None:
    assert [row[0] for row in reference] == list(range(1, 31))
    assert [(row[1], row[2]) for row in reference] == [(i // 4, i % 4) for i in range(30)]
    first_of: dict[str, int] = {}
    for trial_id, _, _, arch, status, reward, repeat_of in reference:
        if arch in first_of:
            assert status == "repeat" and repeat_of == first_of[arch]
        else:
            first_of[arch] = trial_id
            assert status in ("ok", "failed") and repeat_of is None
        expected = 0.0 if arch == "item 13" else hidden_reward(arch)  # type: ignore[arg-type]
        assert reward == expected
    assert any(row[4] == "repeat" for row in reference), "the greedy strategy should repeat"


def test_checkpoints_hold_the_state_after_each_tell(tmp_path: Path) -> None:
    store = TrialStore.create(tmp_path / "s.db", CONFIG)
    search(store, InProcessExecutor(HiddenRewardEvaluator()), trials=10)
    checkpoints = store.checkpoints()
    assert [(c.step, c.size, c.first_trial) for c in checkpoints] == [
        (0, 4, 1), (1, 4, 5), (2, 2, 9), (3, 0, 11)
    ]
    assert all(c.told_at is not None for c in checkpoints[:-1])
    assert checkpoints[-1].told_at is None
    assert load_state(checkpoints[-1].state)["told"] == 10
    assert checkpoints[1].stats is not None and checkpoints[1].stats["told"] == 8.0


@pytest.mark.parametrize("budget", range(0, 40))
def test_resuming_after_a_crash_anywhere_repeats_and_loses_nothing(
    tmp_path: Path, budget: int, reference: list[tuple[object, ...]]
) -> None:
    store = TrialStore.create(tmp_path / "s.db", CONFIG)
    crashed = True
    try:
        search(store, CrashingExecutor(budget))
        crashed = False
    except Crash:
        pass
    before = summary(store)
    by_id = {row[0]: row for row in reference}
    assert all(row == by_id[row[0]] for row in before)  # stored as they finished: any order
    store.close()
    store = TrialStore.open(tmp_path / "s.db")
    recording = Recording()
    result = search(store, recording)
    assert summary(store) == reference
    assert result.resumed_from is not None
    # Nothing evaluated before the crash is evaluated again.
    done_before = {row[3] for row in before if row[4] != "repeat"}
    assert not done_before & set(recording.evaluated)
    assert len(recording.evaluated) == len(set(recording.evaluated))
    assert crashed == (budget < sum(1 for row in reference if row[4] != "repeat"))


def test_a_crash_between_tell_and_checkpoint_replays_the_step(
    tmp_path: Path, reference: list[tuple[object, ...]]
) -> None:
    store = TrialStore.create(tmp_path / "s.db", CONFIG)

    def die(step: int, stats: dict[str, float]) -> None:
        if step == 2:
            raise Crash

    with pytest.raises(Crash):
        run_search(
            GreedyStrategy(seed=3), InProcessExecutor(HiddenRewardEvaluator()), store,
            trials=30, batch=4, seed=5, on_step=die,
        )
    assert len(store.trials()) == 12  # step 2's trials are stored; its checkpoint is not
    assert store.latest_checkpoint().step == 2
    recording = Recording()
    result = search(store, recording)
    assert result.resumed_from == 2 and result.reused == 4
    assert summary(store) == reference
    assert not {row[3] for row in reference[:12]} & set(recording.evaluated)


def test_more_trials_on_resume_extends_the_search(tmp_path: Path) -> None:
    store = TrialStore.create(tmp_path / "s.db", CONFIG)
    search(store, InProcessExecutor(HiddenRewardEvaluator()), trials=10)
    result = search(store, InProcessExecutor(HiddenRewardEvaluator()), trials=18)
    assert result.trials == 18 and result.resumed_from == 3
    assert [t.id for t in store.trials()] == list(range(1, 19))
    assert [(c.step, c.size) for c in store.checkpoints()][-3:] == [(3, 4), (4, 4), (5, 0)]


def test_a_strategy_that_proposes_differently_after_restore_is_caught(tmp_path: Path) -> None:
    store = TrialStore.create(tmp_path / "s.db", CONFIG)
    with pytest.raises(Crash):
        search(store, CrashingExecutor(2))

    class Forgetful(GreedyStrategy):
        def load_state_dict(self, state: dict[str, object]) -> None:
            pass  # ignores the checkpoint: asks from a fresh seed

    with pytest.raises(SearchError, match="must propose the same architectures"):
        run_search(
            Forgetful(seed=99), InProcessExecutor(HiddenRewardEvaluator()), store,
            trials=30, batch=4,
        )


@pytest.fixture(scope="module")
def nb201_table(tmp_path_factory: pytest.TempPathFactory) -> object:
    from nasforge.runtime.search.table import TableEvaluator

    return TableEvaluator(write_nb201_table(tmp_path_factory.mktemp("t") / "nb201.csv"))


@pytest.mark.parametrize("name", ["reinforce", "ppo", "evolution", "random"])
def test_every_strategy_resumes_to_the_uninterrupted_sequence(
    tmp_path: Path, name: str, nb201_table: object
) -> None:
    """The real strategies through the store: torch.save'd state (LSTM weights, Adam,
    baseline, generator) restored from the checkpoint BLOB proposes the same batches."""
    from nasforge.controller.space import load_space
    from nasforge.controller.strategy import make_strategy

    space = load_space("nb201")

    def run(path: Path, executor: InProcessExecutor) -> None:
        store = TrialStore.open(path) if path.exists() else TrialStore.create(path, CONFIG)
        try:
            run_search(make_strategy(name, space, seed=1), executor, store, trials=40, batch=6)
        finally:
            store.close()

    class Dying(InProcessExecutor):
        def __init__(self, budget: int) -> None:
            super().__init__(nb201_table)  # type: ignore[arg-type]
            self.budget = budget

        def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
            for result in super().run(jobs):
                if self.budget == 0:
                    raise Crash
                self.budget -= 1
                yield result

    run(tmp_path / "ref.db", InProcessExecutor(nb201_table))  # type: ignore[arg-type]
    for budget in (3, 11, 17):  # three crashes, each mid-step, then the rest
        with pytest.raises(Crash):
            run(tmp_path / "crashed.db", Dying(budget))
    run(tmp_path / "crashed.db", InProcessExecutor(nb201_table))  # type: ignore[arg-type]
    with TrialStore.open(tmp_path / "ref.db") as ref, TrialStore.open(tmp_path / "crashed.db") as got:
        assert summary(got) == summary(ref)
        assert len(summary(got)) == 40
