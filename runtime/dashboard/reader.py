"""A read-only view of a search's store that follows it while the search writes.

The store is opened through SQLite's read-only URI, and nothing is ever written to DIR:
- while a writer has the store open (or after it was killed) the WAL file and its
  shared-memory index exist, and a read-only connection reads through them;
- after a clean end SQLite has folded the WAL into search.db and deleted both files; a
  read-only connection would create them again, so the store is then opened as
  `immutable` (no WAL, no locks) until a WAL file appears (a resumed search).

Trials are only ever inserted, never changed, so `refresh` reads just the rows it has not
seen (ids above the highest id below which every id is known). The trials are kept in
the order this reader first saw them: a client that has seen the first N asks for the
rest (`Snapshot.since`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nasforge.runtime.search.build import STORE_FILE
from nasforge.runtime.search.store import SCHEMA_VERSION, StoreError, TrialStore

TRIAL_COLUMNS = (
    "id, step, slot, arch, status, repeat_of, reward, metrics, parameters, macs, seconds, "
    "error, worker, started_at, finished_at"
)


class NoSearch(StoreError):
    """DIR holds no search store."""


def no_search_message(out_dir: Path) -> str:
    """The words `nasforge report` uses for a DIR without a store."""
    return (
        f"{out_dir} holds no search (no {STORE_FILE}); run `nasforge search --out "
        f"{out_dir} ...` first"
    )


@dataclass
class Snapshot:
    """What the store held at one refresh; `trials` in the order this reader saw them."""

    config: dict[str, Any]
    created_at: float | None
    last_write: float
    trials: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    staleness: dict[int, int]
    version: int  # grows with every refresh that found something new
    read_at: float = field(default_factory=time.time)
    # The same trials and steps as JSON, each encoded once when first read.
    encoded_trials: list[bytes] = field(default_factory=list)
    encoded_steps: list[bytes] = field(default_factory=list)

    def since(self, seen: int) -> list[dict[str, Any]]:
        """The trials after the first `seen` (all of them for a new client)."""
        return self.trials[max(0, seen) :]

    def trials_json(self, seen: int) -> bytes:
        """`since(seen)` as a JSON array."""
        return b"[" + b",".join(self.encoded_trials[max(0, seen) :]) + b"]"

    def steps_json(self, seen: int) -> bytes:
        """The steps after the first `seen`, as a JSON array."""
        return b"[" + b",".join(self.encoded_steps[max(0, seen) :]) + b"]"


class StoreReader:
    """Follows DIR/search.db read-only; `snapshot()` re-reads at most every `min_interval` s."""

    def __init__(self, out_dir: str | Path, *, min_interval: float = 1.0) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / STORE_FILE
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._immutable = False
        self._config: dict[str, Any] = {}
        self._created_at: float | None = None
        self._trials: list[dict[str, Any]] = []
        self._encoded_trials: list[bytes] = []
        self._encoded_steps: list[bytes] = []
        self._by_id: dict[int, dict[str, Any]] = {}
        self._floor = 0  # every id <= floor is known
        self._steps: list[dict[str, Any]] = []
        self._staleness: dict[int, int] = {}
        self._version = 0
        self._snapshot: Snapshot | None = None
        if not self.path.is_file():
            raise NoSearch(no_search_message(self.out_dir))
        self._check_meta()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- opening ------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """A read-only connection of the right kind for the store's state now."""
        has_wal = self.path.with_name(self.path.name + "-wal").exists()
        if self._db is not None and has_wal and not self._immutable:
            return self._db
        # An immutable connection never sees later changes: a fresh one for every read.
        if self._db is not None:
            self._db.close()
        options = "mode=ro" if has_wal else "mode=ro&immutable=1"
        uri = f"file:{quote(str(self.path.resolve()))}?{options}"
        self._db = sqlite3.connect(
            uri, uri=True, timeout=30.0, check_same_thread=False, isolation_level=None
        )
        self._immutable = not has_wal
        return self._db

    def _check_meta(self) -> None:
        """The store's config; a store this cannot read is refused with the words of
        `TrialStore.open_readonly` (those of `nasforge report`)."""
        try:
            rows = dict(self._connection().execute("SELECT key, value FROM meta").fetchall())
            config = json.loads(rows["config"])
            usable = int(rows["schema"]) == SCHEMA_VERSION and isinstance(config, dict)
        except (sqlite3.Error, KeyError, ValueError):
            usable = False
        if not usable:
            self.close()
            raise self._refusal()
        self._config = config
        created = rows.get("created_at")
        self._created_at = float(created) if created is not None else None

    def _refusal(self) -> StoreError:
        """Why the store cannot be read, as the store's own checks say it.

        Only for a store this reader could not use: a file that is not SQLite, or not in
        WAL mode, gets no -wal or -shm file from a read-only open."""
        try:
            TrialStore.open_readonly(self.path).close()
        except StoreError as err:
            return err
        except sqlite3.Error as err:
            return StoreError(f"{self.path} is not a nasforge trial store ({err})")
        return StoreError(f"{self.path} is not a nasforge trial store (unreadable meta)")

    # --- reading ------------------------------------------------------------------

    def snapshot(self, *, now: float | None = None) -> Snapshot:
        """The latest snapshot; re-read when the last is older than `min_interval`."""
        now = time.time() if now is None else now
        with self._lock:
            stale = self._snapshot is None or now - self._snapshot.read_at >= self.min_interval
            if stale:
                self._refresh(now)
            assert self._snapshot is not None
            return self._snapshot

    def _refresh(self, now: float) -> None:
        try:
            db = self._connection()
            db.execute("BEGIN")  # one read transaction: trials, steps and rounds of one moment
            try:
                found = self._read_trials(db) + self._read_steps(db)
                staleness = self._read_staleness(db)
                (config,) = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
            finally:
                db.execute("COMMIT")
        except sqlite3.Error:
            # A checkpoint of the WAL in progress under an immutable read, or a busy store:
            # keep the last snapshot and try again at the next refresh.
            if self._snapshot is not None:
                self._snapshot.read_at = now
                return
            raise
        self._config = json.loads(config)
        if found or staleness != self._staleness:
            self._version += 1
        self._staleness = staleness
        self._snapshot = Snapshot(
            config=self._config,
            created_at=self._created_at,
            last_write=self._last_write(),
            trials=self._trials[:],
            steps=self._steps[:],
            staleness=staleness,
            version=self._version,
            read_at=now,
            encoded_trials=self._encoded_trials[:],
            encoded_steps=self._encoded_steps[:],
        )

    def _read_trials(self, db: sqlite3.Connection) -> int:
        rows = db.execute(
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE id > ? ORDER BY id", (self._floor,)
        ).fetchall()
        new = [row for row in rows if row[0] not in self._by_id]
        for row in new:
            trial = trial_row(row)
            original = self._by_id.get(trial["repeat_of"]) if trial["repeat_of"] else None
            if original is not None:  # a repeat was not evaluated: its original's accuracy
                trial["accuracy"] = original["accuracy"]
            self._trials.append(trial)
            self._encoded_trials.append(encode(trial))
            self._by_id[trial["id"]] = trial
        while self._floor + 1 in self._by_id:
            self._floor += 1
        return len(new)

    def _read_steps(self, db: sqlite3.Connection) -> int:
        last = self._steps[-1]["step"] if self._steps else -1
        rows = db.execute(
            "SELECT step, size, first_trial, stats, told_at FROM checkpoints "
            "WHERE stats IS NOT NULL AND step > ? ORDER BY step",
            (last,),
        ).fetchall()
        for step, size, first, stats, told_at in rows:
            told = {"step": step, "size": size, "first_trial": first, "told_at": told_at,
                    "stats": json.loads(stats)}  # fmt: skip
            self._steps.append(told)
            self._encoded_steps.append(encode(told))
        return len(rows)

    @staticmethod
    def _read_staleness(db: sqlite3.Connection) -> dict[int, int]:
        rows = db.execute("SELECT staleness FROM rounds WHERE staleness IS NOT NULL")
        return dict(sorted(Counter(int(s) for (s,) in rows).items()))

    def _last_write(self) -> float:
        """When the store last changed: the newest modification time of its files."""
        times = []
        for suffix in ("", "-wal"):
            try:
                times.append(self.path.with_name(self.path.name + suffix).stat().st_mtime)
            except OSError:
                continue
        return max(times, default=0.0)

    def trial(self, trial_id: int) -> dict[str, Any] | None:
        """One trial with its full metrics (the per-epoch rows), read now."""
        with self._lock:
            try:
                row = (
                    self._connection()
                    .execute(f"SELECT {TRIAL_COLUMNS} FROM trials WHERE id = ?", (trial_id,))
                    .fetchone()
                )
            except sqlite3.Error as err:
                raise StoreError(f"cannot read trial {trial_id} from {self.path}: {err}") from None
        if row is None:
            return None
        trial = trial_row(row, full=True)
        if trial["repeat_of"]:
            original = self.trial(int(trial["repeat_of"]))
            if original is not None:
                trial["accuracy"] = original["accuracy"]
        return trial


def encode(value: Any) -> bytes:
    """Compact JSON, as Starlette's JSONResponse writes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def trial_row(row: tuple[Any, ...], *, full: bool = False) -> dict[str, Any]:
    """A trial as the page shows it; `full` keeps the metrics themselves."""
    (trial_id, step, slot, arch, status, repeat_of, reward, metrics_text, parameters, macs,
     seconds, error, worker, started_at, finished_at) = row  # fmt: skip
    metrics = json.loads(metrics_text) if metrics_text else {}
    trial = {
        "id": trial_id,
        "step": step,
        "slot": slot,
        "arch": arch,
        "status": status,
        "repeat_of": repeat_of,
        "reward": reward,
        "accuracy": accuracy(metrics),
        "parameters": parameters,
        "macs": macs,
        "seconds": seconds,
        "error": error,
        "finished_at": finished_at,
    }
    if full:
        trial.update(metrics=metrics, worker=worker, started_at=started_at)
    return trial


def accuracy(metrics: dict[str, Any]) -> float | None:
    """A trial's validation accuracy (0..1): the best epoch's, or the table's valid12."""
    epochs = metrics.get("epochs")
    if isinstance(epochs, list):
        values = [e["val_acc"] for e in epochs if isinstance(e, dict) and "val_acc" in e]
        return float(max(values)) if values else None
    if isinstance(metrics.get("valid12"), int | float):
        return float(metrics["valid12"]) / 100.0
    return None
