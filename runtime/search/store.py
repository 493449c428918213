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
  before that step's ``ask`` (data-only bytes: state_codec.py), the number of proposals the step
  makes and the id of its first trial; ``stats`` and ``told_at`` are filled in
  when the step's ``tell`` is done (with the next step's row, in one transaction).

- ``epochs`` (a one-shot search, runtime/search/oneshot_run.py): one row per completed
  epoch: its record (JSON: losses, accuracies, architecture weights or controller
  statistics) and, on the latest row only, the checkpoint of the whole search after it
  (supernet, optimisers, architecture or controller state, generators), written in
  one transaction with the record. Added to older stores when they are opened.

- ``rounds`` and ``shards`` (the Ray backend, runtime/search/ray_search.py): one row per
  round a controller replica sampled (its proposals, trial ids, the weights it sampled
  with until every shard has applied its gradient, the replica's generator state
  after sampling, the staleness of its update) and the latest checkpoint of each
  parameter-server shard. Added to older stores when they are opened.

One process writes (the search driver). Each write is its own committed
transaction, so a search killed at any moment keeps every row it has written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sqlite3
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge.grammar.errors import NasforgeError

from .state_codec import TORCH_ZIP_MAGIC, StateFormatError, decode_state, encode_state

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
CREATE TABLE IF NOT EXISTS outputs (
    name TEXT PRIMARY KEY,
    written_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY,
    record TEXT NOT NULL,
    state BLOB,
    saved_at REAL NOT NULL
);
"""

# The tables and columns the code reads; a store without one of them is damaged (or not
# a nasforge store), never silently given an empty table again. `rounds`, `shards` and
# `outputs` came later: they are added to a store that lacks them when it is opened.
_REQUIRED = {
    "meta": ("key", "value"),
    "trials": (
        "id", "step", "slot", "arch", "arch_hash", "decisions", "depth", "status",
        "repeat_of", "reward", "metrics", "parameters", "macs", "seconds", "error",
        "worker", "started_at", "finished_at",
    ),
    "checkpoints": ("step", "size", "first_trial", "state", "created_at", "stats", "told_at"),
}  # fmt: skip
_ADDED_LATER = ("rounds", "shards", "outputs", "epochs")

SALVAGE = (
    "to salvage its readable rows, in its folder: mkdir salvaged && sqlite3 search.db "
    "\".dump\" | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 salvaged/search.db, "
    "then `nasforge report salvaged` (docs/search.md, \"A damaged store\")"
)

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
    state: bytes  # the strategy's state_dict, as dump_state wrote it
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
    """A strategy's state_dict as bytes that hold data only (runtime/search/state_codec.py)."""
    return encode_state(state)


def load_state(blob: bytes, what: str = "the controller checkpoint") -> dict[str, Any]:
    """The state_dict saved by `dump_state`; StoreError for bytes that are anything else.

    Nothing here can run code: the format holds no pickle. A checkpoint written by an
    earlier nasforge (torch.save's zip) is read with torch's weights-only loader, which
    refuses every object but tensors and plain containers, and only on a torch whose
    weights-only loader is safe (2.6 and later: CVE-2025-32434)."""
    try:
        if blob.startswith(TORCH_ZIP_MAGIC):
            state = _load_torch_zip(blob, what)
        else:
            state = decode_state(blob)
    except StateFormatError as err:
        raise StoreError(f"{what} {_REFUSED}: {err}") from None
    if not isinstance(state, dict):
        raise StoreError(f"{what} {_REFUSED}: it holds a {type(state).__name__}, not a state")
    return state


_REFUSED = "is not a strategy state nasforge can read; refused, nothing in it was loaded"


def _load_torch_zip(blob: bytes, what: str) -> Any:
    import torch
    from torch.torch_version import TorchVersion

    if TorchVersion(torch.__version__) < (2, 6):
        raise StoreError(
            f"{what} was written by an earlier nasforge (torch.save); torch "
            f"{torch.__version__}'s loader for it is not safe for files from elsewhere, so it "
            "was not loaded: upgrade torch to 2.6 or later to resume this search"
        )
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as err:  # the weights-only loader's refusal, or a damaged archive
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StateFormatError(f"torch's weights-only loader refused it ({first[:300]})") from None


class TrialStore:
    """A search's SQLite store. Use `create` for a new search, `open` to continue one,
    `open_readonly` to read one (a report, the dashboard; also on read-only media)."""

    def __init__(self, path: Path, connection: sqlite3.Connection, *, read_only: bool = False):
        self.path = path
        self._db = connection
        self.read_only = read_only
        # True when this store came without an `outputs` table (written by an earlier
        # nasforge, which recorded no outputs): build.py adopts its files then.
        self.outputs_unrecorded = False
        self._tables: set[str] = set(_REQUIRED) | set(_ADDED_LATER)

    # --- opening ------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, config: dict[str, Any]) -> TrialStore:
        """A new, empty store at `path` recording `config`; StoreError if one is there."""
        path = Path(path)
        if path.exists() and not (path.is_file() and path.stat().st_size == 0):
            raise StoreError(f"{path} already exists; it holds a search")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            store = cls(path, _connect(path))
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"cannot create the trial store {path}: {err}") from None
        with store._writing():
            store._db.executescript(_SCHEMA)
            store._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?), ('config', ?), "
                "('created_at', ?)",
                (str(SCHEMA_VERSION), json.dumps(config, sort_keys=True), repr(time.time())),
            )
        return store

    @classmethod
    def open(cls, path: str | Path) -> TrialStore:
        """An existing store, to write; StoreError when it is missing, not a nasforge store,
        damaged (checked before anything is written) or read-only."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"there is no trial store at {path}")
        why = _not_writable(path)
        if why:
            raise StoreError(
                f"{path.parent} is read-only ({why}): a search cannot write there. "
                f"`nasforge report {path.parent}` reads it as it is; to continue the search, "
                "copy the whole folder to a writable place and resume it there"
            )
        try:
            connection = sqlite3.connect(str(path), timeout=30.0)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the trial store {path}: {err}") from None
        store = cls(path, connection)
        try:
            tables = store._check()
            _set_pragmas(connection)
            store.outputs_unrecorded = "outputs" not in tables
            if not set(_ADDED_LATER) <= tables:
                with store._writing():
                    store._db.executescript(_SCHEMA)  # only the missing tables are created
                store._tables |= set(_ADDED_LATER)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, path: str | Path) -> TrialStore:
        """An existing store, to read only: nothing is ever written to it.

        Works beside a search that is writing it (SQLite's WAL lets a reader see each
        committed trial) and on read-only media. StoreError when it is missing, not a
        nasforge store or damaged."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"there is no trial store at {path}")
        store = cls(path, _connect_readonly(path), read_only=True)
        try:
            store._check()
        except BaseException:
            store.close()
            raise
        return store

    def _check(self) -> set[str]:
        """Refuse a store that is not a nasforge store, is damaged or lacks what the code
        reads; the names of its tables."""
        path = self.path
        try:
            tables = {
                name: [col for (_, col, *_) in self._db.execute(f"PRAGMA table_info({name})")]
                for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            (verdict, *_more) = self._db.execute("PRAGMA quick_check(5)").fetchone()
        except sqlite3.DatabaseError as err:
            if "file is not a database" in str(err) or "not an error" in str(err):
                raise StoreError(f"{path} is not a nasforge trial store ({err})") from None
            raise StoreError(f"{path} is damaged ({err}); {SALVAGE}") from None
        except sqlite3.Error as err:
            raise StoreError(f"cannot read the trial store {path}: {err}") from None
        if "meta" not in tables:
            raise StoreError(f"{path} is not a nasforge trial store (no meta table)")
        if verdict != "ok":
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
            raise StoreError(
                f"{path} is damaged (SQLite's quick_check: {'; '.join(problems)[:300]}); "
                f"nothing was changed in it; {SALVAGE}"
            )
        rows = self._meta()
        if "config" not in rows or "schema" not in rows:
            raise StoreError(f"{path} is not a nasforge trial store (no config)")
        if rows["schema"] != str(SCHEMA_VERSION):
            raise StoreError(
                f"{path} has store schema {rows['schema']}; this nasforge reads {SCHEMA_VERSION}"
            )
        for table, columns in _REQUIRED.items():
            if table not in tables:
                raise StoreError(f"{path} is damaged: it has no table {table}; {SALVAGE}")
            missing = [c for c in columns if c not in tables[table]]
            if missing:
                raise StoreError(
                    f"{path} is damaged: its table {table} has no column "
                    f"{', '.join(missing)}; {SALVAGE}"
                )
        self._tables = set(tables)
        return set(tables)

    def _meta(self) -> dict[str, str]:
        try:
            return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta")}
        except sqlite3.Error as err:
            raise StoreError(f"{self.path} is not a nasforge trial store ({err})") from None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One committed transaction; a full disk or a read-only file becomes a StoreError
        that says what is stored and how to go on (the transaction is rolled back)."""
        try:
            with self._db:
                yield
        except sqlite3.OperationalError as err:
            code = getattr(err, "sqlite_errorname", "")
            if code == "SQLITE_FULL" or "full" in str(err):
                raise StoreError(
                    f"cannot write to {self.path}: the disk is full; the {self._stored()} "
                    "trials stored are intact: free some space and run the same command "
                    "with --resume to continue"
                ) from None
            if code.startswith("SQLITE_READONLY") or "readonly" in str(err):
                raise StoreError(
                    f"cannot write to {self.path}: it is read-only ({err}); the "
                    f"{self._stored()} trials stored are intact: copy the whole folder to a "
                    "writable place and run the same command with --resume there"
                ) from None
            if code.startswith("SQLITE_IOERR") or "disk I/O error" in str(err):
                raise StoreError(
                    f"cannot write to {self.path}: {err} (a full or failing disk?); the "
                    "trials committed before stay stored: fix the disk and run the same "
                    "command with --resume"
                ) from None
            raise

    def _stored(self) -> str:
        try:
            return str(self.count())
        except sqlite3.Error:
            return "committed"

    def checkpoint_wal(self) -> None:
        """Move every committed row from search.db-wal into search.db itself, so that the
        file alone holds the whole search (someone may copy just it). Best effort: a
        reader in the middle of a read, or a full disk, leaves the WAL as it is, and
        nothing is lost either way."""
        if self.read_only:
            return
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA busy_timeout = 2000")  # a busy reader: give up soon
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

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
        config = _json(value, "its config")
        if not isinstance(config, dict):
            raise StoreError("the store is damaged: its config is not a JSON object")
        return config

    def set_config(self, config: dict[str, Any]) -> None:
        """Replace the recorded config (a resumed search with, say, more trials)."""
        with self._writing():
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
            with self._writing():
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
        with self._writing():
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
        with self._writing():
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

    # --- one-shot epochs (runtime/search/oneshot_run.py) ---------------------------

    def save_epoch(self, epoch: int, record: dict[str, Any], state: bytes) -> None:
        """Store epoch `epoch`'s record and the search's checkpoint after it, in one
        transaction; the earlier epochs' checkpoints are dropped (the latest holds all).
        """
        try:
            with self._writing():
                self._db.execute(
                    "INSERT INTO epochs (epoch, record, state, saved_at) VALUES (?, ?, ?, ?)",
                    (
                        epoch,
                        json.dumps(record, sort_keys=True),
                        sqlite3.Binary(state),
                        time.time(),
                    ),
                )
                self._db.execute(
                    "UPDATE epochs SET state = NULL WHERE epoch < ? AND state IS NOT NULL",
                    (epoch,),
                )
        except sqlite3.IntegrityError as err:
            raise StoreError(f"epoch {epoch} cannot be stored: {err}") from None

    def epoch_records(self) -> list[dict[str, Any]]:
        """The records of the stored epochs, in order (empty for a multi-trial search)."""
        if "epochs" not in self._tables:  # an earlier nasforge's store, read-only
            return []
        rows = self._db.execute("SELECT epoch, record FROM epochs ORDER BY epoch")
        records = [_json(record, f"epoch {epoch}'s record") for epoch, record in rows]
        if not all(isinstance(record, dict) for record in records):
            raise StoreError("the store is damaged: an epoch's record is not a JSON object")
        return records

    def latest_epoch_state(self) -> tuple[int, bytes] | None:
        """(epoch, checkpoint) of the latest stored epoch; None before the first."""
        if "epochs" not in self._tables:
            return None
        row = self._db.execute(
            "SELECT epoch, state FROM epochs ORDER BY epoch DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        epoch, state = row
        if not isinstance(state, bytes):
            raise StoreError(f"the store is damaged: epoch {epoch}'s checkpoint is missing")
        return int(epoch), bytes(state)

    # --- the files the search wrote beside the store (runtime/search/outputs.py) ---

    def record_outputs(self, names: list[str]) -> None:
        """Record files of the search's folder as written by this search (before writing
        them), so that it may later replace or remove them, and never anything else."""
        now = time.time()
        with self._writing():
            self._db.executemany(
                "INSERT OR IGNORE INTO outputs (name, written_at) VALUES (?, ?)",
                [(name, now) for name in names],
            )

    def outputs(self) -> set[str]:
        """The names `record_outputs` recorded (relative to the search's folder)."""
        if "outputs" not in self._tables:  # an earlier nasforge's store, read-only
            return set()
        return {name for (name,) in self._db.execute("SELECT name FROM outputs")}

    def verify(self) -> None:
        """Read every row the way the search will, so a damaged one is refused now (a
        StoreError naming it) and not halfway through a resumed search."""
        self.trials()
        for step, stats in self._db.execute("SELECT step, stats FROM checkpoints"):
            if stats is not None:
                _json(stats, f"step {step}'s stats")
        latest = self.latest_checkpoint()
        if latest is not None:
            load_state(latest.state, f"the controller checkpoint of step {latest.step}")
        self.rounds()
        self.epoch_records()
        self.latest_epoch_state()

    # --- distributed rounds and parameter-server shards (runtime/search/ray_search.py) ---------

    def add_round(self, record: RoundRecord) -> None:
        """Store a round as it is sampled, before any of its children runs."""
        try:
            with self._writing():
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
        with self._writing():
            self._db.execute(
                "UPDATE rounds SET staleness = ?, stats = ?, told_at = ? "
                "WHERE round = ? AND told_at IS NULL",
                (staleness, json.dumps(stats, sort_keys=True), time.time(), round_id),
            )

    def rounds(self) -> list[RoundRecord]:
        if "rounds" not in self._tables:  # an earlier nasforge's store, read-only
            return []
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
        with self._writing():
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
        if "shards" not in self._tables:  # an earlier nasforge's store, read-only
            return []
        rows = self._db.execute("SELECT state FROM shards ORDER BY shard").fetchall()
        return [bytes(state) for (state,) in rows]


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=30.0)
    _set_pragmas(connection)
    return connection


def _set_pragmas(connection: sqlite3.Connection) -> None:
    # WAL: readers (nasforge report, a test polling progress) never block the writer.
    connection.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed trial survives even an OS crash; trials are rare, fsyncs are cheap.
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to the store.

    mode=ro reads beside a live writer and sees the WAL, but needs search.db-shm to exist
    or be creatable. On read-only media without one it cannot open; `immutable` then
    reads search.db alone, which is the whole store unless a -wal file holds more (a
    search killed before its WAL was checkpointed, copied without its -shm file)."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}"
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30.0)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError as err:
        connection.close()
        reason = str(err)
    except sqlite3.DatabaseError as err:  # not SQLite at all: the words of _check
        connection.close()
        raise StoreError(f"{path} is not a nasforge trial store ({err})") from None
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise StoreError(
            f"cannot read {path} where it is ({reason}): its {wal.name} holds trials that "
            "a read-only folder without the -shm file hides; copy the whole folder to a "
            "writable place and read it there"
        )
    try:
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open the trial store {path}: {err}") from None


def _not_writable(path: Path) -> str | None:
    """Why the store at `path` cannot be written (its folder or file), or None.

    Tried, not asked (os.access): root passes every permission check, and a read-only
    mount or an immutable file refuses even root."""
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
        with path.open("r+b"):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return None


def _json(text: Any, what: str) -> Any:
    """A JSON column's value; StoreError naming the row for a damaged one."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError) as err:
        raise StoreError(f"the store is damaged: {what} is not valid JSON ({err})") from None


def _trial(row: tuple[Any, ...]) -> TrialRecord:
    values = dict(zip(_TRIAL_COLUMNS, row, strict=True))
    del values["arch_hash"]
    where = f"trial {values['id']}'s"
    decisions = _json(values["decisions"], f"{where} decisions")
    metrics = _json(values["metrics"], f"{where} metrics")
    if not isinstance(decisions, list) or not all(isinstance(d, int) for d in decisions):
        raise StoreError(f"the store is damaged: {where} decisions are not a list of integers")
    if not isinstance(metrics, dict):
        raise StoreError(f"the store is damaged: {where} metrics are not a JSON object")
    values["decisions"] = tuple(decisions)
    values["metrics"] = metrics
    if not isinstance(values["arch"], str) or values["status"] not in STATUSES:
        raise StoreError(f"the store is damaged: {where} text or status is not readable")
    if not isinstance(values["reward"], (int, float)):
        raise StoreError(f"the store is damaged: {where} reward is not a number")
    return TrialRecord(**values)


def _checkpoint(row: tuple[Any, ...]) -> Checkpoint:
    step, size, first_trial, state, created_at, stats, told_at = row
    if not isinstance(state, bytes):
        raise StoreError(f"the store is damaged: step {step}'s checkpoint is not a BLOB")
    return Checkpoint(
        step=step,
        size=size,
        first_trial=first_trial,
        state=bytes(state),
        created_at=created_at,
        stats=_json(stats, f"step {step}'s stats") if stats is not None else None,
        told_at=told_at,
    )


def _round(row: tuple[Any, ...]) -> RoundRecord:
    number, replica, first, proposals, versions, weights, generator, sampled_at = row[:8]
    staleness, stats, told_at = row[8:]
    return RoundRecord(
        round=number,
        replica=replica,
        first_trial=first,
        proposals=tuple(_json(proposals, f"round {number}'s proposals")),
        versions=tuple(_json(versions, f"round {number}'s versions")),
        weights=None if weights is None else bytes(weights),
        generator=bytes(generator),
        sampled_at=sampled_at,
        staleness=staleness,
        stats=_json(stats, f"round {number}'s stats") if stats is not None else None,
        told_at=told_at,
    )
