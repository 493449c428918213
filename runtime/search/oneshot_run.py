"""A one-shot search run: its supernet trains epoch by epoch, each epoch stored as it ends.

After every epoch the engine's record and its whole state (runtime/oneshot:
supernet, optimisers, architecture weights or controller, generators) are committed
to the store in one transaction (`TrialStore.save_epoch`). So a search killed at any
moment loses at most the epoch it was in: `--resume` loads the latest checkpoint and
runs the remaining epochs, and on the CPU, with the same seed, ends with the
architecture an uninterrupted run derives (the engine's determinism contract).
Ctrl-C between epochs stores the epoch that had just ended; in the middle of one, the
supernet is half-way through an epoch, so the previous epoch's checkpoint stands.

The checkpoint's bytes are the store's data-only format (state_codec.py): tensors and
plain values, no pickle, so a store from elsewhere cannot run code when resumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import SearchConfig
from .lock import SearchLock
from .loop import SearchError
from .store import TrialStore, dump_state, load_state

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class OneShotResult:
    epochs: int  # epochs stored at the end
    resumed_from: int | None  # the epochs a resumed search found stored
    seconds: float  # spent in this run's epochs


@dataclass
class OneShotRun:
    """A built one-shot search, ready to run; `close()` releases its store and lock."""

    config: SearchConfig
    space: Any  # the space, shaped for the data set
    data: Any  # the ImageData it trains on
    search: Any  # the engine's OneShotSearch (runtime/oneshot)
    store: TrialStore
    out_dir: Path
    lock: SearchLock | None = None

    def run(self, on_epoch: EpochCallback | None = None) -> OneShotResult:
        """Run (or continue) the search until config.epochs epochs are stored."""
        began = time.perf_counter()
        resumed_from = self._restore()
        epochs = int(self.config.epochs or 0)
        ended: dict[str, Any] | None = None  # an epoch that ended and is not stored yet
        try:
            while self.search.epoch < epochs:
                ended = self.search.run_epoch()
                self._store_epoch(ended)
                ended = None
                if on_epoch is not None:
                    on_epoch(self.history[-1])
        except KeyboardInterrupt:
            if ended is not None:  # the epoch had ended: its checkpoint is consistent
                self._store_epoch(ended)
            raise
        return OneShotResult(len(self.history), resumed_from, time.perf_counter() - began)

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.store.epoch_records()

    def stored_epochs(self) -> int:
        latest = self.store.latest_epoch_state()
        return 0 if latest is None else latest[0]

    def close(self) -> None:
        self.store.checkpoint_wal()
        self.store.close()
        if self.lock is not None:
            self.lock.release()

    def _restore(self) -> int | None:
        """Load the latest stored checkpoint into the engine; the epochs it holds (None for a
        search that stored none: it starts from its seed)."""
        latest = self.store.latest_epoch_state()
        if latest is None:
            return None
        epoch, blob = latest
        self.search.load_state_dict(load_state(blob, f"the one-shot checkpoint of epoch {epoch}"))
        if self.search.epoch != epoch:
            raise SearchError(
                f"the checkpoint of epoch {epoch} restores a search at epoch "
                f"{self.search.epoch}; the store is inconsistent"
            )
        return epoch

    def _store_epoch(self, record: dict[str, Any]) -> None:
        try:
            state = dump_state(self.search.state_dict())
        except TypeError as err:  # the engine's state holds a value the format cannot hold
            raise SearchError(
                f"the one-shot search's state cannot be checkpointed: {err}"
            ) from None
        self.store.save_epoch(self.search.epoch, _json_record(record), state)


def _json_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record with plain JSON numbers (an engine may leave numpy or tensor scalars)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if hasattr(value, "tolist"):  # a tensor or numpy value
            return plain(value.tolist())
        return value

    return plain(record)
