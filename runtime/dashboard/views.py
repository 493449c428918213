"""What the page shows, computed from a snapshot: the search's state and progress, the
reward distribution per quarter, the running best and the Pareto fronts. Plain data
(JSON-ready), no web framework here."""

from __future__ import annotations

import math
from typing import Any

from .reader import Snapshot

# A search whose store has not changed for this long (and this many typical trial
# intervals) is shown as stopped: killed, or waiting on something.
QUIET_SECONDS = 60.0
QUIET_INTERVALS = 5
RECENT = 50  # trials over which the rate, and so the estimate of the rest, is measured
BINS = 20  # reward histogram bins


def search_state(snapshot: Snapshot, now: float) -> dict[str, Any]:
    """Counts, progress, timing and whether the search is running, finished or stopped."""
    trials = snapshot.trials
    asked = int(snapshot.config.get("trials") or len(trials))
    done = len(trials)
    failed = sum(1 for t in trials if t["status"] == "failed")
    repeats = sum(1 for t in trials if t["status"] == "repeat")
    # Refused by the budget's gate before any evaluator saw them (runtime/search/budget.py).
    over_budget = sum(1 for t in trials if t["status"] == "over_budget")
    interval = _trial_interval(trials)
    quiet = max(QUIET_SECONDS, QUIET_INTERVALS * interval) if interval else QUIET_SECONDS
    since_write = max(0.0, now - snapshot.last_write)
    if done >= asked:
        state = "finished"
    elif since_write <= quiet:
        state = "running"
    else:
        state = "stopped"
    start = snapshot.created_at or _first_start(trials) or snapshot.last_write
    ends = [t["finished_at"] for t in trials if t["finished_at"] is not None]
    end = now if state == "running" else max(ends, default=snapshot.last_write)
    remaining = max(0, asked - done)
    best = best_trial(trials)
    return {
        "state": state,
        "asked": asked,
        "done": done,
        "evaluated": done - repeats - over_budget,
        "failed": failed,
        "repeats": repeats,
        "over_budget": over_budget,
        "last_write": snapshot.last_write,
        "since_last_write": since_write,
        "elapsed": max(0.0, end - start) if start else None,
        "trials_per_second": 1.0 / interval if interval else None,
        "eta": remaining * interval if interval and state == "running" else None,
        "best": None if best is None else {k: best[k] for k in ("id", "reward", "arch")},
    }


def best_trial(trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ok trial with the highest reward, the earliest among equals (as the report)."""
    ok = [t for t in trials if t["status"] == "ok"]
    return max(ok, key=lambda t: (t["reward"], -t["id"])) if ok else None


def _trial_interval(trials: list[dict[str, Any]]) -> float | None:
    """Mean seconds between trial ends over the recent trials (None with too few)."""
    ends = sorted(t["finished_at"] for t in trials[-RECENT:] if t["finished_at"] is not None)
    if len(ends) < 2 or ends[-1] <= ends[0]:
        return None
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def _first_start(trials: list[dict[str, Any]]) -> float | None:
    starts = [t["finished_at"] for t in trials if t["finished_at"] is not None]
    return min(starts) if starts else None


def by_id(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(trials, key=lambda t: t["id"])


def quarters(trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The reward histogram of each quarter of the trials (in id order, repeats count, as
    the report's quarter means); None with fewer than 4 trials."""
    rewards = [t["reward"] for t in by_id(trials)]
    quarter = len(rewards) // 4
    if quarter == 0:
        return None
    parts = [rewards[i * quarter : (i + 1) * quarter] for i in range(3)]
    parts.append(rewards[3 * quarter :])
    low, high = min(rewards), max(rewards)
    width = (high - low) / BINS or 1.0
    edges = [low + i * width for i in range(BINS + 1)]
    counts = []
    for part in parts:
        row = [0] * BINS
        for r in part:
            row[min(BINS - 1, int((r - low) / width))] += 1
        counts.append(row)
    return {
        "edges": edges,
        "counts": counts,
        "means": [sum(p) / len(p) for p in parts],
        "sizes": [len(p) for p in parts],
    }


def pareto_front(trials: list[dict[str, Any]], cost: str) -> list[int]:
    """Ids of the ok trials no other beats on both accuracy (higher) and `cost` (lower),
    by increasing cost; each architecture once (its first trial)."""
    points = [
        t
        for t in trials
        if t["status"] == "ok" and t["accuracy"] is not None and t[cost] is not None
    ]
    points.sort(key=lambda t: (t[cost], -t["accuracy"], t["id"]))
    front: list[int] = []
    best = -math.inf
    for t in points:
        if t["accuracy"] > best:
            front.append(t["id"])
            best = t["accuracy"]
    return front


def overview(snapshot: Snapshot, now: float) -> dict[str, Any]:
    """Everything on the main page except the trials and the controller's steps (which a
    client fetches only once each)."""
    trials = snapshot.trials
    return {
        "config": snapshot.config,
        "search": search_state(snapshot, now),
        "quarters": quarters(trials),
        "pareto": {
            "parameters": pareto_front(trials, "parameters"),
            "macs": pareto_front(trials, "macs"),
        },
        "staleness": [{"staleness": k, "updates": v} for k, v in snapshot.staleness.items()],
    }
