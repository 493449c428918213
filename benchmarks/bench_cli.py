"""Start-up time of the command line: `nasforge --help` and `nasforge validate`.

Neither imports torch (tests/test_cli_imports.py asserts that); this measures what
a user waits. Each command runs as a fresh process (`python -m nasforge.runtime.cli`,
what the console script does) several times; the best run is the one least disturbed
by other processes, the median the typical one. For scale, it also times a process
that only imports torch.

    .venv/bin/python benchmarks/bench_cli.py [--runs 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "nas_cifar15.arch")
COMMANDS = {
    "nasforge --help": ["-m", "nasforge.runtime.cli", "--help"],
    "nasforge search --help": ["-m", "nasforge.runtime.cli", "search", "--help"],
    "nasforge validate nas_cifar15.arch": ["-m", "nasforge.runtime.cli", "validate", EXAMPLE],
    "python -c 'import torch' (for scale)": ["-c", "import torch"],
}


def seconds_of(args: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for name, command in COMMANDS.items():
        seconds_of(command)  # warm the file cache
        times = [seconds_of(command) for _ in range(args.runs)]
        results[name] = {"best_s": min(times), "median_s": statistics.median(times)}
        print(f"{name:40s} best {min(times):6.3f} s  median {statistics.median(times):6.3f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
