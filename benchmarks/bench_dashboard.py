"""The dashboard under load: 20 clients polling a search of 10,000 stored trials while it
writes more. Reports errors, request latency, the dashboard's CPU time, and the search's
own trial rate with and without the clients (the target: slowed by at most 5%).

1. A table-evaluator search (REINFORCE, batches of 8) stores 10,000 trials.
2. The same search continues (--resume, more trials) in its own process: the writer;
   `nasforge dashboard DIR` runs in another.
3. The writer's trial rate is measured over 2 x --windows windows of --seconds each,
   in the order off, on, on, off, off, on, ... (so a steady drift of the machine's load
   hits both alike): in an "on" window --clients clients poll the dashboard as the page
   does (everything once, then what is new every 2 s); in an "off" window they wait.
   A client reads every answer in full but decodes only its headers (the counts): 20
   JSON decoders in this one Python process would measure themselves, not the server.
   The ratio is the mean rate of the "on" windows over that of the "off" windows.

Loopback only; every loop is bounded. Usage:

    .venv/bin/python benchmarks/bench_dashboard.py [--table CSV] [--clients 20]
        [--windows 6] [--seconds 10]
"""

from __future__ import annotations

import argparse
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared/data/nb201/nb201_cifar10.csv"
POLL_SECONDS = 2.0  # the page's interval (runtime/dashboard/app.py POLL_SECONDS)
STORED = 10_000


def nasforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "nasforge.runtime.cli", *args]


def search_args(table: Path, out: Path, trials: int) -> list[str]:
    return [
        "search", "--space", "nb201", "--evaluator", "table", "--table", str(table),
        "--strategy", "reinforce", "--batch", "8", "--trials", str(trials), "--out", str(out),
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
    """Polls the page's API the way the page does while `on` is set, until `done` is."""

    base: str
    on: threading.Event
    done: threading.Event
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    received: int = 0  # trials
    bytes: int = 0

    def run(self) -> None:
        server, since, steps = "", 0, 0
        first = True
        for _ in range(100_000):  # bounded: each turn waits for a window or polls and sleeps
            if self.done.is_set():
                return
            if not self.on.wait(timeout=1.0):
                continue
            if first:  # clients do not open the page at the same instant
                time.sleep(random.uniform(0, POLL_SECONDS))
                first = False
            url = f"{self.base}api/state?since={since}&steps={steps}&server={server}"
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    body = response.read()  # all of it, but only the headers are decoded
                    headers = response.headers
                self.latencies.append(time.perf_counter() - began)
                server = headers["x-nasforge-server"]
                since = int(headers["x-nasforge-total"])
                steps = int(headers["x-nasforge-steps"])
                self.received = since
                self.bytes += len(body)
            except Exception as err:  # every failure counts, whatever it is
                self.errors.append(f"{type(err).__name__}: {err}")
            self.requests += 1
            time.sleep(POLL_SECONDS)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Windows:
    on: list[float] = field(default_factory=list)  # the writer's trials per second
    off: list[float] = field(default_factory=list)
    dashboard_cpu: float = 0.0  # CPU seconds the dashboard used in the "on" windows
    clients_cpu: float = 0.0  # and this process (the clients)


def measure(out: Path, on: threading.Event, args: Any, pid: int) -> Windows:
    windows = Windows()
    for i in range(2 * args.windows):
        loaded = i % 4 in (1, 2)  # off, on, on, off, off, on, on, off, ...
        on.set() if loaded else on.clear()
        cpu, own = cpu_seconds(pid), cpu_seconds(os.getpid())
        measured = rate(out, args.seconds)
        if loaded:
            windows.on.append(measured)
            windows.dashboard_cpu += cpu_seconds(pid) - cpu
            windows.clients_cpu += cpu_seconds(os.getpid()) - own
        else:
            windows.off.append(measured)
    on.clear()
    return windows


def stop(process: subprocess.Popen[Any], what: str) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        print(f"{what} did not stop within 60 s of SIGTERM: killed")
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--windows", type=int, default=6, help="windows with the clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per window")
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
        dashboard = subprocess.Popen(
            nasforge("dashboard", str(out), "--port", "0"), stdout=subprocess.PIPE, text=True
        )
        on, done = threading.Event(), threading.Event()
        try:
            line = dashboard.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("nasforge dashboard: "), line
            base = line.split(": ", 1)[1].strip()
            clients = [Client(base, on, done) for _ in range(args.clients)]
            threads = [threading.Thread(target=c.run) for c in clients]
            for thread in threads:
                thread.start()
            for _ in range(600):  # until the resumed search writes (bounded)
                if stored(out) > STORED + 100:
                    break
                time.sleep(0.1)
            windows = measure(out, on, args, dashboard.pid)
            count = stored(out)
        finally:
            done.set()
            on.clear()
            stop(dashboard, "the dashboard")
            stop(writer, "the search")
        for thread in threads:
            thread.join(timeout=60)
    report(args, clients, windows, count)


def report(args: Any, clients: list[Client], windows: Windows, count: int) -> None:
    requests = sum(c.requests for c in clients)
    errors = [e for c in clients for e in c.errors]
    latencies = sorted(x for c in clients for x in c.latencies)
    received = [c.received for c in clients]
    seconds = args.windows * args.seconds
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), cores {os.cpu_count()}")
    print(f"{args.clients} clients, {seconds:.0f} s: {requests} requests, {len(errors)} errors")
    print(f"  CPU time meanwhile: the dashboard {windows.dashboard_cpu:.1f} s, "
          f"the clients {windows.clients_cpu:.1f} s; "
          f"{sum(c.bytes for c in clients) / 1e6:.0f} MB received")  # fmt: skip
    if errors:
        print("  first error:", errors[0])
    if latencies:
        median, p95 = latencies[len(latencies) // 2], latencies[int(0.95 * (len(latencies) - 1))]
        print(f"  latency median {1000 * median:.1f} ms, 95th {1000 * p95:.1f} ms, "
              f"max {1000 * latencies[-1]:.1f} ms")  # fmt: skip
    print(f"  trials each client holds at the end: {min(received):,} to {max(received):,} "
          f"(stored then: {count:,})")  # fmt: skip
    on, off = sum(windows.on) / len(windows.on), sum(windows.off) / len(windows.off)
    print("search rate, trials/s, off windows:", " ".join(f"{r:.0f}" for r in windows.off))
    print("search rate, trials/s, on windows: ", " ".join(f"{r:.0f}" for r in windows.on))
    print(f"mean: without the clients {off:.1f}/s, with {on:.1f}/s")
    print(f"ratio with / without: {on / off:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
