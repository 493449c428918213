"""The builder: a SearchConfig becomes a strategy, an evaluator, an executor and a store.

Everything that can fail on bad input (the space, the data set, the strategy's options,
the Ray cluster) is built before a new store exists, so a failed start leaves no store
behind that the next run would call "a search"; a resumed search is checked against its
store before a Ray cluster is started for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasforge.grammar.errors import NasforgeError

from ..choices import ONESHOT_BATCH
from .config import ConfigError, SearchConfig
from .lock import LOCK_FILE, SearchLock, check_unlocked
from .loop import SearchError, SearchResult, StepCallback, TrialCallback
from .outputs import OUTPUT_FILES, WEIGHTS_DIR

STORE_FILE = "search.db"


@dataclass
class Search:
    """A built search, ready to run; `close()` releases its store (and the Ray it started)."""

    config: SearchConfig  # batch resolved
    space: Any
    strategy: Any
    evaluator: Any
    executor: Any  # an Executor; a null context when Ray's replicas run the children
    store: Any
    connected_ray: bool = False  # this process started or joined Ray, and leaves it at close
    lock: SearchLock | None = None  # one search writes the folder at a time

    def run(
        self,
        *,
        hooks: Sequence[TrialCallback] = (),
        on_trial: TrialCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> SearchResult:
        """Run (or continue) the search until the store holds config.trials trials.

        `hooks` act on each stored trial (such as keeping the best weights), `on_trial`
        reports it, `on_step` sees each step's (or Ray round's) tell statistics."""
        from . import loop

        with self.executor:
            if self.config.asynchronous:
                return self._run_on_ray(hooks, on_trial, on_step)
            return loop.run_search(
                self.strategy,
                self.executor,
                self.store,
                trials=self.config.trials,
                batch=self.config.batch,  # type: ignore[arg-type]
                seed=self.config.seed,
                hooks=hooks,
                on_trial=on_trial,
                on_step=on_step,
            )

    def data(self) -> Any:
        """The data set the children trained on (None for the table evaluator)."""
        from .evaluators import TrainEvaluator

        return self.evaluator.data() if isinstance(self.evaluator, TrainEvaluator) else None

    def close(self) -> None:
        """Release the store (its WAL checkpointed into search.db first, so that the file
        alone holds every trial), the folder's lock and the Ray this search started."""
        self.store.checkpoint_wal()
        self.store.close()
        if self.lock is not None:
            self.lock.release()
        if self.connected_ray:
            import ray

            ray.shutdown()  # a local cluster ends here; a joined one only loses this driver

    def _run_on_ray(
        self,
        hooks: Sequence[TrialCallback],
        on_trial: TrialCallback | None,
        on_round: StepCallback | None,
    ) -> SearchResult:
        from .ray_search import RaySettings, run_ray_search

        config = self.config
        settings = RaySettings(
            replicas=config.replicas,  # type: ignore[arg-type]
            children=config.children,  # type: ignore[arg-type]
            shards=config.ps_shards,  # type: ignore[arg-type]
            resources=child_resources(config),
        )
        try:
            return run_ray_search(
                self.space,
                config.options,
                self.evaluator,
                self.store,
                trials=config.trials,
                seed=config.seed,
                settings=settings,
                hooks=hooks,
                on_trial=on_trial,
                on_round=on_round,
            )
        except ValueError as err:
            raise SearchError(str(err)) from None


def build_search(config: SearchConfig, out_dir: Path, *, resume: bool) -> Search:
    """Build the search `config` describes, its store in out_dir (with `resume`, the store
    already there, which must hold the same search); ConfigError for what cannot run."""
    from nasforge.controller.space import load_space

    from .evaluators import make_evaluator

    path = out_dir / STORE_FILE
    check_folder(path, resume)
    space = load_space(config.space)
    evaluator = make_evaluator(
        config.evaluator,
        dataset=config.dataset,
        epochs=config.epochs or 1,
        device=config.device,
        threads=_threads(config),
        data_dir=config.data_dir,
        data_options=config.data_options,
        table=config.table,
        weights_dir=out_dir / WEIGHTS_DIR,
    )
    check_space_fits(config, space, evaluator)
    import torch

    # The controller is tiny (an LSTM of 35 units): more threads only spin against the
    # trials for the cores (10x slower updates on 2 busy cores). An inline train
    # evaluator sets its own count for each trial.
    torch.set_num_threads(1)
    strategy = _make_strategy(config, space)
    if config.asynchronous:
        _check_shards(config, strategy)
    store = None
    lock = SearchLock.acquire(out_dir)  # after what can fail on bad input: see the docstring
    try:
        if resume:
            store, config = open_store(path, config, resume=True)
        connected = config.backend == "ray" and connect_ray(config.address)
        executor = contextlib.nullcontext() if config.asynchronous else _executor(config, evaluator)
        if store is None:
            store, config = open_store(path, config, resume=False)
    except BaseException:
        if store is not None:
            store.close()
        lock.release()
        raise
    return Search(config, space, strategy, evaluator, executor, store, connected, lock)


def build_oneshot(config: SearchConfig, out_dir: Path, *, resume: bool) -> Any:
    """Build the one-shot search `config` describes (a OneShotRun, runtime/search/
    oneshot_run.py), its store in out_dir; ConfigError for what cannot run. As for
    build_search, everything that can fail on bad input is built before the store."""
    from ..devices import set_threads
    from .oneshot_run import OneShotRun

    path = out_dir / STORE_FILE
    check_folder(path, resume)
    set_threads(config.threads)  # one process trains: the usable cores unless --threads
    space = oneshot_space(config)
    data = _oneshot_data(config)
    space = _shaped(space, config, data)
    batch = config.batch or _stored_batch(path, resume) or ONESHOT_BATCH[config.strategy]
    config = replace(config, batch=batch)
    search = _make_oneshot(config, space, data)
    lock = SearchLock.acquire(out_dir)
    try:
        store, config = open_store(path, config, resume=resume)
    except BaseException:
        lock.release()
        raise
    return OneShotRun(config, space, data, search, store, out_dir, lock)


def _oneshot_data(config: SearchConfig) -> Any:
    """The image data set a one-shot search trains on (the train evaluator's split)."""
    from ..data import ImageData
    from .evaluators import make_evaluator

    evaluator = make_evaluator(
        "train",
        dataset=config.dataset,
        device=config.device,
        data_dir=config.data_dir,
        data_options=config.data_options,
    )
    data = evaluator.data()  # type: ignore[attr-defined]
    if not isinstance(data, ImageData):
        raise ConfigError(
            f"--strategy {config.strategy} searches image classifiers; --dataset "
            f"{config.dataset} is text"
        )
    return data


# The spaces a one-shot strategy can search: DARTS weighs the ops of a cell's edges.
ONESHOT_SPACES = "nb201, darts (cells) or enas_macro (enas, rsws)"


def oneshot_space(config: SearchConfig) -> Any:
    """The space of a one-shot search; ConfigError for a space the strategy cannot search."""
    from nasforge.controller.space import load_space

    space = load_space(config.space)
    name, strategy = config.space, config.strategy
    if space.family not in ("cnn", "cells"):
        raise ConfigError(
            f"--strategy {strategy} searches image classifiers; --space {name} is a "
            f"{space.family} space: choose {ONESHOT_SPACES}"
        )
    if strategy.startswith("darts") and space.family != "cells":
        raise ConfigError(
            f"--strategy {strategy} weighs the candidate ops on every edge of a cell: it "
            f"needs a cell space (nb201, darts); --space {name} is a {space.family} space: "
            "use --strategy enas or rsws for it"
        )
    return space


def _shaped(space: Any, config: SearchConfig, data: Any) -> Any:
    """The space with the data set's input shape and classes."""
    try:
        return space.with_data(data.input_shape, data.classes)
    except (ValueError, NasforgeError) as err:
        raise ConfigError(
            f"--space {config.space} cannot take --dataset {config.dataset}'s "
            f"{_shape(data.input_shape)} images: {err}"
        ) from None


def _stored_batch(path: Path, resume: bool) -> int | None:
    """A resumed search's stored batch (its minibatch, for a one-shot search)."""
    if not resume or not path.is_file():
        return None
    from .store import TrialStore

    with TrialStore.open_readonly(path) as store:
        batch = store.config.get("batch")
    return int(batch) if isinstance(batch, int) else None


def _make_oneshot(config: SearchConfig, space: Any, data: Any) -> Any:
    """The engine's search (runtime/oneshot); ConfigError for a bad --option or space."""
    from nasforge.controller.space import SpaceError

    from ..oneshot import OneShotSettings, make_oneshot

    settings = OneShotSettings(
        strategy=config.strategy,
        epochs=int(config.epochs or 1),
        batch=config.batch,
        seed=config.seed,
        device=config.device,
        options=dict(config.options),
    )
    try:
        return make_oneshot(space, data, settings)
    except SpaceError as err:
        raise ConfigError(f"--space {config.space}: {err}; choose {ONESHOT_SPACES}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"--strategy {config.strategy}: {err}") from None


def check_space_fits(config: SearchConfig, space: Any, evaluator: Any) -> None:
    """ConfigError unless the space's architectures can train on the train evaluator's data
    set (its input shape, class count and family), before any trial: the space's first
    architecture stands for all of them, and the data set is the one the evaluator loaded."""
    from .evaluators import TrainEvaluator

    if not isinstance(evaluator, TrainEvaluator):
        return
    from ..data import ImageData
    from ..errors import IncompatibleData
    from ..train import check_compatible

    depth = space.depth_at(0)
    ir = space.to_arch([0] * len(space.slots(depth)), depth)
    data = evaluator.data()
    try:
        check_compatible(ir, data)
    except IncompatibleData as err:
        head = f"--space {config.space} cannot train on --dataset {config.dataset}"
        if ir.family == "rnn" or not isinstance(data, ImageData):
            raise ConfigError(f"{head}: {err}") from None
        wanted = f"input {_shape(data.input_shape)} and {data.classes} classes"
        raise ConfigError(
            f"{head}: the space's architectures take input {_shape(ir.input_shape)} and "
            f"{ir.classes} classes, {data.name}'s images are {_shape(data.input_shape)} in "
            f"{data.classes} classes; choose a space with {wanted} (a space file with "
            f"input = [{', '.join(map(str, data.input_shape))}] and classes = {data.classes}: "
            "'Search spaces' in grammar/README.md), or a data set that fits the space"
        ) from None


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)


def check_folder(path: Path, resume: bool) -> None:
    """A new search needs a new or empty folder (so that it never overwrites or removes a
    file it did not write); --resume needs one with a store. Neither while another
    search holds the folder."""
    folder = path.parent
    if folder.is_dir():
        check_unlocked(folder)
    _check_contents(path, resume)


def _check_contents(path: Path, resume: bool) -> None:
    folder = path.parent
    if not resume and path.exists() and not _empty_file(path):
        raise ConfigError(
            f"{folder} already holds a search ({path.name}); add --resume to continue "
            "it, or choose another --out"
        )
    if not resume and folder.is_dir():
        foreign = sorted(
            entry.name + ("/" if entry.is_dir() else "")
            for entry in folder.iterdir()
            if entry.name != LOCK_FILE and entry != path
        )
        if foreign:
            more = f" and {len(foreign) - 8} more" if len(foreign) > 8 else ""
            shown = ", ".join(foreign[:8]) + more
            raise ConfigError(
                f"{folder} holds files this search did not write ({shown}); a new search "
                "starts in a new or empty folder, so that it never overwrites or removes "
                "them: choose another --out"
            )
    if resume and not path.is_file():
        raise ConfigError(
            f"--resume: there is no search to resume in {folder} (no {path.name})"
        )


def _empty_file(path: Path) -> bool:
    """An empty search.db is no search yet: SQLite creates the file empty when a reader
    (a progress poller, say) opens a store that does not exist yet."""
    return path.is_file() and path.stat().st_size == 0


def open_store(path: Path, config: SearchConfig, *, resume: bool) -> tuple[Any, SearchConfig]:
    """The store to write and the config with its batch resolved: a new store (batch:
    --workers when not given), or with `resume` the one at `path`, which must hold the same
    search (batch: the stored one when not given, so resuming with more workers just works)."""
    from .store import StoreError, TrialStore

    _check_contents(path, resume)  # again: the folder may have changed while it was unlocked
    if not resume:
        config = replace(config, batch=config.batch or config.workers)
        try:
            return TrialStore.create(path, config.stored()), config
        except StoreError as err:
            raise ConfigError(str(err)) from None
    store = TrialStore.open(path)
    try:
        stored = store.config
        config = replace(config, batch=config.batch or stored.get("batch"))
        differences = config.resume_differences(stored)
        if differences:
            raise ConfigError(
                f"--resume: {path.parent} holds a different search: " + "; ".join(differences)
            )
        _check_readable(store)
        if store.outputs_unrecorded:
            _adopt_outputs(store)
        store.set_config({**stored, **config.stored()})
    except BaseException:
        store.close()
        raise
    return store, config


def _check_readable(store: Any) -> None:
    """Every row a resumed search reads, read now: a damaged row or a refused checkpoint
    stops the resume before it writes anything."""
    from .store import StoreError

    try:
        store.verify()
    except StoreError as err:
        folder = store.path.parent
        raise StoreError(
            f"--resume: {err}. This search cannot be continued; the trials it holds stay "
            f"readable with `nasforge report {folder}`, and a new search can start in "
            "another --out"
        ) from None


def _adopt_outputs(store: Any) -> None:
    """A store from before nasforge recorded its outputs: the search's own files in its
    folder, by their names, are taken as written by it (as that nasforge did)."""
    from .report import PLOT_FILE, REPORT_FILE

    folder = store.path.parent
    names = [*OUTPUT_FILES, REPORT_FILE, PLOT_FILE]
    store.record_outputs([name for name in names if (folder / name).is_file()])


def child_resources(config: SearchConfig) -> Any:
    """What each Ray child task asks for."""
    from .ray_children import ChildResources

    return ChildResources(
        cpus=config.cpus_per_child,  # type: ignore[arg-type]
        gpus=config.gpus_per_child,  # type: ignore[arg-type]
        retries=config.child_retries,  # type: ignore[arg-type]
        timeout=config.timeout,
    )


def connect_ray(address: str | None) -> bool:
    """Join the cluster at `address`, or start a local one on this machine; False when this
    process was connected already (a program that runs the search itself), which it then
    keeps connected."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray: pip install 'nasforge[ray]' (or pip install ray)"
        ) from None
    import logging

    if ray.is_initialized():
        return False
    if address and address != "auto":
        _check_reachable(address)
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise ConfigError(f"--backend ray: cannot start or join {where}: {err}") from None
    return True


def _check_reachable(address: str) -> None:
    """Fail at once on an address nothing listens at (ray.init would retry for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.1:6379) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({err.strerror or err}); "
            "start one with `ray start --head` or leave --address out for a local one"
        ) from None


def _threads(config: SearchConfig) -> int:
    """CPU threads per trial: as given, else a Ray child's CPUs, else the usable cores
    shared out among the trials that run at once (one, inline)."""
    from ..devices import default_threads

    if config.threads:
        return config.threads
    if config.backend == "ray":
        return max(1, int(config.cpus_per_child or 1))
    return default_threads(1 if config.inline else config.workers)


def _make_strategy(config: SearchConfig, space: Any) -> Any:
    from nasforge.controller.strategy import UnknownOption, make_strategy

    name = config.strategy
    try:
        return make_strategy(name, space, seed=config.seed, **config.options)
    except ImportError as err:
        raise ConfigError(f"--strategy {name} is not available in this install ({err})") from None
    except UnknownOption as err:
        raise ConfigError(
            f"unknown option {err.option!r} for --strategy {name}; "
            f"choose one of {', '.join(err.choices)}"
        ) from None
    except TypeError as err:  # an option of the wrong kind
        raise ConfigError(f"--strategy {name}: bad --option: {err}") from None
    except ValueError as err:
        raise ConfigError(f"--strategy {name}: {err}") from None


def _check_shards(config: SearchConfig, strategy: Any) -> None:
    """A parameter-server shard holds whole tensors: no more shards than the policy has."""
    tensors = len(list(strategy.policy.parameters()))
    if config.ps_shards is not None and config.ps_shards > tensors:
        raise ConfigError(
            f"--ps-shards {config.ps_shards}: a shard holds whole parameter tensors "
            f"and the controller of space {config.space} has {tensors}; use at most {tensors}"
        )


def _executor(config: SearchConfig, evaluator: Any) -> Any:
    from .executors import InProcessExecutor, LocalPoolExecutor

    if config.backend == "ray":  # the local loop, its children Ray tasks
        from .ray_children import RayExecutor

        return RayExecutor(evaluator, child_resources(config), workers=config.children or 1)
    if config.inline:
        return InProcessExecutor(evaluator)
    return LocalPoolExecutor(evaluator, config.workers, timeout=config.timeout)
