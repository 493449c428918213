"""Per-trial overhead of the local pool (a fresh process per trial) against in-process.

Runs N trivial trials (an evaluator that returns at once) through each executor and
reports wall time per trial; with --table CSV also the table evaluator, whose pickled
state (the whole table) travels to every trial's process; with --train K, K children of
the `digits` space trained 1 epoch on digits (1 thread), in-process and in a pool of one
worker, so the difference is what a process per trial costs a real trial. Usage:

    .venv/bin/python benchmarks/bench_executors.py [--trials 100] [--workers 2] [--table CSV]
        [--train 8]
"""

from __future__ import annotations

import argparse
import time

from nasforge.runtime.search.evaluator import Evaluator, Outcome
from nasforge.runtime.search.executors import InProcessExecutor, Job, LocalPoolExecutor


class Instant(Evaluator):
    """Returns at once: what is left is the executor's own cost."""

    name = "instant"

    def evaluate(self, arch: str, *, seed: int = 0) -> Outcome:
        return Outcome(status="ok", reward=1.0)


def per_trial(executor: object, archs: list[str]) -> float:
    jobs = [Job(i, arch) for i, arch in enumerate(archs)]
    began = time.perf_counter()
    results = list(executor.run(jobs))  # type: ignore[attr-defined]
    assert len(results) == len(jobs) and all(r.outcome.status == "ok" for r in results)
    return (time.perf_counter() - began) / len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--table", help="a NAS-Bench-201-format CSV")
    parser.add_argument("--train", type=int, default=0, help="digits children to train")
    args = parser.parse_args()
    cases: list[tuple[str, Evaluator, list[str]]] = [
        ("instant", Instant(), [f"arch {i}" for i in range(args.trials)])
    ]
    if args.table:
        from nasforge.controller.space import load_space
        from nasforge.runtime.search.table import TableEvaluator

        space = load_space("nb201")
        archs = [
            space.to_text([(i // 5**k) % 5 for k in range(6)]) for i in range(args.trials)
        ]
        cases.append(("table", TableEvaluator(args.table), archs))
    if args.train:
        from nasforge.controller.baselines import RandomSearch
        from nasforge.controller.space import load_space
        from nasforge.runtime.search.evaluators import TrainEvaluator

        proposals = RandomSearch(load_space("digits"), seed=0).ask(args.train)
        trainer = TrainEvaluator("digits", epochs=1, device="cpu", threads=1)
        # First: a process has one fork server, and only the first pool's evaluator
        # decides what it preloads (torch, here).
        cases.insert(0, ("train (digits, 1 epoch)", trainer, [p.arch for p in proposals]))
    for name, evaluator, archs in cases:
        workers = 1 if name.startswith("train") else args.workers
        per_trial(InProcessExecutor(evaluator), archs[:1])  # first-use imports and caches
        inline = per_trial(InProcessExecutor(evaluator), archs)
        pool = LocalPoolExecutor(evaluator, workers)
        per_trial(pool, archs[:workers])  # start the fork server (its preload) first
        pooled = per_trial(pool, archs)
        print(
            f"{name}: in-process {inline * 1e3:.1f} ms/trial; pool of {workers} "
            f"({pool.start_method}) {pooled * 1e3:.1f} ms/trial: "
            f"{(pooled * workers - inline) * 1e3:.1f} ms more per trial and worker"
        )


if __name__ == "__main__":
    main()
