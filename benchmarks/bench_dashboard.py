"""The dashboard under load: 20 clients polling a search of 10,000 stored trials while it
writes more. Reports errors, request latency, and the search's own trial rate with and
without the dashboard (the target: slowed by at most 5%).

1. A table-evaluator search (random strategy, batches of 8) stores 10,000 trials.
2. The same search continues (--resume, more trials) in its own process: the writer.
3. Its trial rate is measured over three windows of --seconds each: without the
   dashboard, with `nasforge dashboard DIR` (its own process) and --clients clients
   polling it as the page does (everything once, then what is new every 2 s), and
   without it again. The ratio is the loaded rate over the mean of the two others.

Loopback only; every loop is bounded. Usage:

    .venv/bin/python benchmarks/bench_dashboard.py [--table CSV] [--clients 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared/data/nb201/nb201_cifar10.csv"
POLL_SECONDS = 2.0  # the page's interval (runtime/dashboard/app.py POLL_SECONDS)
STORED = 10_000


def nasforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "nasforge.runtime.cli", *args]


def search_args(table: Path, out: Path, trials: int) -> list[str]:
    return [
        "search", "--space", "nb201", "--evaluator", "table", "--table", str(table),
        "--strategy", "random", "--batch", "8", "--trials", str(trials), "--out", str(out),
        "--no-progress", "--no-onnx",
    ]  # fmt: skip


def stored(out: Path) -> int:
    with sqlite3.connect(f"file:{out / 'search.db'}?mode=ro", uri=True, timeout=30) as db:
        return int(db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])


def rate(out: Path, seconds: float) -> float:
    """Trials stored per second over the next `seconds`."""
    first, began = stored(out), time.perf_counter()
    time.sleep(seconds)
    return (stored(out) - first) / (time.perf_counter() - began)


@dataclass
class Client:
    """Polls the page's API the way the page does until `until` (and at most `limit` times)."""

    base: str
    until: float
    limit: int
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    received: int = 0  # trials

    def run(self) -> None:
        server, since, steps = "", 0, 0
        time.sleep(random.uniform(0, POLL_SECONDS))  # clients do not open the page at once
        while time.monotonic() < self.until and self.requests < self.limit:
            url = f"{self.base}api/state?since={since}&steps={steps}&server={server}"
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    state = json.load(response)
                self.latencies.append(time.perf_counter() - began)
                if state["server"] != server:
                    server, since, steps = state["server"], 0, 0
                since += len(state["trials"])
                steps += len(state["steps"])
                self.received = since
            except Exception as err:  # every failure counts, whatever it is
                self.errors.append(f"{type(err).__name__}: {err}")
            self.requests += 1
            time.sleep(POLL_SECONDS)


def with_dashboard(out: Path, clients: int, seconds: float) -> tuple[float, list[Client], int]:
    """The writer's rate while `clients` poll a dashboard over `out`; also the stored count."""
    process = subprocess.Popen(
        nasforge("dashboard", str(out), "--port", "0"), stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("nasforge dashboard: "), line
        base = line.split(": ", 1)[1].strip()
        until = time.monotonic() + seconds
        limit = int(seconds / POLL_SECONDS) + 2
        polling = [Client(base, until, limit) for _ in range(clients)]
        threads = [threading.Thread(target=c.run) for c in polling]
        for thread in threads:
            thread.start()
        measured = rate(out, seconds)
        for thread in threads:
            thread.join(timeout=120)
        return measured, polling, stored(out)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if not args.table.is_file():
        sys.exit(f"no NAS-Bench-201 table at {args.table} (--table CSV)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "search"
        began = time.perf_counter()
        subprocess.run(nasforge(*search_args(args.table, out, STORED)), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        print(f"stored {stored(out):,} trials in {time.perf_counter() - began:.1f} s")
        writer = subprocess.Popen(
            nasforge(*search_args(args.table, out, 10**7), "--resume"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):  # until the resumed search writes (bounded)
                if stored(out) > STORED + 100:
                    break
                time.sleep(0.1)
            before = rate(out, args.seconds)
            loaded, clients, count = with_dashboard(out, args.clients, args.seconds)
            after = rate(out, args.seconds)
        finally:
            writer.terminate()  # SIGTERM: SIGINT may be ignored in a background job
            try:
                writer.wait(timeout=60)
            except subprocess.TimeoutExpired:
                writer.kill()
                writer.wait()
    requests = sum(c.requests for c in clients)
    errors = [e for c in clients for e in c.errors]
    latencies = sorted(x for c in clients for x in c.latencies)
    received = [c.received for c in clients]
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), cores {os.cpu_count()}")
    print(
        f"{args.clients} clients, {args.seconds:.0f} s:"
        f" {requests} requests, {len(errors)} errors"
    )
    if errors:
        print("  first error:", errors[0])
    if latencies:
        median, p95 = latencies[len(latencies) // 2], latencies[int(0.95 * (len(latencies) - 1))]
        print(f"  latency median {1000 * median:.1f} ms, 95th {1000 * p95:.1f} ms, "
              f"max {1000 * latencies[-1]:.1f} ms")  # fmt: skip
    print(f"  trials each client holds at the end: {min(received):,} to {max(received):,} "
          f"(stored then: {count:,})")  # fmt: skip
    baseline = (before + after) / 2
    print(f"search rate: without {before:.1f}/s, with {loaded:.1f}/s, without again {after:.1f}/s")
    print(f"ratio with / without: {loaded / baseline:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
