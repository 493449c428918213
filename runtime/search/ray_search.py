"""The Ray backend of `nasforge search`: asynchronous REINFORCE, as the NAS paper ran it.

S parameter-server shards hold the controller's weights and Adam state; K replicas
each pull the current weights, sample a round of m architectures, wait for their
children (Ray tasks with the resources asked for) and push the round's gradient,
which every shard applies as it arrives (NAS paper §3.4, Figure 3). Replicas do not
wait for each other, so a gradient may be computed from weights a few versions old;
each round's staleness is recorded.

This driver is the store's one writer. It gives each round its trial ids when the
round arrives, skips repeats (an architecture evaluated or being evaluated is not
run again; the repeat waits for its original's reward), stores every trial as it
finishes, and submits the children itself, so a replica that dies loses no child
(Ray ties a task's result to the process that submitted it).

What survives a SIGKILL of the driver (`--resume`): every round is stored, with its
proposals, trial ids, the weights it sampled with and the replica's generator state,
before any of its children starts; every finished trial; and, at most a second after
each update, a checkpoint of every shard listing the rounds it has applied. Resuming
restores the shards, finishes the stored rounds' missing children (never re-sampling
them) and pushes again the gradients of rounds that some shard had not applied (a
shard skips a round it has applied), then samples on. Trials are neither lost nor
repeated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from nasforge.controller.param_server import (
    LOCAL_ONLY_OPTIONS,
    Layout,
    dump,
    initial_generator,
    load,
    make_shards,
)
from nasforge.controller.reinforce import Reinforce
from nasforge.controller.space import Space
from nasforge.controller.strategy import Proposal

from .evaluator import Evaluator
from .executors import Job
from .loop import (
    SearchError,
    SearchResult,
    TrialCallback,
    each_trial,
    repeat_record,
    trial_record,
)
from .ray_backend import ReplicaActor, ShardActor
from .ray_children import ChildResources, child_result, keep_weights, submit_child
from .store import RoundRecord, TrialRecord, TrialStore

RoundCallback = Callable[[int, dict[str, float]], None]
# The shards are checkpointed at most this often (and once more at the end). Rounds keep
# the weights they sampled with until a checkpoint covers them, so a resumed search can
# replay any push made since; a checkpoint per update would cost a store write per trial.
CHECKPOINT_EVERY_S = 1.0


@dataclass(frozen=True)
class RaySettings:
    replicas: int = 1  # K
    children: int = 1  # m: architectures per round
    shards: int = 1  # S
    resources: ChildResources = field(default_factory=ChildResources)
    # Actors are named PREFIX-shard-I and PREFIX-replica-K (unique in the cluster).
    name_prefix: str = field(default_factory=lambda: f"nasforge-{uuid.uuid4().hex[:12]}")


def replica_name(prefix: str, replica: int) -> str:
    return f"{prefix}-replica-{replica}"


@dataclass
class _Round:
    number: int
    replica: int
    first: int
    proposals: list[Proposal]
    versions: tuple[int, ...]
    weights: bytes
    rewards: list[float | None] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.proposals)

    def complete(self) -> bool:
        return all(r is not None for r in self.rewards)

    @classmethod
    def of(cls, record: RoundRecord) -> _Round:
        """A stored round, none of its rewards known yet."""
        proposals = [
            Proposal(p["arch"], tuple(p["decisions"]), p["depth"]) for p in record.proposals
        ]
        return cls(
            record.round,
            record.replica,
            record.first_trial,
            proposals,
            record.versions,
            record.weights or b"",
            [None] * len(proposals),
        )


def run_ray_search(
    space: Space,
    options: dict[str, Any],
    evaluator: Evaluator,
    store: TrialStore,
    *,
    trials: int,
    seed: int,
    settings: RaySettings,
    hooks: Sequence[TrialCallback] = (),
    on_trial: TrialCallback | None = None,
    on_round: RoundCallback | None = None,
) -> SearchResult:
    """Run (or continue) the search in `store` until it holds `trials` trials.

    Needs a connected Ray (ray.init). `options` are Reinforce's; `seed` seeds the
    controller's weights, the replicas' sampling and every child's training. `hooks`,
    then `on_trial`, see each trial as it is stored; `on_round` each round's statistics."""
    driver = _Driver(space, options, evaluator, store, trials, seed, settings)
    try:
        return driver.run(each_trial(hooks, on_trial), on_round)
    finally:
        driver.close()


class _Driver:
    def __init__(
        self,
        space: Space,
        options: dict[str, Any],
        evaluator: Evaluator,
        store: TrialStore,
        trials: int,
        seed: int,
        settings: RaySettings,
    ) -> None:
        if settings.replicas < 1 or settings.children < 1:
            raise ValueError("need at least one replica and one child per round")
        local_only = [key for key in LOCAL_ONLY_OPTIONS if key in options]
        if local_only:
            raise ValueError(
                f"the Ray backend cannot run the option(s) {', '.join(local_only)}: their "
                "state lives in one controller between updates (use --backend local)"
            )
        self.store = store
        self.trials = trials
        self.seed = seed
        self.settings = settings
        self.resources = settings.resources
        self.template = Reinforce(space, seed=seed, **options)  # weights, Adam, depth schedule
        shards = make_shards(self.template, settings.shards)
        stored = store.shard_states()
        if stored and len(stored) != len(shards):
            raise SearchError(f"the store holds {len(stored)} shards, not {len(shards)}")
        shard_names = [f"{settings.name_prefix}-shard-{i}" for i in range(len(shards))]
        self.shards = [
            ShardActor.options(name=shard_names[index]).remote(
                {n: p.detach() for n, p in shard.params.items()},
                {k: v for k, v in shard.optimizer.param_groups[0].items() if k != "params"},
                shard.baseline_decay,
                stored[index] if stored else None,
            )
            for index, shard in enumerate(shards)
        ]
        layouts = [Layout.of(dict(shard.params)) for shard in shards]
        self.replicas = [
            ReplicaActor.options(name=replica_name(settings.name_prefix, k)).remote(
                space, seed, options, shard_names, layouts
            )
            for k in range(settings.replicas)
        ]
        self.evaluator_key = f"{store.path}-{time.time()}"
        self.holder = [ray.put(evaluator)]
        self.weights_dir = getattr(evaluator, "weights_dir", None)
        self.pending: dict[ray.ObjectRef, tuple[str, Any]] = {}
        self.open: dict[int, _Round] = {}
        self.known: dict[str, TrialRecord] = {t.arch: t for t in store.iter_evaluated()}
        self.running: dict[str, tuple[int, int]] = {}  # arch -> (round, slot) evaluating it
        self.waiting: dict[str, list[tuple[int, int]]] = {}  # arch -> its repeats in rounds
        self.pushing: set[int] = set()  # rounds whose update is in flight
        self.snapshot: list[ray.ObjectRef] = []  # the shards' checkpoints being taken
        self.snapshot_due = False  # an update was pushed since the last one was asked for
        self.snapshot_asked = -CHECKPOINT_EVERY_S
        self.evaluated = len(self.known)
        self.on_trial: TrialCallback | None = None
        self.on_round: RoundCallback | None = None

    def close(self) -> None:
        """End the actors now (not when Ray collects them), so their names are free."""
        for actor in [*self.replicas, *self.shards]:
            ray.kill(actor, no_restart=True)

    # --- the loop -----------------------------------------------------------------

    def run(self, on_trial: TrialCallback | None, on_round: RoundCallback | None) -> SearchResult:
        self.on_trial, self.on_round = on_trial, on_round
        began = time.perf_counter()
        resumed_from, reused = self._resume()
        for replica in range(self.settings.replicas):
            # A replica with a reopened round samples again once that round is pushed.
            if not any(r.replica == replica for r in self.open.values()):
                self._sample(replica)
        while self.pending or self.snapshot or self.snapshot_due:
            self._checkpoint_shards(final=not self.pending)
            wait = None
            if self.snapshot_due and not self.snapshot:
                wait = max(0.0, self.snapshot_asked + CHECKPOINT_EVERY_S - time.monotonic())
            ready, _ = ray.wait(list(self.pending) + self.snapshot, num_returns=1, timeout=wait)
            if not ready:
                continue
            if ready[0] in self.pending:
                kind, what = self.pending.pop(ready[0])
                getattr(self, f"_{kind}_done")(ready[0], what)
            else:
                self._save_snapshot()  # waits for the other shards' parts (quick)
        return SearchResult(
            trials=self.store.count(),
            evaluated=self.evaluated,
            resumed_from=resumed_from,
            reused=reused,
            seconds=time.perf_counter() - began,
        )

    def _resume(self) -> tuple[int | None, int]:
        """Reopen the stored rounds some shard has not applied; (first such round, trials of
        theirs found stored)."""
        rounds = self.store.rounds()
        self.next_round = max((r.round for r in rounds), default=-1) + 1
        self.next_trial = max((r.first_trial + r.size for r in rounds), default=1)
        self.requested = self.next_trial - 1
        replicas = range(self.settings.replicas)
        self.generators = {k: initial_generator(self.seed, k) for k in replicas}
        for record in rounds:
            if record.replica in self.generators:
                self.generators[record.replica] = load(record.generator)
        reopened = [r for r in rounds if r.weights is not None]
        reused = 0
        stored = {t.id: t for t in self.store.trials()} if reopened else {}
        for record in reopened:
            round_ = _Round.of(record)
            for slot in range(round_.size):
                trial = stored.get(record.first_trial + slot)
                if trial is not None:
                    round_.rewards[slot] = trial.reward
                    reused += 1
            self.open[round_.number] = round_
            self._dispatch(round_)
        return (reopened[0].round if reopened else None), reused

    # --- sampling -------------------------------------------------------------------

    def _sample(self, replica: int) -> None:
        """Ask replica `replica` for its next round, if trials are still wanted."""
        n = min(self.settings.children, self.trials - self.requested)
        if n <= 0:
            return
        self.template.samples = self.requested  # the depth schedule's clock
        depth = self.template.depth()
        self.requested += n
        ref = self.replicas[replica].sample.remote(self.generators[replica], n, depth)
        self.pending[ref] = ("sample", replica)

    def _sample_done(self, ref: ray.ObjectRef, replica: int) -> None:
        sampled = self._get(ref, f"replica {replica} (sampling)")
        number, first = self.next_round, self.next_trial
        self.next_round += 1
        self.next_trial += len(sampled.proposals)
        self.generators[replica] = sampled.generator
        record = RoundRecord(
            round=number,
            replica=replica,
            first_trial=first,
            proposals=tuple(
                {"arch": p.arch, "decisions": list(p.decisions), "depth": p.depth}
                for p in sampled.proposals
            ),
            versions=sampled.versions,
            weights=sampled.weights,
            generator=dump(sampled.generator),
            sampled_at=time.time(),
        )
        self.store.add_round(record)
        round_ = _Round.of(record)
        self.open[number] = round_
        self._dispatch(round_)

    # --- children -------------------------------------------------------------------

    def _dispatch(self, round_: _Round) -> None:
        """Start the children of a round's proposals that need one; store its repeats."""
        for slot, proposal in enumerate(round_.proposals):
            if round_.rewards[slot] is not None:
                continue
            original = self.known.get(proposal.arch)
            if original is not None:
                self._store_repeat(round_, slot, original)
            elif proposal.arch in self.running:
                self.waiting.setdefault(proposal.arch, []).append((round_.number, slot))
            else:
                job = Job(key=round_.first + slot, arch=proposal.arch, seed=self.seed)
                ref = submit_child(self.evaluator_key, self.holder, job, self.resources)
                self.pending[ref] = ("child", job)
                self.running[proposal.arch] = (round_.number, slot)
        self._update_if_complete(round_)

    def _child_done(self, ref: ray.ObjectRef, job: Job) -> None:
        child = child_result(ref, job, self.resources)
        keep_weights(child, self.weights_dir)
        number, slot = self.running.pop(job.arch)
        round_ = self.open[number]
        record = trial_record(number, slot, job.key, round_.proposals[slot], child.result)
        self._store(round_, slot, record)
        self.known[record.arch] = record
        self.evaluated += 1
        touched = {number: round_}
        for other, later in self.waiting.pop(job.arch, []):
            self._store_repeat(self.open[other], later, record)
            touched[other] = self.open[other]
        for each in touched.values():
            self._update_if_complete(each)

    def _store_repeat(self, round_: _Round, slot: int, original: TrialRecord) -> None:
        record = repeat_record(
            round_.number, slot, round_.first + slot, round_.proposals[slot], original
        )
        self._store(round_, slot, record)

    def _store(self, round_: _Round, slot: int, record: TrialRecord) -> None:
        self.store.add_trial(record)
        round_.rewards[slot] = record.reward
        if self.on_trial is not None:
            self.on_trial(record)

    # --- updates and shard checkpoints ----------------------------------------------

    def _update_if_complete(self, round_: _Round) -> None:
        if not round_.complete() or round_.number in self.pushing:
            return
        self.pushing.add(round_.number)
        rewards = [float(r) for r in round_.rewards if r is not None]
        ref = self.replicas[round_.replica].update.remote(
            round_.number, round_.proposals, rewards, round_.weights, round_.versions
        )
        self.pending[ref] = ("update", round_.number)

    def _update_done(self, ref: ray.ObjectRef, number: int) -> None:
        round_ = self.open.pop(number)
        self.pushing.discard(number)
        stats = self._get(ref, f"replica {round_.replica} (pushing round {number})")
        self.store.tell_round(number, int(stats["staleness"]), stats)
        if self.on_round is not None:
            self.on_round(number, stats)
        self.snapshot_due = True
        if not any(r.replica == round_.replica for r in self.open.values()):
            self._sample(round_.replica)

    def _checkpoint_shards(self, *, final: bool) -> None:
        """Ask every shard for its checkpoint when one is due (one at a time)."""
        if not self.snapshot_due or self.snapshot:
            return
        if not final and time.monotonic() < self.snapshot_asked + CHECKPOINT_EVERY_S:
            return
        self.snapshot = [shard.checkpoint.remote() for shard in self.shards]
        self.snapshot_due = False
        self.snapshot_asked = time.monotonic()

    def _save_snapshot(self) -> None:
        taken = self._get(self.snapshot, "a parameter-server shard (checkpoint)")
        self.snapshot = []
        applied = set.intersection(*(set(rounds) for _, _, rounds in taken))
        self.store.save_shards([(version, state) for version, state, _ in taken], applied)

    def _get(self, ref: Any, what: str) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise SearchError(
                f"the Ray backend lost {what}: {first}. Every finished trial is stored; "
                "run the same command with --resume to continue"
            ) from None
