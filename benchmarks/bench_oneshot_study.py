"""Does one-shot search find better cells than chance, and what does it cost?

Issue 18's two measurements on a real data set (the embedded `mnist5k`, 1x28x28, 10
classes) in the `nb201` cell space, taken through the Python API:

1. Per seed and per one-shot strategy (darts1, darts, enas, rsws): search, derive the
   cell, retrain the derived architecture from scratch with the runtime's recipe
   (`runtime.train.train_arch`: SGD Nesterov 0.9, lr 0.1 cosine, weight decay 1e-4,
   batch 64), and record its validation accuracy and parameters. Against it: uniformly
   sampled cells of the same space retrained with the same recipe, the same data and
   the same seeds (a random search's trials), compared at similar parameter counts.
2. Wall and CPU time of each whole one-shot search (search + derivation + retraining)
   against the random multi-trial search made of the sampled cells: the best accuracy
   the trials reach within the same wall time, and the time they take to reach the
   one-shot result (the trials run one after another, as `nasforge search --strategy
   random --evaluator train --workers 1` runs them, minus its store and process costs).

The network around the cell is NB201's skeleton with smaller options by default
(`--n`, `--filters`: cells per stage and initial channels) and the training data a
subset of mnist5k's 4,500 training images (`--train-size`; validation: all 500), so the
study fits a loaded 2-core CPU; every setting is printed and stored in the JSON.

    .venv/bin/python benchmarks/bench_oneshot_study.py [--seeds 0,1,2]
        [--methods darts1,darts,enas,rsws] [--random 6] [--n 1] [--filters 8]
        [--train-size 1500] [--search-epochs 3] [--retrain-epochs 3] [--threads 1]
        [--json PATH]
    .venv/bin/python benchmarks/bench_oneshot_study.py --tables-from RUN.log [...]
    .venv/bin/python benchmarks/bench_oneshot_study.py --write-cli-inputs DIR

Results and the exact commands: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nasforge.codegen import load
from nasforge.controller.space import load_space
from nasforge.grammar import parse
from nasforge.runtime.data import load_dataset
from nasforge.runtime.errors import TrainingFailed
from nasforge.runtime.oneshot import OneShotSettings, make_oneshot
from nasforge.runtime.train import build_kwargs, count_parameters, train_arch
from torch.utils.data import Subset

ROOT = Path(__file__).resolve().parents[1]
NB201_TOML = ROOT / "controller/spaces/nb201.toml"
PARAM_BAND = 0.25  # random cells within +-25 % of a derived cell's parameters


def space_file(folder: Path, n: int, filters: int) -> Path:
    """The nb201 space file with other skeleton options (the same 15,625 cells)."""
    text = NB201_TOML.read_text(encoding="utf-8")
    text = text.replace("n = 5\n", f"n = {n}\n").replace(
        "filters = 16\n", f"filters = {filters}\n"
    )
    path = folder / f"nb201_n{n}_f{filters}.toml"
    path.write_text(text.replace('name = "nb201"', f'name = "nb201_n{n}_f{filters}"'))
    return path


def study_data(train_size: int, seed: int = 0):
    """mnist5k (split by `seed`) with `train_size` of its training images, drawn at random
    with `seed` (the training split is stored in class order)."""
    data = load_dataset("mnist5k", seed=seed)
    order = torch.randperm(
        len(data.train), generator=torch.Generator().manual_seed(seed)
    )
    chosen = sorted(order[: min(train_size, len(data.train))].tolist())
    return dataclasses.replace(data, train=Subset(data.train, chosen))


class Clock:
    """Wall and process CPU seconds since it started."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def retrain(space, text: str, data, epochs: int, seed: int) -> dict[str, Any]:
    """`text` trained from scratch with the runtime's recipe: the last epoch's validation
    accuracy (None when the recipe refuses the training as diverged), size, time."""
    clock = Clock()
    row: dict[str, Any] = {"arch": text, "params": arch_parameters(text, data)}
    try:
        result = train_arch(parse(text), data, epochs=epochs, seed=seed, device="cpu")
        row["val_acc"] = result.metrics[-1]["val_acc"]
    except TrainingFailed as err:
        row["val_acc"], row["failed"] = None, str(err)
    row["wall_s"], row["cpu_s"] = clock.read()
    return row


def arch_parameters(text: str, data) -> int:
    model = load(parse(text)).build_model(**build_kwargs(parse(text), data))
    return count_parameters(model)


def one_shot(space, data, method: str, args, seed: int) -> dict[str, Any]:
    settings = OneShotSettings(
        strategy=method,
        epochs=args.search_epochs,
        batch=args.batch,
        seed=seed,
        device="cpu",
        options=dict(args.option.get(method, {})),
    )
    clock = Clock()
    search = make_oneshot(space, data, settings)
    for _ in range(args.search_epochs):
        record = search.run_epoch()
        print(
            f"  {method} seed {seed} epoch {record['epoch']}: "
            f"supernet valid_acc {record.get('valid_acc')}",
            flush=True,
        )
    derived = search.derive()
    search_wall, search_cpu = clock.read()
    row = retrain(space, derived, data, args.retrain_epochs, seed)
    row.update(
        method=method,
        seed=seed,
        search_wall_s=search_wall,
        search_cpu_s=search_cpu,
        supernet_valid_acc=search.history[-1].get("valid_acc"),
        ops=cell_ops(derived),
    )
    return row


def cell_ops(text: str) -> list[str]:
    """The six edges' ops of an nb201 cell string, in the string's order."""
    return re.findall(r"(\w+)\(S\d+\)", text.split("cell:", 1)[1])


def share(text: str, kinds: tuple[str, ...]) -> float:
    """The share of the cell's edges whose op is one of `kinds`."""
    ops = cell_ops(text)
    return sum(op in kinds for op in ops) / max(1, len(ops))


SKIP_NONE = ("skip", "none")
PARAMETER_FREE = ("skip", "none", "avgpool3x3")


def shares(rows: list[dict[str, Any]]) -> str:
    """Mean shares of skip/none edges and of parameter-free edges (with avg pool)."""
    return "{:.2f} / {:.2f}".format(
        statistics.fmean(share(row["arch"], SKIP_NONE) for row in rows),
        statistics.fmean(share(row["arch"], PARAMETER_FREE) for row in rows),
    )


def random_cells(space, count: int, seed: int) -> list[str]:
    rng = random.Random(1000 + seed)
    depth = space.depth_at(0)
    slots = space.slots(depth)
    return [
        space.to_text([rng.randrange(len(slot.choices)) for slot in slots], depth)
        for _ in range(count)
    ]


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    low, high = 100 * min(values), 100 * max(values)
    return f"{100 * mean:.2f} +- {100 * spread:.2f} ({low:.1f}-{high:.1f})"


def matched(row: dict[str, Any], pool: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trained random cells within PARAM_BAND of `row`'s parameters."""
    low, high = row["params"] * (1 - PARAM_BAND), row["params"] * (1 + PARAM_BAND)
    return [o for o in trained(pool) if low <= o["params"] <= high]


def trained(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["val_acc"] is not None]


def accuracy(row: dict[str, Any]) -> float:
    """A failed training counts as 0, as a failed trial's reward in a search."""
    return row["val_acc"] or 0.0


def report(derived: list[dict[str, Any]], pool: list[dict[str, Any]], methods) -> str:
    lines = [
        "| method | runs | retrained val acc % mean +- std (min-max) | params | "
        "random cells within +-25 % params: n, val acc % | derived beats its matched "
        "random mean | edges skip/none / parameter-free | search wall s (CPU s) |",
        "|---|---:|---|---|---|---|---:|---|",
    ]
    for method in methods:
        rows = [row for row in derived if row["method"] == method]
        if not rows:
            continue
        near = [other for row in rows for other in matched(row, pool)]
        wins = sum(
            accuracy(row) > statistics.fmean(o["val_acc"] for o in matched(row, pool))
            for row in rows
            if matched(row, pool)
        )
        comparable = sum(1 for row in rows if matched(row, pool))
        failed = len(rows) - len(trained(rows))
        params = ", ".join(f"{row['params']:,}" for row in rows)
        wall = statistics.fmean(row["search_wall_s"] for row in rows)
        cpu = statistics.fmean(row["search_cpu_s"] for row in rows)
        lines.append(
            f"| {method} | {len(rows)} ({failed} failed) | "
            f"{summary([r['val_acc'] for r in trained(rows)])} | {params} "
            f"| {len(near)}, {summary([o['val_acc'] for o in near])} | {wins}/{comparable} "
            f"| {shares(rows)} | {wall:.0f} ({cpu:.0f}) |"
        )
    params = [row["params"] for row in pool]
    if not params:
        return "\n".join(lines)
    lines.append(
        f"| random | {len(pool)} ({len(pool) - len(trained(pool))} failed) | "
        f"{summary([r['val_acc'] for r in trained(pool)])} | "
        f"{min(params):,}-{max(params):,} (median {statistics.median(params):,.0f}) | | | "
        f"{shares(pool)} | |"
    )
    return "\n".join(lines)


def time_to_match(
    derived: list[dict[str, Any]], pool_by_seed: dict[int, list[dict[str, Any]]]
) -> str:
    """Per one-shot run: its total wall time against the random trials of its seed, run
    in sequence: the best trial within that time, and when the trials first reach its
    accuracy."""
    lines = [
        "| method | seed | one-shot val acc % | one-shot wall s (search + retrain) | "
        "random trials in that time: count, best val acc % | random trials' wall s "
        "to reach the one-shot acc (trials) | time ratio |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for row in derived:
        total = row["search_wall_s"] + row["wall_s"]
        spent, best, inside = 0.0, 0.0, 0
        reached = None
        for index, trial in enumerate(pool_by_seed.get(row["seed"], []), start=1):
            spent += trial["wall_s"]
            if spent <= total:
                inside, best = index, max(best, accuracy(trial))
            if reached is None and accuracy(trial) >= accuracy(row):
                reached = (spent, index)
        reach = f"{reached[0]:.0f} ({reached[1]})" if reached else "not reached"
        ratio = f"{reached[0] / total:.2f}" if reached else "-"
        lines.append(
            f"| {row['method']} | {row['seed']} | {100 * accuracy(row):.2f} | {total:.0f} "
            f"| {inside}, {100 * best:.2f} | {reach} | {ratio} |"
        )
    return "\n".join(lines)


def rows_from_logs(paths: list[Path]) -> tuple[list, dict[int, list]]:
    """The derived and random rows that runs printed ("  -> {...}", "  random -> {...}")."""
    derived: list[dict[str, Any]] = []
    pool_by_seed: dict[int, list[dict[str, Any]]] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("  -> "):
                derived.append(json.loads(line[5:]))
            elif line.startswith("  random -> "):
                row = json.loads(line[12:])
                pool_by_seed.setdefault(row["seed"], []).append(row)
    return derived, pool_by_seed


def write_cli_inputs(folder: Path, data, n: int, filters: int) -> int:
    """The study's training subset and validation set as an .npz (pixels in [0, 1]; the
    CLI normalises by the subset's statistics) and its space file, for `nasforge search`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for key, part in (("", data.train), ("_val", data.val)):
        x = torch.stack([part[i][0] for i in range(len(part))])
        y = torch.tensor([int(part[i][1]) for i in range(len(part))])
        pixels = x * torch.tensor(data.std).view(1, -1, 1, 1) + torch.tensor(
            data.mean
        ).view(1, -1, 1, 1)
        arrays["x" + key], arrays["y" + key] = pixels.clamp(0, 1).numpy(), y.numpy()
    numpy_path = folder / "mnist5k_study.npz"
    np.savez(numpy_path, **arrays)
    space_path = space_file(folder, n, filters)
    # a multi-trial search takes the space's input as written (no with_data)
    shape = ", ".join(str(size) for size in data.input_shape)
    space_path.write_text(
        space_path.read_text().replace("input = [3, 32, 32]", f"input = [{shape}]")
    )
    print(numpy_path, space_path)
    return 0


def cells(derived: list[dict[str, Any]], pool: list[dict[str, Any]]) -> str:
    """Every trained cell: its edges' ops (S1<-S0; S2<-S0, S1; S3<-S0, S1, S2)."""
    lines = [
        "| run | seed | cell edges | params | val acc % |",
        "|---|---:|---|---:|---:|",
    ]
    for row in [*derived, *pool]:
        acc = "failed" if row["val_acc"] is None else f"{100 * row['val_acc']:.1f}"
        lines.append(
            f"| {row.get('method', 'random')} | {row['seed']} | "
            f"{' '.join(cell_ops(row['arch']))} | {row['params']:,} | {acc} |"
        )
    return "\n".join(lines)


def parse_options(values: list[str]) -> dict[str, dict[str, Any]]:
    """--option method.key=value (a number or true/false)."""
    options: dict[str, dict[str, Any]] = {}
    for value in values:
        name, raw = value.split("=", 1)
        method, key = name.split(".", 1)
        parsed: Any = {"true": True, "false": False}.get(raw.lower())
        if parsed is None:
            parsed = float(raw) if "." in raw or "e" in raw else int(raw)
        options.setdefault(method, {})[key] = parsed
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="darts1,darts,enas,rsws")
    parser.add_argument("--random", type=int, default=6, help="random cells per seed")
    parser.add_argument("--n", type=int, default=1, help="cells per stage (NB201: 5)")
    parser.add_argument("--filters", type=int, default=8, help="NB201: 16")
    parser.add_argument("--train-size", type=int, default=1500)
    parser.add_argument("--search-epochs", type=int, default=3)
    parser.add_argument("--retrain-epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--option", action="append", default=[], help="METHOD.KEY=VALUE, repeatable"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--tables-from",
        type=Path,
        nargs="+",
        metavar="LOG",
        help="print the tables from the rows in these runs' output (runs split by seed)",
    )
    parser.add_argument(
        "--write-cli-inputs",
        type=Path,
        metavar="DIR",
        help="write the study's data (.npz) and space (.toml) for nasforge search, then stop",
    )
    args = parser.parse_args(argv)
    args.option = parse_options(args.option)
    if args.tables_from:
        derived, pool_by_seed = rows_from_logs(args.tables_from)
        pool = [row for rows in pool_by_seed.values() for row in rows]
        methods = list(dict.fromkeys(row["method"] for row in derived))
        print(
            report(derived, pool, methods)
            + "\n\n"
            + time_to_match(derived, pool_by_seed)
            + "\n\n"
            + cells(derived, pool)
        )
        return 0
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    data = study_data(args.train_size)
    if args.write_cli_inputs:
        return write_cli_inputs(args.write_cli_inputs, data, args.n, args.filters)
    with tempfile.TemporaryDirectory() as folder:
        space = load_space(str(space_file(Path(folder), args.n, args.filters)))
    space = space.with_data(data.input_shape, data.classes)
    settings = {
        key: value for key, value in vars(args).items() if key not in ("json",)
    } | {"train_images": len(data.train), "val_images": len(data.val)}
    print(json.dumps(settings, default=str), flush=True)
    derived: list[dict[str, Any]] = []
    pool_by_seed: dict[int, list[dict[str, Any]]] = {}
    clock = Clock()
    for seed in seeds:
        for method in methods:
            derived.append(one_shot(space, data, method, args, seed))
            print(f"  -> {json.dumps(derived[-1])}", flush=True)
        pool_by_seed[seed] = []
        for text in random_cells(space, args.random, seed):
            pool_by_seed[seed].append(
                retrain(space, text, data, args.retrain_epochs, seed)
            )
            pool_by_seed[seed][-1]["seed"] = seed
            print(f"  random -> {json.dumps(pool_by_seed[seed][-1])}", flush=True)
    wall, cpu = clock.read()
    pool = [row for rows in pool_by_seed.values() for row in rows]
    print(report(derived, pool, methods))
    print()
    print(time_to_match(derived, pool_by_seed))
    print("\n" + cells(derived, pool))
    print(f"\ntotal wall {wall:.0f} s, CPU {cpu:.0f} s, load {os.getloadavg()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": settings,
                    "derived": derived,
                    "random": pool,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "python": sys.version,
                    "torch": torch.__version__,
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
