"""The trial store: one SQLite file (WAL) that holds everything a search has done.

Tables:
- ``meta``: the search's config (JSON) and the schema version. `--resume` compares
  the config it is given with this one and refuses a different search.
- ``trials``: one row per proposal, in the order the controller made them. ``id`` is
  the proposal's position in the search (from 1), so an interrupted and resumed
  search numbers its trials exactly as an uninterrupted one. ``status`` is ``ok``,
  ``failed`` or ``repeat``: a repeat is an architecture evaluated earlier, not
  evaluated again; it carries the original's reward and ``repeat_of`` its id.
- ``checkpoints``: one row per controller step: the strategy's ``state_dict()``
  before that step's ``ask`` (torch.save bytes), the number of proposals the step
  makes and the id of its first trial; ``stats`` and ``told_at`` are filled in
  when the step's ``tell`` is done (with the next step's row, in one transaction).

- ``rounds`` and ``shards`` (the Ray backend, runtime/search/ray_search.py): one row per
  round a controller replica sampled (its proposals, trial ids, the weights it sampled
  with until every shard has applied its gradient, the replica's generator state
  after sampling, the staleness of its update) and the latest checkpoint of each
  parameter-server shard. Added to older stores when they are opened.

One process writes (the search driver). Each write is its own committed
transaction, so a search killed at any moment keeps every row it has written.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge.grammar.errors import NasforgeError

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "repeat")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    step INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    arch TEXT NOT NULL,
    arch_hash TEXT NOT NULL,
    decisions TEXT NOT NULL,
    depth INTEGER,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'repeat')),
    repeat_of INTEGER REFERENCES trials (id),
    reward REAL NOT NULL,
    metrics TEXT NOT NULL,
    parameters INTEGER,
    macs INTEGER,
    seconds REAL,
    error TEXT,
    worker TEXT,
    started_at REAL,
    finished_at REAL,
    UNIQUE (step, slot)
);
CREATE INDEX IF NOT EXISTS trials_by_hash ON trials (arch_hash);
CREATE TABLE IF NOT EXISTS checkpoints (
    step INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    first_trial INTEGER NOT NULL,
    state BLOB NOT NULL,
    created_at REAL NOT NULL,
    stats TEXT,
    told_at REAL
);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    replica INTEGER NOT NULL,
    first_trial INTEGER NOT NULL,
    size INTEGER NOT NULL,
    proposals TEXT NOT NULL,
    versions TEXT NOT NULL,
    weights BLOB,
    generator BLOB NOT NULL,
    sampled_at REAL NOT NULL,
    staleness INTEGER,
    stats TEXT,
    told_at REAL
);
CREATE TABLE IF NOT EXISTS shards (
    shard INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    state BLOB NOT NULL,
    saved_at REAL NOT NULL
);
"""

_TRIAL_COLUMNS = (
    "id",
    "step",
    "slot",
    "arch",
    "arch_hash",
    "decisions",
    "depth",
    "status",
    "repeat_of",
    "reward",
    "metrics",
    "parameters",
    "macs",
    "seconds",
    "error",
    "worker",
    "started_at",
    "finished_at",
)


class StoreError(NasforgeError):
    """The store is missing, unreadable, of another search, or asked to break its rules."""


def arch_hash(arch: str) -> str:
    """The key of a canonical architecture text (sha256, hex)."""
    return hashlib.sha256(arch.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrialRecord:
    """One row of `trials`."""

    id: int
    step: int
    slot: int
    arch: str
    status: str
    reward: float
    decisions: tuple[int, ...] = ()
    depth: int | None = None
    repeat_of: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    parameters: int | None = None
    macs: int | None = None
    seconds: float | None = None
    error: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def arch_hash(self) -> str:
        return arch_hash(self.arch)

    @property
    def evaluated(self) -> bool:
        """True for rows that ran the evaluator (not repeats)."""
        return self.status != "repeat"


@dataclass(frozen=True)
class Checkpoint:
    """A controller checkpoint: the strategy's state before step `step` asks."""

    step: int
    size: int  # proposals this step makes
    first_trial: int  # the id of its first trial
    state: bytes  # torch.save of the strategy's state_dict
    created_at: float
    stats: dict[str, float] | None = None  # the step's tell() statistics, once told
    told_at: float | None = None


@dataclass(frozen=True)
class RoundRecord:
    """One round of a controller replica (the Ray backend): m proposals and their update."""

    round: int
    replica: int
    first_trial: int  # the proposals are trials first_trial, first_trial + 1, ...
    proposals: tuple[dict[str, Any], ...]  # {"arch", "decisions", "depth"} each
    versions: tuple[int, ...]  # each shard's version of the weights sampled with
    weights: bytes | None  # those weights; None once every shard has applied the round
    generator: bytes  # the replica's generator state after sampling
    sampled_at: float
    staleness: int | None = None  # of its update: versions the shards had moved on (max)
    stats: dict[str, float] | None = None  # the update's statistics, once told
    told_at: float | None = None

    @property
    def size(self) -> int:
        return len(self.proposals)


def dump_state(state: dict[str, Any]) -> bytes:
    """A strategy's state_dict as torch.save bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_state(blob: bytes) -> dict[str, Any]:
    """The state_dict saved by `dump_state`.

    weights_only=False: a state holds RNG states (NumPy arrays, Python tuples) that the
    safe unpickler refuses, and the bytes come from this search's own store.
    """
    import torch

    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)


class TrialStore:
    """A search's SQLite store. Use `create` for a new search, `open` to continue one."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    # --- opening ------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, config: dict[str, Any]) -> TrialStore:
        """A new, empty store at `path` recording `config`; StoreError if one is there."""
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path} already exists; it holds a search")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            store = cls(path, _connect(path))
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"cannot create the trial store {path}: {err}") from None
        with store._db:
            store._db.executescript(_SCHEMA)
            store._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?), ('config', ?), "
                "('created_at', ?)",
                (str(SCHEMA_VERSION), json.dumps(config, sort_keys=True), repr(time.time())),
            )
        return store

    @classmethod
    def open(cls, path: str | Path) -> TrialStore:
        """An existing store; StoreError when it is missing or not a nasforge store."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"there is no trial store at {path}")
        try:
            store = cls(path, _connect(path))
            rows = dict(store._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as err:
            raise StoreError(f"{path} is not a nasforge trial store ({err})") from None
        if "config" not in rows or "schema" not in rows:
            store.close()
            raise StoreError(f"{path} is not a nasforge trial store (no config)")
        if int(rows["schema"]) != SCHEMA_VERSION:
            store.close()
            raise StoreError(
                f"{path} has store schema {rows['schema']}; this nasforge reads {SCHEMA_VERSION}"
            )
        with store._db:
            store._db.executescript(_SCHEMA)  # tables added since (IF NOT EXISTS: no-ops)
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- config -------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        (value,) = self._db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        return json.loads(value)

    def set_config(self, config: dict[str, Any]) -> None:
        """Replace the recorded config (a resumed search with, say, more trials)."""
        with self._db:
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'config'",
                (json.dumps(config, sort_keys=True),),
            )

    # --- trials -------------------------------------------------------------------

    def add_trial(self, trial: TrialRecord) -> None:
        """Store one finished trial (committed before this returns)."""
        if trial.status not in STATUSES:
            raise StoreError(f"unknown trial status {trial.status!r}")
        if (trial.status == "repeat") != (trial.repeat_of is not None):
            raise StoreError("a repeat names the trial it repeats, and only a repeat does")
        row = (
            trial.id,
            trial.step,
            trial.slot,
            trial.arch,
            trial.arch_hash,
            json.dumps(list(trial.decisions)),
            trial.depth,
            trial.status,
            trial.repeat_of,
            float(trial.reward),
            json.dumps(trial.metrics, sort_keys=True),
            trial.parameters,
            trial.macs,
            trial.seconds,
            trial.error,
            trial.worker,
            trial.started_at,
            trial.finished_at,
        )
        marks = ", ".join("?" for _ in _TRIAL_COLUMNS)
        try:
            with self._db:
                self._db.execute(
                    f"INSERT INTO trials ({', '.join(_TRIAL_COLUMNS)}) VALUES ({marks})", row
                )
        except sqlite3.IntegrityError as err:
            raise StoreError(
                f"trial {trial.id} (step {trial.step}, slot {trial.slot}) cannot be stored: {err}"
            ) from None

    def trials(self, *, step: int | None = None) -> list[TrialRecord]:
        """Every stored trial in id order (or those of one controller step)."""
        query = f"SELECT {', '.join(_TRIAL_COLUMNS)} FROM trials"
        args: tuple[int, ...] = ()
        if step is not None:
            query += " WHERE step = ?"
            args = (step,)
        return [_trial(row) for row in self._db.execute(query + " ORDER BY id", args)]

    def iter_evaluated(self) -> Iterator[TrialRecord]:
        """Trials that ran the evaluator (the originals that repeats point to)."""
        query = f"SELECT {', '.join(_TRIAL_COLUMNS)} FROM trials WHERE status != 'repeat'"
        for row in self._db.execute(query + " ORDER BY id"):
            yield _trial(row)

    def find(self, arch: str) -> TrialRecord | None:
        """The evaluated trial of the architecture `arch`, if any."""
        row = self._db.execute(
            f"SELECT {', '.join(_TRIAL_COLUMNS)} FROM trials "
            "WHERE arch_hash = ? AND status != 'repeat' ORDER BY id LIMIT 1",
            (arch_hash(arch),),
        ).fetchone()
        return _trial(row) if row is not None else None

    def count(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM trials").fetchone()
        return int(n)

    # --- checkpoints --------------------------------------------------------------

    def save_checkpoint(
        self,
        step: int,
        size: int,
        first_trial: int,
        state: bytes,
        *,
        told_stats: dict[str, float] | None = None,
    ) -> None:
        """Store the strategy state before step `step` asks; with `told_stats`, also mark
        step `step - 1` as told, in the same transaction (so neither exists without the
        other)."""
        now = time.time()
        with self._db:
            if told_stats is not None:
                self._db.execute(
                    "UPDATE checkpoints SET stats = ?, told_at = ? WHERE step = ?",
                    (json.dumps(told_stats, sort_keys=True), now, step - 1),
                )
            self._db.execute(
                "INSERT OR REPLACE INTO checkpoints (step, size, first_trial, state, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (step, size, first_trial, sqlite3.Binary(state), now),
            )

    def resize_step(self, step: int, size: int) -> None:
        """Change the batch size recorded for step `step` (only before it stores a trial)."""
        with self._db:
            (stored,) = self._db.execute(
                "SELECT COUNT(*) FROM trials WHERE step = ?", (step,)
            ).fetchone()
            if stored:
                raise StoreError(f"step {step} has stored trials; its size is fixed")
            self._db.execute("UPDATE checkpoints SET size = ? WHERE step = ?", (size, step))

    def latest_checkpoint(self) -> Checkpoint | None:
        row = self._db.execute(
            "SELECT step, size, first_trial, state, created_at, stats, told_at "
            "FROM checkpoints ORDER BY step DESC LIMIT 1"
        ).fetchone()
        return _checkpoint(row) if row is not None else None

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._db.execute(
            "SELECT step, size, first_trial, state, created_at, stats, told_at "
            "FROM checkpoints ORDER BY step"
        )
        return [_checkpoint(row) for row in rows]


    # --- distributed rounds and parameter-server shards (runtime/search/ray_search.py) ---------

    def add_round(self, record: RoundRecord) -> None:
        """Store a round as it is sampled, before any of its children runs."""
        try:
            with self._db:
                self._db.execute(
                    "INSERT INTO rounds (round, replica, first_trial, size, proposals, versions,"
                    " weights, generator, sampled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.round,
                        record.replica,
                        record.first_trial,
                        record.size,
                        json.dumps(list(record.proposals), sort_keys=True),
                        json.dumps(list(record.versions)),
                        None if record.weights is None else sqlite3.Binary(record.weights),
                        sqlite3.Binary(record.generator),
                        record.sampled_at,
                    ),
                )
        except sqlite3.IntegrityError as err:
            raise StoreError(f"round {record.round} cannot be stored: {err}") from None

    def tell_round(self, round_id: int, staleness: int, stats: dict[str, float]) -> None:
        """Record that round `round_id`'s gradient was pushed (the first push counts)."""
        with self._db:
            self._db.execute(
                "UPDATE rounds SET staleness = ?, stats = ?, told_at = ? "
                "WHERE round = ? AND told_at IS NULL",
                (staleness, json.dumps(stats, sort_keys=True), time.time(), round_id),
            )

    def rounds(self) -> list[RoundRecord]:
        rows = self._db.execute(
            "SELECT round, replica, first_trial, proposals, versions, weights, generator,"
            " sampled_at, staleness, stats, told_at FROM rounds ORDER BY round"
        )
        return [_round(row) for row in rows]

    def save_shards(self, states: list[tuple[int, bytes]], applied_by_all: set[int]) -> None:
        """Replace the shards' checkpoints ((version, state) per shard, in shard order) and
        drop the sampling weights of the rounds every shard has applied (no longer needed
        to replay a push), in one transaction."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO shards (shard, version, state, saved_at)"
                " VALUES (?, ?, ?, ?)",
                [
                    (index, version, sqlite3.Binary(state), now)
                    for index, (version, state) in enumerate(states)
                ],
            )
            self._db.executemany(
                "UPDATE rounds SET weights = NULL WHERE round = ? AND weights IS NOT NULL",
                [(r,) for r in sorted(applied_by_all)],
            )

    def shard_states(self) -> list[bytes]:
        """The shards' latest checkpoints in shard order (empty before the first)."""
        rows = self._db.execute("SELECT state FROM shards ORDER BY shard").fetchall()
        return [bytes(state) for (state,) in rows]


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=30.0)
    # WAL: readers (nasforge report, a test polling progress) never block the writer.
    connection.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed trial survives even an OS crash; trials are rare, fsyncs are cheap.
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def _trial(row: tuple[Any, ...]) -> TrialRecord:
    values = dict(zip(_TRIAL_COLUMNS, row, strict=True))
    del values["arch_hash"]
    values["decisions"] = tuple(json.loads(values["decisions"]))
    values["metrics"] = json.loads(values["metrics"])
    return TrialRecord(**values)


def _checkpoint(row: tuple[Any, ...]) -> Checkpoint:
    step, size, first_trial, state, created_at, stats, told_at = row
    return Checkpoint(
        step=step,
        size=size,
        first_trial=first_trial,
        state=bytes(state),
        created_at=created_at,
        stats=json.loads(stats) if stats is not None else None,
        told_at=told_at,
    )


def _round(row: tuple[Any, ...]) -> RoundRecord:
    number, replica, first, proposals, versions, weights, generator, sampled_at = row[:8]
    staleness, stats, told_at = row[8:]
    return RoundRecord(
        round=number,
        replica=replica,
        first_trial=first,
        proposals=tuple(json.loads(proposals)),
        versions=tuple(json.loads(versions)),
        weights=None if weights is None else bytes(weights),
        generator=bytes(generator),
        sampled_at=sampled_at,
        staleness=staleness,
        stats=json.loads(stats) if stats is not None else None,
        told_at=told_at,
    )
