"""Executors: run an evaluator on a batch of architectures and report each as it finishes.

- `InProcessExecutor` calls the evaluator in the search process, one trial after
  another. No isolation: a child that crashes the interpreter takes the search down,
  and there is no timeout. Fast, for evaluators that only look things up (`table`).
- `LocalPoolExecutor` runs up to `workers` trials at once, each in a fresh process
  of its own, with an optional timeout. Whatever happens to a child (an exception,
  `os._exit`, a segfault, SIGKILL, a hang past the timeout) becomes a failed Outcome
  with the reason; the search goes on.

The pool uses the `forkserver` start method where there is one (Linux, macOS) and
`spawn` elsewhere, never plain `fork`: forking a process that has run torch (OpenMP
and CUDA threads) can deadlock the child. The fork server imports torch and the
evaluator's modules once (`preload_modules`), so each trial's process is a cheap
fork of a process that has already paid for the imports. A Python process has one
fork server; a pool whose evaluator needs modules the running server did not preload
restarts it with its own (only between batches: trials still running from another
pool would lose their parent and end).

A fork server that dies (killed, out of memory) takes down the trials it forked, and a
trial that was starting fails to start. The pool starts a new server (with the same
preloads) and runs those trials again, once each, so the search goes on with no trial
lost or recorded twice; a trial whose process cannot be started even then is a failed
trial, reason `start_failed`.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from .evaluator import Evaluator, Outcome

PARENT_POLL_S = 1.0  # how often a child checks that the search process is still there
KILL_GRACE_S = 5.0  # how long to wait for a killed child to be reaped
# How long a trial's process may take to start: the first one waits for the fork server
# to import torch (seconds, more on a busy machine). The trial's own timeout counts from
# the moment its process reports that it runs.
START_TIMEOUT_S = 300.0
START_ATTEMPTS = 3  # starts of one trial's process, a new fork server before each retry
SERVER_EXIT_WAIT_S = 2.0
# How a start fails when the fork server died as it was asked: no answer, no socket.
_SERVER_GONE = (EOFError, ConnectionError, FileNotFoundError)
_STARTED = "started"  # a child's first message


@dataclass(frozen=True)
class Job:
    """One architecture to evaluate; `key` identifies it to the caller (the trial id)."""

    key: int
    arch: str
    seed: int = 0


@dataclass(frozen=True)
class JobResult:
    key: int
    outcome: Outcome
    worker: str  # which worker ran it: "main", or "pool-K/pid N"
    started_at: float  # time.time()
    finished_at: float


def _guarded_evaluate(evaluator: Evaluator, arch: str, seed: int) -> Outcome:
    """evaluator.evaluate, with an exception (a bug, by the Evaluator contract) recorded as a
    failed trial rather than ending the search."""
    began = time.perf_counter()
    try:
        return evaluator.evaluate(arch, seed=seed)
    except Exception as err:
        where = traceback.extract_tb(err.__traceback__)[-1:]
        at = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
        return Outcome.failed(
            f"the evaluator raised {type(err).__name__}: {err}{at}",
            time.perf_counter() - began,
            reason="exception",
        )


class Executor(ABC):
    """Runs batches of jobs; `run` yields each result as soon as its job is done."""

    workers: int

    @abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        """Evaluate every job; results in completion order, one per job."""

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release processes and other resources."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Evaluates in this process, one job at a time (no isolation, no timeout)."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.workers = 1

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        for job in jobs:
            started = time.time()
            outcome = _guarded_evaluate(self.evaluator, job.arch, job.seed)
            yield JobResult(job.key, outcome, "main", started, time.time())


# --- the local pool -------------------------------------------------------------------


def default_start_method() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _exit_when_orphaned(parent: int) -> None:
    """End this child when the process that started it is gone (the search was killed):
    its result could go nowhere, and it would keep a core busy."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _child_main(payload: bytes, arch: str, seed: int, conn: Connection) -> None:
    """A trial's process: unpickle the evaluator, evaluate, send the Outcome back."""
    # Ctrl-C reaches the whole process group; the search process decides what happens to
    # its trials (it kills them), so a child does not die with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_when_orphaned(os.getppid())
    _send_or_exit(conn, _STARTED)
    began = time.perf_counter()
    try:
        evaluator = pickle.loads(payload)
    except Exception as err:
        outcome = Outcome.failed(f"cannot unpickle the evaluator: {type(err).__name__}: {err}")
    else:
        outcome = _guarded_evaluate(evaluator, arch, seed)
    if outcome.status == "failed" and not outcome.seconds:
        outcome = replace(outcome, seconds=time.perf_counter() - began)
    _send_or_exit(conn, outcome)
    conn.close()
    # Skip the interpreter's teardown (torch's can take a while): the result is sent, and
    # the search waits for this process to end before it starts the next trial.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _send_or_exit(conn: Connection, message: object) -> None:
    """Send to the search process; end quietly if it no longer listens (it gave this
    trial up, e.g. when the fork server died as the trial started)."""
    try:
        conn.send(message)
    except OSError:
        os._exit(1)


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with status {exitcode}"


@dataclass
class _Running:
    job: Job
    slot: int
    process: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    started: float  # time.time()
    began: float  # time.perf_counter(): the process's start, then the moment it reported
    deadline: float  # time.perf_counter() value: to start, then to finish
    reported: bool = False  # the process has reported that it runs
    server: int | None = None  # the pid of the fork server that forked it

    @property
    def worker(self) -> str:
        return f"pool-{self.slot}/pid {self.process.pid}"


class LocalPoolExecutor(Executor):
    """Up to `workers` trials at once, each in its own process, each with `timeout` seconds.

    The evaluator is pickled once and unpickled in every child, so it must be
    picklable (keep loaded data out of its pickled state; load it in the child).
    """

    def __init__(
        self,
        evaluator: Evaluator,
        workers: int,
        *,
        timeout: float | None = None,
        start_method: str | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.evaluator = evaluator
        self.workers = workers
        self.timeout = timeout
        self.start_method = start_method or default_start_method()
        self._context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            _prepare_forkserver(
                self._context, ["nasforge.runtime.search.evaluator", *_preload_modules(evaluator)]
            )
        self._payload = pickle.dumps(evaluator)
        self._running: dict[int, _Running] = {}
        self._rerun: set[int] = set()  # keys of jobs already run again after a lost server

    def run(self, jobs: Sequence[Job]) -> Iterator[JobResult]:
        queue = deque(jobs)
        free = list(range(self.workers - 1, -1, -1))  # pop() hands out slot 0 first
        try:
            while queue or self._running:
                while queue and free:
                    job, slot = queue.popleft(), free.pop()
                    unstarted = self._start(job, slot)
                    if unstarted is not None:
                        free.append(slot)
                        yield unstarted
                for result, slot in self._collect():
                    free.append(slot)
                    if isinstance(result, Job):
                        queue.appendleft(result)  # its fork server died under it: again
                    else:
                        yield result
        finally:
            # The caller stopped early (an error, Ctrl-C): leave no child behind.
            for running in list(self._running.values()):
                self._kill(running)
            self._running.clear()

    def close(self) -> None:
        for running in list(self._running.values()):
            self._kill(running)
        self._running.clear()

    def _start(self, job: Job, slot: int) -> JobResult | None:
        """Start `job`'s process; a failed result if it cannot be started at all."""
        started = time.time()
        for attempt in range(1, START_ATTEMPTS + 1):
            receive, send = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_child_main,
                args=(self._payload, job.arch, job.seed, send),
                name=f"nasforge-trial-{job.key}",
                daemon=True,
            )
            began = time.perf_counter()
            try:
                process.start()
            except (OSError, EOFError) as err:
                receive.close()
                send.close()
                if self.start_method == "forkserver" and isinstance(err, _SERVER_GONE):
                    _discard_dead_forkserver()
                if attempt == START_ATTEMPTS:
                    outcome = Outcome.failed(
                        f"the trial's process could not be started ({START_ATTEMPTS} "
                        f"attempts): {type(err).__name__}: {err}",
                        reason="start_failed",
                    )
                    return JobResult(job.key, outcome, f"pool-{slot}", started, time.time())
                continue
            send.close()  # the child holds the only write end: EOF on receive means it is gone
            self._running[job.key] = _Running(
                job,
                slot,
                process,
                receive,
                started,
                began,
                began + START_TIMEOUT_S,
                server=_forkserver_pid() if self.start_method == "forkserver" else None,
            )
            return None
        raise AssertionError("unreachable")

    def _collect(self) -> list[tuple[JobResult | Job, int]]:
        """Wait until at least one running trial is finished, failed or overdue; a Job
        instead of its result when its fork server died under it (to run it again)."""
        now = time.perf_counter()
        deadlines = [r.deadline for r in self._running.values() if math.isfinite(r.deadline)]
        wait_s = max(0.0, min(deadlines) - now) if deadlines else None
        handles: list[Any] = []
        for running in self._running.values():
            handles += [running.conn, running.process.sentinel]
        wait(handles, timeout=wait_s)
        done: list[tuple[JobResult | Job, int]] = []
        for key, running in list(self._running.items()):
            outcome = self._poll(running)
            if outcome is None:
                continue
            del self._running[key]
            if self._lost_with_its_server(running, outcome):
                self._rerun.add(key)
                done.append((running.job, running.slot))
                continue
            result = JobResult(key, outcome, running.worker, running.started, time.time())
            done.append((result, running.slot))
        return done

    def _poll(self, running: _Running) -> Outcome | None:
        """The trial's Outcome if it has one now (finished, crashed or overdue), else None."""
        while running.conn.poll():
            try:
                message = running.conn.recv()
            except (EOFError, OSError):
                # The write end closed with no result: the process died before sending.
                running.process.join(KILL_GRACE_S)
                return self._crashed(running)
            except Exception as err:  # a result that does not unpickle
                self._kill(running)
                return Outcome.failed(
                    f"unreadable result: {type(err).__name__}: {err}", self._age(running)
                )
            if message == _STARTED:
                running.reported = True
                running.began = time.perf_counter()
                running.deadline = running.began + (self.timeout or math.inf)
                continue
            running.conn.close()
            running.process.join(KILL_GRACE_S)
            if running.process.exitcode is None:
                self._kill(running)
            return message  # type: ignore[no-any-return]
        if not running.process.is_alive():
            return self._crashed(running)
        if time.perf_counter() >= running.deadline:
            self._kill(running)
            if not running.reported:
                return Outcome.failed(
                    f"the trial's process did not start within {START_TIMEOUT_S:g} s",
                    self._age(running),
                    reason="timeout",
                )
            return Outcome.failed(
                f"timed out: no result after {self.timeout:g} s; the process was killed",
                self._age(running),
                reason="timeout",
            )
        return None

    def _lost_with_its_server(self, running: _Running, outcome: Outcome) -> bool:
        """Whether the trial ended without a result because its fork server died (and
        was not run again for that already). Its process is ended if it still runs: with
        its server gone it cannot report."""
        if running.server is None or running.job.key in self._rerun:
            return False
        # multiprocessing reads a trial's exit status from its fork server and makes it
        # 255 when the server is gone before saying.
        if outcome.metrics.get("reason") != "crashed" or running.process.exitcode != 255:
            return False
        if _forkserver_pid() == running.server and not _exits_soon(running.server):
            return False
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(running.process.pid, signal.SIGKILL)
        return True

    @staticmethod
    def _age(running: _Running) -> float:
        return time.perf_counter() - running.began

    def _crashed(self, running: _Running) -> Outcome:
        running.conn.close()
        running.process.join(KILL_GRACE_S)
        how = _describe_exit(running.process.exitcode)
        return Outcome.failed(
            f"the trial's process {how} before reporting a result",
            self._age(running),
            reason="crashed",
            exitcode=running.process.exitcode,
        )

    def _kill(self, running: _Running) -> None:
        if running.process.is_alive():
            running.process.kill()
        running.process.join(KILL_GRACE_S)
        running.conn.close()


_server_preload: frozenset[str] | None = None  # what this process's fork server preloads


def _forkserver_pid() -> int | None:
    from multiprocessing import forkserver

    return getattr(forkserver._forkserver, "_forkserver_pid", None)


def _exits_soon(pid: int) -> bool:
    """Whether our child `pid` has exited or does within SERVER_EXIT_WAIT_S: a killed
    server closes its pipes a moment before it can be waited for."""
    deadline = time.perf_counter() + SERVER_EXIT_WAIT_S
    while not _has_exited(pid):
        if time.perf_counter() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _has_exited(pid: int) -> bool:
    """Whether our child `pid` has exited, without reaping it (multiprocessing does)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True
    except (AttributeError, OSError):  # no waitid here: assume it runs
        return False


def _discard_dead_forkserver() -> None:
    """Forget a fork server that died, so the next process start launches a new one
    (with the same preloads). multiprocessing notices a dead server only once it has
    been reaped; one killed a moment ago may not be yet."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # a server that no longer answers is as good as dead
    stop = getattr(server, "_stop", None)
    if stop is None:
        return
    with contextlib.suppress(ChildProcessError, OSError, TypeError):
        stop()  # reaps it and clears its address
    server._forkserver_pid = None


def _prepare_forkserver(context: Any, modules: list[str]) -> None:
    """Make the fork server (started at the next process start) preload `modules`.

    A server already running without them is stopped first: otherwise every trial would
    import torch itself (seconds each). Stopping uses multiprocessing's own `_stop`;
    where a Python lacks it, the running server is kept (slower trials, same results).
    """
    global _server_preload
    from multiprocessing import forkserver

    wanted = frozenset(modules)
    server = forkserver._forkserver
    running = getattr(server, "_forkserver_pid", None) is not None
    if running:
        if _server_preload is not None and wanted <= _server_preload:
            return
        stop = getattr(server, "_stop", None)
        if stop is None:
            return
        stop()
    context.set_forkserver_preload(sorted(wanted))
    _server_preload = wanted


def _preload_modules(evaluator: Evaluator) -> list[str]:
    """Modules the fork server imports once for every trial: the evaluator's own
    `preload_modules` (torch, data loaders) and the module that defines its class."""
    modules = list(getattr(evaluator, "preload_modules", ()))
    module = type(evaluator).__module__
    if module != "__main__":
        modules.append(module)
    return modules
