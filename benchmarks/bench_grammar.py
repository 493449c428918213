"""Parse + validate throughput of the architecture language, next to Lark alone.

For the canonical text of two published architectures:

- examples/nas_cifar15.arch: the NAS paper's 15-layer CIFAR-10 network, and
- examples/rnn_nascell_ptb.arch: the base-8 Penn Treebank cell (NASCell),

it measures, in parses per second:

- parse+validate: `nasforge.grammar.parse(text)`: Lark LALR building the IR
  through the inline transformer, then semantic validation (the full cost a
  caller such as the controller or `nasforge validate` pays);
- parse only: the same with `check=False` (no validation);
- Lark alone: `nasforge.grammar.parser._tree_lark().parse(text)`: the same
  grammar with Lark's LALR parser building a plain parse tree, no IR, no checks.

It also times the largest texts: the three largest that the parser reads in full
(MAX_SOURCE_CHARS of anchors, of layers and of cell edges, each with a mistake at its
end), and a 1 MB text, which is refused before it is parsed. The unit tests bound the
work of these parses (tests/test_grammar_robustness.py counts calls); the seconds are
here, against a target of under a second each.

The machine this was written on is a noisy 2-core VM, so each figure is the
best of several timed windows (as `timeit` recommends: the minimum time is the
one least disturbed by other processes), with the garbage collector off during
a window and the windows of all measurements interleaved. The JSON also keeps
the median and worst windows and a CPU-time rate (time.process_time), which
other processes disturb in other ways than the wall-clock one, and a paired
ratio: parse+validate / Lark alone within each round of windows, whose median
holds up better under load than the ratio of the two best windows. The
issue's target is at least 500 parses per second for the 15-layer network.

    .venv/bin/python benchmarks/bench_grammar.py [--json PATH]
        [--windows 11] [--window-seconds 0.15] [--large-repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lark
from nasforge.grammar import ArchError, limits, parse, to_text
from nasforge.grammar.parser import _tree_lark

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "cnn 15-layer (nas_cifar15)": ROOT / "examples" / "nas_cifar15.arch",
    "rnn base-8 (rnn_nascell_ptb)": ROOT / "examples" / "rnn_nascell_ptb.arch",
}
TARGET_CASE = "cnn 15-layer (nas_cifar15)"
TARGET_PER_SECOND = 500.0
LARGE_TARGET_SECONDS = 1.0


def _cut(text: str) -> str:
    return text[: limits.MAX_SOURCE_CHARS]


_CNN = "cnn input 3x32x32 classes 10"
_CELLS = "cells darts input 3x32x32 classes 10\nnormal:\n"
_LAYERS = "".join(f"L{i}: conv 3x3 n8\n" for i in range(1, 5000))
# The largest texts the parser reads in full, each with a mistake at its end, and one it
# refuses unread.
LARGE_TEXTS = {
    "anchors": _cut(f"{_CNN}; L1: conv 3x3 n8; L2: conv 3x3 n8 <-" + " L1" * 30_000),
    "layers": _cut(f"{_CNN}\n{_LAYERS}"),
    "edges": _cut(f"{_CELLS}  S2 = add(" + "skip(S0), " * 8000),
    "1 MB of letters (refused unread)": "x" * 1_000_000,
}


def _calibrate(func: Callable[[], object], seconds: float) -> int:
    """How many calls fill about `seconds` (at least 10)."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            func()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 5 or number >= 1 << 20:
            return max(10, int(number * seconds / max(elapsed, 1e-9)))
        number *= 2


def _window(func: Callable[[], object], number: int) -> tuple[float, float]:
    """Calls per second over one window of `number` calls (wall clock, CPU time), gc off."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        cpu = time.process_time()
        start = time.perf_counter()
        for _ in range(number):
            func()
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        return number / wall, number / max(cpu, 1e-9)
    finally:
        if enabled:
            gc.enable()


def measure(
    funcs: dict[str, Callable[[], object]], windows: int, seconds: float
) -> dict[str, dict]:
    """Calls per second of each function: the best of `windows` timed windows each.

    The windows are interleaved (one window of each function per round) so that
    a burst of load from other processes slows every measurement alike rather
    than one of them.
    """
    numbers = {}
    for name, func in funcs.items():
        func()  # warm: builds and caches the Lark parser outside the timing
        numbers[name] = _calibrate(func, seconds)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in funcs}
    for _ in range(windows):
        for name, func in funcs.items():
            rates[name].append(_window(func, numbers[name]))
    out = {}
    for name, found in rates.items():
        wall = sorted(w for w, _ in found)
        cpu = sorted(c for _, c in found)
        out[name] = {
            "windows_per_s": [w for w, _ in found],  # in the order they ran
            "best_per_s": wall[-1],
            "median_per_s": wall[len(wall) // 2],
            "worst_per_s": wall[0],
            "cpu_best_per_s": cpu[-1],
            "calls_per_window": numbers[name],
        }
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _refused_or_parsed(text: str) -> None:
    try:
        parse(text)
    except ArchError as err:
        str(err)  # the message is part of the cost


def time_large(repeats: int) -> dict[str, dict]:
    """Seconds per parse of each large text: the best and the median of `repeats` runs."""
    out = {}
    for name, text in LARGE_TEXTS.items():
        _refused_or_parsed(text)  # warm
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            _refused_or_parsed(text)
            runs.append(time.perf_counter() - start)
        out[name] = {"chars": len(text), "best_s": min(runs), "median_s": _median(runs)}
    return out


def run(windows: int, seconds: float, large_repeats: int) -> dict:
    tree_parser = _tree_lark()
    texts = {}
    funcs: dict[str, Callable[[], object]] = {}
    for name, path in CASES.items():
        text = to_text(parse(path.read_text(encoding="utf-8"), str(path)))
        tree_parser.parse(text)  # the plain-tree parser accepts it too
        texts[name] = text
        funcs[f"{name}/parse_validate"] = lambda text=text: parse(text)
        funcs[f"{name}/parse_only"] = lambda text=text: parse(text, check=False)
        funcs[f"{name}/lark_alone"] = lambda text=text: tree_parser.parse(text)
    load_before = os.getloadavg()[0]
    rates = measure(funcs, windows, seconds)
    large = time_large(large_repeats)
    load_after = os.getloadavg()[0]
    results = {}
    for name, path in CASES.items():
        full, alone = rates[f"{name}/parse_validate"], rates[f"{name}/lark_alone"]
        results[name] = {
            "file": str(path.relative_to(ROOT)),
            "chars": len(texts[name]),
            "lines": texts[name].count("\n"),
            "parse_validate": full,
            "parse_only": rates[f"{name}/parse_only"],
            "lark_alone": alone,
            "ratio_parse_validate_to_lark": full["best_per_s"] / alone["best_per_s"],
            # the ratio within each round (adjacent windows share the load), median of rounds
            "ratio_paired_median": _median(
                [f / a for f, a in zip(full["windows_per_s"], alone["windows_per_s"], strict=True)]
            ),
        }
    target = results[TARGET_CASE]["parse_validate"]["best_per_s"]
    return {
        "benchmark": "grammar parse + validate throughput",
        "windows": windows,
        "window_seconds": seconds,
        "statistic": "best window (max parses/s); median and worst kept for reference",
        "python": sys.version.split()[0],
        "lark": lark.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": load_after},
        "cases": results,
        "large_texts": large,
        "large_target_s": LARGE_TARGET_SECONDS,
        "target": {
            "case": TARGET_CASE,
            "min_per_s": TARGET_PER_SECOND,
            "measured_per_s": target,
            "met": target >= TARGET_PER_SECOND,
        },
    }


def table(report: dict) -> str:
    rows = [
        "| architecture | chars | parse+validate /s | parse only /s | Lark alone /s "
        "| parse+validate / Lark (best / best) | (paired median) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["cases"].items():
        rows.append(
            f"| {name} | {r['chars']} | {r['parse_validate']['best_per_s']:,.0f} "
            f"| {r['parse_only']['best_per_s']:,.0f} | {r['lark_alone']['best_per_s']:,.0f} "
            f"| {r['ratio_parse_validate_to_lark']:.2f} | {r['ratio_paired_median']:.2f} |"
        )
    rows += ["", "| large text | chars | best s | median s |", "|---|---:|---:|---:|"]
    for name, r in report["large_texts"].items():
        rows.append(f"| {name} | {r['chars']:,} | {r['best_s']:.3f} | {r['median_s']:.3f} |")
    slowest = max(r["median_s"] for r in report["large_texts"].values())
    t = report["target"]
    verdict = "met" if t["met"] else "NOT met"
    rows.append("")
    rows.append(
        f"Best of {report['windows']} windows of ~{report['window_seconds']} s; Python "
        f"{report['python']}, Lark {report['lark']}, {report['cpus']} CPUs, load "
        f"{report['load_average_1min']['before']:.2f}. Target "
        f">= {t['min_per_s']:.0f} parses/s for the 15-layer network: {verdict} "
        f"({t['measured_per_s']:,.0f}/s). Target under {report['large_target_s']:.0f} s "
        f"for each large text: {'met' if slowest < report['large_target_s'] else 'NOT met'} "
        f"(slowest median {slowest:.3f} s)."
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--windows", type=int, default=11, help="timed windows per measurement (default 11)"
    )
    parser.add_argument(
        "--window-seconds", type=float, default=0.15, help="length of a window (default 0.15)"
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the figures as JSON here"
    )
    parser.add_argument(
        "--large-repeats", type=int, default=5, help="timed parses of each large text (default 5)"
    )
    args = parser.parse_args(argv)
    if args.windows < 1 or args.window_seconds <= 0 or args.large_repeats < 1:
        parser.error("--windows and --large-repeats must be >= 1 and --window-seconds > 0")
    report = run(args.windows, args.window_seconds, args.large_repeats)
    print(table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
