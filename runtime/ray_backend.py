"""Ray pieces of the distributed search: parameter-server shards, controller replicas, children.

- `ShardActor` holds one `ParameterShard` (controller/param_server.py).
- `ReplicaActor` pulls the current weights from every shard, samples a round, and
  later pushes the round's gradient to every shard. It keeps no state between calls
  (the driver hands it the generator state and the weights it sampled with), so Ray
  may restart it after it dies and retry the call: a sample is drawn from the same
  generator state and a retried push is skipped by the shards that applied it.
- `run_child` evaluates one architecture in a Ray task with the resources asked for
  (`ChildResources`); Ray retries it when its worker process dies, and `child_result`
  turns a task that died every time into a failed Outcome with the reason.
- `RayExecutor` runs a batch of jobs as child tasks: the local search loop on a cluster.

Shards and replicas ask for no CPU (`num_cpus=0`): they do little work and the
cores belong to the children.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
import torch
from nasforge.controller.evaluator import Evaluator, Outcome
from nasforge.controller.param_server import (
    Layout,
    ParameterShard,
    ReplicaCore,
    Weights,
    dump,
    load,
)
from nasforge.controller.space import Space
from nasforge.controller.strategy import Proposal

from .executors import Executor, Job, JobResult, _guarded_evaluate, failed

# Ray restarts a dead replica this many times in a search (and retries the call that
# was running on it); beyond that the driver stops with an error (--resume continues).
REPLICA_RESTARTS = 8


@dataclass(frozen=True)
class ChildResources:
    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 2  # how often a child whose worker died is run again
    timeout: float | None = None  # seconds a child may run before it is stopped


@dataclass(frozen=True)
class ChildResult:
    result: JobResult
    weights: bytes | None = None  # the trained child's weights file, when one was saved


class TrialTimeout(BaseException):
    """Raised in a child when its time is up (BaseException: the evaluator's own
    `except Exception` must not swallow it)."""


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after `seconds` (Ray runs a task on its worker's main thread)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TrialTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# A worker process keeps the evaluator of its latest search, so a table or a data set is
# unpickled once per worker, not once per child.
_evaluators: dict[str, Evaluator] = {}


def _evaluator(key: str, holder: list[Any]) -> Evaluator:
    if key not in _evaluators:
        _evaluators.clear()
        evaluator = ray.get(holder[0])
        if getattr(evaluator, "weights_dir", None):
            # The driver's folder may be on another machine: save here, send the bytes back.
            evaluator.weights_dir = tempfile.mkdtemp(prefix="nasforge-child-")
        _evaluators[key] = evaluator
    return _evaluators[key]


@ray.remote
def run_child(key: str, holder: list[Any], job: Job, timeout: float | None) -> ChildResult:
    """Evaluate `job` with the evaluator in `holder` (an object ref in a list, so Ray
    passes the ref and this worker fetches it only the first time)."""
    evaluator = _evaluator(key, holder)
    began, started = time.perf_counter(), time.time()
    try:
        with _deadline(timeout):
            outcome = _guarded_evaluate(evaluator, job.arch, job.seed)
    except TrialTimeout:
        outcome = failed(
            f"timed out: no result after {timeout:g} s; the child was stopped",
            time.perf_counter() - began,
            reason="timeout",
        )
    weights = None
    name = outcome.metrics.get("weights") if outcome.status == "ok" else None
    folder = getattr(evaluator, "weights_dir", None)
    if name and folder:
        path = os.path.join(folder, str(name))
        with open(path, "rb") as file:
            weights = file.read()
        os.unlink(path)
    node = ray.get_runtime_context().get_node_id()[:8]
    worker = f"ray {node}/pid {os.getpid()}"
    return ChildResult(JobResult(job.key, outcome, worker, started, time.time()), weights)


def submit_child(
    key: str, holder: list[Any], job: Job, resources: ChildResources
) -> ray.ObjectRef:
    return run_child.options(
        num_cpus=resources.cpus,
        num_gpus=resources.gpus,
        max_retries=resources.retries,
        retry_exceptions=False,
    ).remote(key, holder, job, resources.timeout)


def child_result(ref: ray.ObjectRef, job: Job, resources: ChildResources) -> ChildResult:
    """The child's result; a failed one when its task could not finish."""
    try:
        return ray.get(ref)  # type: ignore[no-any-return]
    except ray.exceptions.WorkerCrashedError:
        reason = "crashed"
        error = (
            f"the child's Ray worker died {resources.retries + 1} times "
            "(killed, out of memory, or a crash)"
        )
    except ray.exceptions.RayError as err:
        reason = "ray"
        error = f"the child's Ray task failed: {type(err).__name__}: {str(err).splitlines()[0]}"
    now = time.time()
    outcome: Outcome = failed(error, reason=reason)
    return ChildResult(JobResult(job.key, outcome, "ray", now, now))


class RayExecutor(Executor):
    """Runs each job as a Ray child task (any strategy, through the local search loop)."""

    def __init__(self, evaluator: Evaluator, resources: ChildResources, *, workers: int) -> None:
        self.resources = resources
        self.workers = workers
        self.key = f"{id(self)}-{time.time()}"
        self.holder = [ray.put(evaluator)]
        self.saved_weights = getattr(evaluator, "weights_dir", None)

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        running = {submit_child(self.key, self.holder, job, self.resources): job for job in jobs}
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ready[0])
            child = child_result(ready[0], job, self.resources)
            keep_weights(child, self.saved_weights)
            yield child.result


def keep_weights(child: ChildResult, folder: str | None) -> None:
    """Write a child's weights (sent back as bytes) into the driver's weights folder."""
    name = child.result.outcome.metrics.get("weights")
    if child.weights is None or not name or not folder:
        return
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".{name}.part")
    with open(partial, "wb") as file:
        file.write(child.weights)
    os.replace(partial, os.path.join(folder, str(name)))


@ray.remote(num_cpus=0)
class ShardActor:
    """One parameter-server shard; weights and gradients travel packed (param_server.Layout)."""

    def __init__(
        self,
        weights: Weights,
        adam: dict[str, Any],
        baseline_decay: float | None,
        state: bytes | None,
    ) -> None:
        torch.set_num_threads(1)
        self.shard = ParameterShard(weights, adam, baseline_decay=baseline_decay)
        self.layout = Layout.of(weights)
        if state is not None:
            self.shard.load_state_dict(load(state))

    def pull(self) -> tuple[int, np.ndarray, float | None]:
        version, weights, baseline = self.shard.pull()
        return version, self.layout.pack(weights), baseline

    def baseline(self) -> float | None:
        return self.shard.baseline

    def apply(
        self,
        round_id: int,
        names: list[str],
        grads: np.ndarray,
        pulled_version: int,
        reward_mean: float,
    ) -> tuple[int, int, bool]:
        done = self.shard.apply(
            round_id, self.layout.unpack(grads, names), pulled_version, reward_mean
        )
        return done.version, done.staleness, done.applied

    def checkpoint(self) -> tuple[int, bytes, list[int]]:
        """(version, the state as bytes, the rounds applied)."""
        return self.shard.version, dump(self.shard.state_dict()), sorted(self.shard.applied)


@dataclass(frozen=True)
class Sampled:
    proposals: list[Proposal]
    generator: torch.Tensor  # the generator state after sampling
    versions: tuple[int, ...]  # each shard's version of the weights used
    weights: bytes  # those weights, packed in the replica's layout (float32 bytes)


@ray.remote(num_cpus=0, max_restarts=REPLICA_RESTARTS, max_task_retries=REPLICA_RESTARTS)
class ReplicaActor:
    """A controller replica: pulls weights, samples rounds, pushes their gradients."""

    def __init__(
        self,
        space: Space,
        seed: int,
        options: dict[str, Any],
        shard_names: list[str],
        layouts: list[Layout],
    ) -> None:
        torch.set_num_threads(1)
        self.core = ReplicaCore(space, seed=seed, options=options)
        # Looked up by name: handles as constructor arguments would keep a restart from
        # finding them once the driver's references go (ray-project/ray#53727).
        self.shards = [ray.get_actor(name) for name in shard_names]
        self.layouts = layouts  # what each shard holds
        self.layout = Layout(
            tuple(n for layout in layouts for n in layout.names),
            tuple(shape for layout in layouts for shape in layout.shapes),
        )

    def sample(self, generator: torch.Tensor, n: int, depth: int | None) -> Sampled:
        pulled = ray.get([shard.pull.remote() for shard in self.shards])
        packed = np.concatenate([vector for _, vector, _ in pulled])
        proposals, after = self.core.sample(self.layout.unpack(packed), generator, n, depth)
        return Sampled(proposals, after, tuple(v for v, _, _ in pulled), packed.tobytes())

    def update(
        self,
        round_id: int,
        proposals: list[Proposal],
        rewards: list[float],
        weights: bytes,
        versions: tuple[int, ...],
    ) -> dict[str, float]:
        """Push round `round_id`'s gradient to every shard; the update's statistics."""
        baseline = ray.get(self.shards[0].baseline.remote())
        packed = np.frombuffer(weights, dtype=np.float32)
        gradient = self.core.gradient(self.layout.unpack(packed), proposals, rewards, baseline)
        pushes = [
            shard.apply.remote(
                round_id,
                [n for n in layout.names if n in gradient.grads],
                layout.pack(gradient.grads),
                version,
                gradient.reward_mean,
            )
            for shard, layout, version in zip(self.shards, self.layouts, versions, strict=True)
        ]
        applied = ray.get(pushes)
        return {
            **gradient.stats,
            "staleness": float(max(staleness for _, staleness, _ in applied)),
            "version": float(max(version for version, _, _ in applied)),
        }
