"""The search loop: ask the strategy, skip repeats, evaluate the rest, store, tell, checkpoint.

One controller step:

1. ``strategy.ask(n)`` proposes n architectures (canonical one-line texts).
2. A text evaluated before (in an earlier step or earlier in this batch) is a
   repeat: it is not evaluated again; its row says ``repeat`` and points to the
   original, whose reward it reuses.
3. The executor evaluates the new texts; each trial is stored (committed) the
   moment it finishes.
4. ``strategy.tell(proposals, rewards)`` updates the strategy.
5. The strategy's state after the update is checkpointed for the next step,
   together with that step's batch size and first trial id.

Why this survives a SIGKILL at any moment: the store holds, for the latest step
k, the strategy state before step k asked, and every trial of step k that had
finished. Resuming loads that state and asks again; a strategy is deterministic
given its state (controller/strategy.py), so it proposes the same n texts. The
trials of step k already stored are reused, not re-run (their texts are checked
against the new proposals, so a strategy that is not deterministic is caught,
not silently mixed in); the rest are evaluated. A step's checkpoint is written
only after its predecessor's trials are all stored and told, in one transaction
with the predecessor's tell statistics, so no trial is lost and none repeated,
and trial ids (a trial's position in the search) come out as in an
uninterrupted run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nasforge.controller.strategy import Proposal, Strategy, StrategyDiverged
from nasforge.grammar.errors import NasforgeError

from .executors import Executor, Job, JobResult
from .store import Checkpoint, TrialRecord, TrialStore, dump_state, load_state

TrialCallback = Callable[[TrialRecord], None]
StepCallback = Callable[[int, dict[str, float]], None]


class SearchError(NasforgeError):
    """The loop cannot go on: a strategy that broke its contract, a store that disagrees."""


@dataclass(frozen=True)
class SearchResult:
    trials: int  # trials in the store at the end
    evaluated: int  # of those, how many ran the evaluator (not repeats)
    resumed_from: int | None  # the step a resumed search continued at
    reused: int  # trials of the resumed step found in the store, not re-run
    seconds: float


def run_search(
    strategy: Strategy,
    executor: Executor,
    store: TrialStore,
    *,
    trials: int,
    batch: int,
    seed: int = 0,
    hooks: Sequence[TrialCallback] = (),
    on_trial: TrialCallback | None = None,
    on_step: StepCallback | None = None,
) -> SearchResult:
    """Run (or continue) the search stored in `store` until it holds `trials` trials.

    `batch` proposals per controller step; `seed` is passed to every evaluation.
    `hooks` act on each trial as it is stored (repeats included), in order, then
    `on_trial` sees it (a progress display); `on_step` sees each step's tell statistics.
    """
    on_trial = each_trial(hooks, on_trial)
    if trials < 0 or batch < 1:
        raise ValueError(f"need trials >= 0 and batch >= 1, not {trials} and {batch}")
    began = time.perf_counter()
    checkpoint = store.latest_checkpoint()
    resumed_from: int | None = None
    if checkpoint is None:
        step, first = 0, 1
        stored: dict[int, TrialRecord] = {}
        store.save_checkpoint(0, min(batch, trials), 1, dump_state(strategy.state_dict()))
    else:
        strategy.load_state_dict(
            load_state(checkpoint.state, f"the controller checkpoint of step {checkpoint.step}")
        )
        step, first = checkpoint.step, checkpoint.first_trial
        stored = {t.slot: t for t in store.trials(step=step)}
        resumed_from = step
    reused = len(stored)
    known = {t.arch: t for t in store.iter_evaluated()}
    evaluated = len(known)
    while True:
        size = _step_size(checkpoint, step, stored, batch, trials - (first - 1))
        if size <= 0:
            break
        if checkpoint is not None and checkpoint.size != size:
            store.resize_step(step, size)  # a resumed search asked for more trials
        proposals = strategy.ask(size)
        if len(proposals) != size:
            raise SearchError(f"strategy {strategy.name} returned {len(proposals)} of {size}")
        rewards, new = _run_step(
            step, first, proposals, stored, known, executor, store, seed, on_trial
        )
        evaluated += new
        try:
            stats = strategy.tell(proposals, rewards)
        except StrategyDiverged as err:
            raise StrategyDiverged(
                f"{err}. The search stops: {store.path} holds every trial so far and the "
                f"checkpoint before this update (step {step}); `nasforge report` reads it"
            ) from None
        if on_step is not None:
            on_step(step, stats)
        step, first = step + 1, first + size
        store.save_checkpoint(
            step,
            max(0, min(batch, trials - (first - 1))),
            first,
            dump_state(strategy.state_dict()),
            told_stats={k: float(v) for k, v in stats.items()},
        )
        checkpoint, stored = None, {}
    return SearchResult(
        trials=store.count(),
        evaluated=evaluated,
        resumed_from=resumed_from,
        reused=reused,
        seconds=time.perf_counter() - began,
    )


def each_trial(
    hooks: Sequence[TrialCallback], on_trial: TrialCallback | None
) -> TrialCallback | None:
    """One callback calling every hook, then on_trial; None when there is nothing to call."""
    callbacks = [*hooks, *([on_trial] if on_trial is not None else [])]
    if not callbacks:
        return None

    def call_all(record: TrialRecord) -> None:
        for callback in callbacks:
            callback(record)

    return call_all


def _step_size(
    checkpoint: Checkpoint | None,
    step: int,
    stored: dict[int, TrialRecord],
    batch: int,
    remaining: int,
) -> int:
    """How many proposals step `step` makes.

    A resumed step that already stored trials keeps the size it was asked with (its
    proposals must come out the same); otherwise the size follows from the trials
    still wanted (a resumed search may have been given more, or fewer)."""
    if checkpoint is not None and checkpoint.step == step and stored:
        return checkpoint.size
    return min(batch, remaining)


def _run_step(
    step: int,
    first: int,
    proposals: Sequence[Proposal],
    stored: dict[int, TrialRecord],
    known: dict[str, TrialRecord],
    executor: Executor,
    store: TrialStore,
    seed: int,
    on_trial: TrialCallback | None,
) -> tuple[list[float], int]:
    """Evaluate one step's proposals; (their rewards in order, how many were evaluated)."""
    rewards: list[float | None] = [None] * len(proposals)
    jobs: list[Job] = []
    waiting: dict[str, list[int]] = {}  # text -> later slots of this batch repeating it
    for slot, proposal in enumerate(proposals):
        trial_id = first + slot
        previous = stored.get(slot)
        if previous is not None:
            if previous.arch != proposal.arch:
                raise SearchError(
                    f"resuming step {step}: the strategy now proposes {proposal.arch!r} for "
                    f"trial {trial_id}, but the store holds {previous.arch!r}; a strategy "
                    "must propose the same architectures after load_state_dict"
                )
            rewards[slot] = previous.reward
            continue
        original = known.get(proposal.arch)
        if original is not None:
            rewards[slot] = _store_repeat(store, step, slot, trial_id, proposal, original, on_trial)
        elif proposal.arch in waiting:
            waiting[proposal.arch].append(slot)
        else:
            waiting[proposal.arch] = []
            jobs.append(Job(key=slot, arch=proposal.arch, seed=seed))
    for result in executor.run(jobs):
        slot = result.key
        record = trial_record(step, slot, first + slot, proposals[slot], result)
        store.add_trial(record)
        known[record.arch] = record
        rewards[slot] = record.reward
        if on_trial is not None:
            on_trial(record)
        for later in waiting.pop(record.arch, []):
            rewards[later] = _store_repeat(
                store, step, later, first + later, proposals[later], record, on_trial
            )
    missing = [first + slot for slot, reward in enumerate(rewards) if reward is None]
    if missing:
        raise SearchError(f"the executor returned no result for trials {missing}")
    return [float(r) for r in rewards if r is not None], len(jobs)


def trial_record(
    step: int, slot: int, trial_id: int, proposal: Proposal, result: JobResult
) -> TrialRecord:
    """The row of an evaluated trial."""
    outcome = result.outcome
    return TrialRecord(
        id=trial_id,
        step=step,
        slot=slot,
        arch=proposal.arch,
        status=outcome.status if outcome.status in ("ok", "over_budget") else "failed",
        reward=float(outcome.reward),
        decisions=tuple(int(d) for d in proposal.decisions),
        depth=proposal.depth,
        metrics=dict(outcome.metrics),
        parameters=outcome.parameters,
        macs=outcome.macs,
        seconds=outcome.seconds,
        error=outcome.error,
        worker=result.worker,
        started_at=result.started_at,
        finished_at=result.finished_at,
    )


def _store_repeat(
    store: TrialStore,
    step: int,
    slot: int,
    trial_id: int,
    proposal: Proposal,
    original: TrialRecord,
    on_trial: TrialCallback | None,
) -> float:
    """Store trial `trial_id` as a repeat of `original` (not evaluated); its reward."""
    record = repeat_record(step, slot, trial_id, proposal, original)
    store.add_trial(record)
    if on_trial is not None:
        on_trial(record)
    return original.reward


def repeat_record(
    step: int, slot: int, trial_id: int, proposal: Proposal, original: TrialRecord
) -> TrialRecord:
    """The row of a trial that repeats `original`'s architecture (not evaluated again)."""
    now = time.time()
    return TrialRecord(
        id=trial_id,
        step=step,
        slot=slot,
        arch=proposal.arch,
        status="repeat",
        reward=original.reward,
        decisions=tuple(int(d) for d in proposal.decisions),
        depth=proposal.depth,
        repeat_of=original.id,
        parameters=original.parameters,
        macs=original.macs,
        seconds=0.0,
        started_at=now,
        finished_at=now,
    )
