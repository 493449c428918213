"""Torch threads per training process: the measurement behind the default thread count.

Trains the default search child (examples/digits_cnn.arch) for --epochs epochs of the
embedded digits set with each thread count of --threads, taking turns (1, 2, 1, 2, ...)
so drift on a shared machine hits every count alike, first as things are ("idle") and
then beside a competing CPU load this script starts itself: --load busy-loop processes
(default: one per usable core), each of which ends on its own after --max-load seconds
and is killed by this script as soon as the loaded runs are done. Reports every run's
wall time, the best and the median per thread count and condition.

Run: .venv/bin/python benchmarks/bench_threads.py [--epochs 3] [--repeats 3]
     [--threads 1 2] [--load N] [--max-load 600] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from nasforge.grammar import parse
from nasforge.runtime.data import load_dataset
from nasforge.runtime.train import train_arch

ROOT = Path(__file__).resolve().parents[1]
# A busy loop that stops by itself after argv[1] seconds, so a killed benchmark leaves
# no load behind for long.
SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass\n"


@contextmanager
def competing_load(processes: int, max_seconds: float):
    """`processes` busy loops for the duration of the block (at most max_seconds)."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN, str(max_seconds)]) for _ in range(processes)
    ]
    try:
        time.sleep(0.5)  # let them reach the loop
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def time_training(arch: object, data: object, threads: int, epochs: int) -> float:
    torch.set_num_threads(threads)
    began = time.perf_counter()
    train_arch(arch, data, epochs=epochs, seed=0)  # type: ignore[arg-type]
    return time.perf_counter() - began


def measure(
    arch: object, data: object, counts: list[int], epochs: int, repeats: int
) -> dict[int, list[float]]:
    times: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(repeats):
        for n in counts:
            times[n].append(time_training(arch, data, n, epochs))
    return times


def summary(times: dict[int, list[float]]) -> dict[str, dict[str, float | list[float]]]:
    return {
        str(n): {"best": min(ts), "median": statistics.median(ts), "runs": ts}
        for n, ts in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--load", type=int, default=cores, help="busy-loop processes")
    parser.add_argument("--max-load", type=float, default=600.0, help="seconds, at most")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    arch = parse((ROOT / "examples" / "digits_cnn.arch").read_text(encoding="utf-8"))
    data = load_dataset("digits")
    time_training(arch, data, 1, 1)  # warm-up: first-call imports and allocations
    result: dict[str, object] = {
        "machine": platform.processor() or platform.machine(),
        "usable_cores": cores,
        "torch": torch.__version__,
        "epochs": args.epochs,
        "load_average_before": os.getloadavg(),
        "idle": summary(measure(arch, data, args.threads, args.epochs, args.repeats)),
    }
    result["load_average_between"] = os.getloadavg()
    with competing_load(args.load, args.max_load):
        loaded = measure(arch, data, args.threads, args.epochs, args.repeats)
    result["loaded"] = {"processes": args.load, **summary(loaded)}
    result["load_average_after"] = os.getloadavg()
    for condition in ("idle", "loaded"):
        for n in map(str, args.threads):
            row = result[condition][n]  # type: ignore[index]
            runs = ", ".join(f"{t:.2f}" for t in row["runs"])
            print(
                f"{condition:6}  {n} thread(s): best {row['best']:.2f} s, "
                f"median {row['median']:.2f} s  (runs {runs})"
            )
    print(
        "load average (1 min) before, between, after: "
        + ", ".join(
            f"{result[key][0]:.1f}"  # type: ignore[index]
            for key in (
                "load_average_before",
                "load_average_between",
                "load_average_after",
            )
        )
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
