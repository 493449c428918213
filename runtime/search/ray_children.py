"""Children as Ray tasks: one architecture evaluated per task, with the resources asked for.

`run_child` evaluates one architecture in a Ray task (`ChildResources`: CPUs, GPUs,
retries, a timeout); Ray runs it again when its worker process dies, and
`child_result` turns a task that died every time into a failed Outcome with the
reason. A trained child's weights come back as bytes (the driver's folder may be on
another machine) and `keep_weights` writes them where the search keeps them.
`RayExecutor` runs a batch of jobs this way: the local search loop on a cluster.

This module does not import torch, so a worker that only looks architectures up
(the table evaluator) starts without it.
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

import ray

from .evaluator import Evaluator, Outcome
from .executors import Executor, Job, JobResult, _guarded_evaluate


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
        outcome = Outcome.failed(
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
    outcome: Outcome = Outcome.failed(error, reason=reason)
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
