"""The Ray backend's per-trial cost and its scaling from one child at a time to two.

1. Overhead: the same REINFORCE search (the `nb201` space, the table evaluator, one
   architecture per update) run by the local backend (in-process) and by the Ray
   backend (K=1 replica, m=1 child, S=1 shard) on a local Ray cluster. Reported:
   trials per second of each, counted from the first stored trial to the last, so
   Ray's start-up (actors, and the first trial's wait; reported apart) is left out.
   Each Ray case first runs a short search that starts the child workers.
2. Scaling: REINFORCE on the `digits` space, each child trained 1 epoch on the
   embedded digits with 1 CPU, by the Ray backend one child at a time (K=1, m=1) and
   two at a time (K=2 replicas of m=1, and K=1 of m=2), and by the local pool with 1
   and 2 workers for reference. Reported: evaluated trials per second and the ratio to
   one at a time (ideal 2x on 2 cores), and the staleness of the K=2 run's updates.

    .venv/bin/python benchmarks/bench_distributed.py [--table CSV] [--trials 300]
        [--train 40] [--json PATH]

Without --table a synthetic NAS-Bench-201-format table is written to a temporary
folder (the cost of a lookup is the same).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from nasforge.controller.space import load_space
from nasforge.controller.strategy import make_strategy
from nasforge.runtime.search.evaluators import TrainEvaluator
from nasforge.runtime.search.executors import InProcessExecutor, LocalPoolExecutor
from nasforge.runtime.search.loop import run_search
from nasforge.runtime.search.ray_children import ChildResources
from nasforge.runtime.search.ray_search import RaySettings, run_ray_search
from nasforge.runtime.search.store import TrialStore
from nasforge.runtime.search.table import TableEvaluator

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared/data/nb201/nb201_cifar10.csv"


def rate(store: TrialStore) -> tuple[float, int]:
    """(evaluated trials per second from the first finished trial to the last, how many)."""
    done = sorted(t.finished_at for t in store.trials() if t.evaluated and t.finished_at)
    if len(done) < 2:
        return float("nan"), len(done)
    return (len(done) - 1) / (done[-1] - done[0]), len(done)


def local_run(
    folder: Path, name: str, space: str, evaluator: Any, trials: int, workers: int
) -> dict[str, Any]:
    store = TrialStore.create(folder / f"{space} {name}.db", {})
    strategy = make_strategy("reinforce", load_space(space), seed=0)
    executor = (
        InProcessExecutor(evaluator)
        if workers == 0
        else LocalPoolExecutor(evaluator, workers, timeout=None)
    )
    began = time.perf_counter()
    with executor:
        run_search(strategy, executor, store, trials=trials, batch=max(1, workers), seed=0)
    per_second, evaluated = rate(store)
    return {
        "case": name,
        "wall_s": time.perf_counter() - began,
        "per_second": per_second,
        "evaluated": evaluated,
    }


def ray_run(
    folder: Path,
    name: str,
    space: str,
    evaluator: Any,
    trials: int,
    settings: RaySettings,
) -> dict[str, Any]:
    space_ = load_space(space)
    # A first short search starts the child worker processes (imports, data), which Ray
    # then reuses: the measured run sees warm workers, as a long search does.
    warm = TrialStore.create(folder / f"{space} {name} warm-up.db", {})
    batch = settings.replicas * settings.children
    run_ray_search(space_, {}, evaluator, warm, trials=2 * batch, seed=1, settings=settings)
    store = TrialStore.create(folder / f"{space} {name}.db", {})
    began, wall = time.perf_counter(), time.time()
    run_ray_search(space_, {}, evaluator, store, trials=trials, seed=0, settings=settings)
    first = min(t.finished_at for t in store.trials() if t.finished_at)
    per_second, evaluated = rate(store)
    staleness = collections.Counter(r.staleness for r in store.rounds())
    return {
        "case": name,
        "wall_s": time.perf_counter() - began,
        "startup_s": first - wall,  # until the first trial is stored
        "per_second": per_second,
        "evaluated": evaluated,
        "staleness": {str(k): v for k, v in sorted(staleness.items())},
    }


def show(rows: list[dict[str, Any]], base: float | None = None) -> None:
    print("| case | evaluated | trials/s | ratio | wall s | start-up s | staleness |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        ratio = f"{row['per_second'] / base:.2f}" if base else ""
        startup = f"{row['startup_s']:.1f}" if "startup_s" in row else ""
        stale = ", ".join(f"{k}: {v}" for k, v in row.get("staleness", {}).items())
        print(
            f"| {row['case']} | {row['evaluated']} | {row['per_second']:.2f} | {ratio} | "
            f"{row['wall_s']:.1f} | {startup} | {stale} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--trials", type=int, default=300, help="trials of the overhead runs")
    parser.add_argument("--train", type=int, default=40, help="trials of the scaling runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    table = args.table
    if not table.is_file():
        sys.path.insert(0, str(ROOT / "tests"))
        from search_doubles import write_nb201_table

        table = write_nb201_table(folder / "nb201.csv")
        print(f"(no {args.table}: a synthetic table)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    lookup = TableEvaluator(table)
    overhead = [
        local_run(folder, "local, in-process", "nb201", lookup, args.trials, 0),
        ray_run(folder, "ray K=1 m=1", "nb201", lookup, args.trials, RaySettings()),
    ]
    print(f"\n## Overhead: {args.trials} trials, nb201 space, table evaluator\n")
    show(overhead, overhead[0]["per_second"])
    train = TrainEvaluator("digits", epochs=1, threads=1, device="cpu")
    one = ChildResources(cpus=1)
    scaling = [
        ray_run(
            folder, "ray K=1 m=1", "digits", train, args.train, RaySettings(resources=one)
        ),
        ray_run(
            folder,
            "ray K=2 m=1",
            "digits",
            train,
            args.train,
            RaySettings(replicas=2, resources=one),
        ),
        ray_run(
            folder,
            "ray K=1 m=2",
            "digits",
            train,
            args.train,
            RaySettings(children=2, resources=one),
        ),
        local_run(folder, "local pool, 1 worker", "digits", train, args.train, 1),
        local_run(folder, "local pool, 2 workers", "digits", train, args.train, 2),
    ]
    print(f"\n## Scaling: {args.train} trials, digits space, 1 epoch, 1 CPU per child\n")
    show(scaling, scaling[0]["per_second"])
    ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps({"overhead": overhead, "scaling": scaling}, indent=2))


if __name__ == "__main__":
    main()
