"""`nasforge search`: a durable architecture search, its best model and its report in --out.

DIR/search.db is the trial store (runtime/store.py): every trial is committed as it
finishes and the controller is checkpointed every step, so a search killed at any
moment continues with `--resume`, losing no trial and repeating none. At the end DIR
holds best.arch, best_model.py, best_weights.pt (train evaluator), best_model.onnx,
report.md, rewards.png and summary.json.

Exit status: 0 done; 130 interrupted (Ctrl-C; --resume continues); 2 bad input
(unknown space, strategy or dataset, a missing table, --resume without a search in
DIR, DIR holding a different search).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
from nasforge.controller.strategy import STRATEGIES

from ..data import DATASETS
from ..devices import DEVICE_CHOICES
from ..search.evaluators import EVALUATORS
from . import Failure
from .input import parse_pairs

STORE_FILE = "search.db"
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C
# The config keys that make a search what it is: --resume refuses to continue a store
# recorded with other values. Others (trials, workers, timeout, device) may change.
IDENTITY = (
    "backend",
    "replicas",
    "ps_shards",
    "space",
    "strategy",
    "options",
    "evaluator",
    "dataset",
    "table",
    "epochs",
    "seed",
    "batch",
)
IDENTITY_DEFAULTS = {"backend": "local"}  # for stores older than the key


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@click.command(short_help="Search a space for the best architecture (durable, resumable).")
@click.option("--space", required=True, help="A search space name (or a .toml file).")
@click.option(
    "--dataset", type=click.Choice(list(DATASETS)), help="The train evaluator's data set."
)
@click.option("--trials", required=True, type=click.IntRange(min=1), help="Proposals in all.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Trials evaluated at once, each in its own process.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    help="Architectures per controller update (default: --workers).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the search: its store, best model and report.",
)
@click.option("--resume", is_flag=True, help="Continue the search stored in --out.")
@click.option(
    "--evaluator",
    default="train",
    show_default=True,
    type=click.Choice(list(EVALUATORS)),
    help="train: train each child; table: look it up in --table.",
)
@click.option(
    "--table",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The table evaluator's NAS-Bench-201-format CSV.",
)
@click.option(
    "--strategy",
    default="reinforce",
    show_default=True,
    type=click.Choice(list(STRATEGIES)),
    help="How architectures are proposed.",
)
@click.option(
    "--option",
    "strategy_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A strategy option (repeatable), e.g. lr=0.01, entropy_weight=0.001, population=10.",
)
@click.option(
    "--epochs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Training epochs per child (train evaluator).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seeds the strategy and every child's training.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    metavar="|".join(DEVICE_CHOICES),
    help="Where children train; auto picks cuda when available.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a trial may take before it is killed and recorded as failed.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads per trial (default: cores / workers).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the data (cifar10, ptb, ptb-char).",
)
@click.option(
    "--executor",
    "executor_name",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "pool", "inline"]),
    help="pool: a process per trial (isolation, --timeout); inline: in this process; "
    "auto: inline for the table evaluator, pool otherwise.",
)
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows of the report's top table.",
)
@click.option(
    "--backend",
    default="local",
    show_default=True,
    type=click.Choice(["local", "ray"]),
    help="local: this machine; ray: a Ray cluster (pip install 'nasforge[ray]').",
)
@click.option(
    "--address",
    help="Ray: join the running cluster at ADDR (e.g. 10.0.0.1:6379 or auto); "
    "default: start a local one.",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    help="Ray: controller replicas K, each sampling --children architectures a round. [1]",
)
@click.option(
    "--children",
    type=click.IntRange(min=1),
    help="Ray: architectures per replica round m, trained in parallel. [--batch or 1]",
)
@click.option(
    "--ps-shards",
    type=click.IntRange(min=1),
    help="Ray: parameter-server shards holding the controller's weights. [1]",
)
@click.option(
    "--cpus-per-child",
    type=click.FloatRange(min=0),
    help="Ray: CPUs each child's task asks for. [1]",
)
@click.option(
    "--gpus-per-child",
    type=click.FloatRange(min=0),
    help="Ray: GPUs each child's task asks for (fractions share a GPU). [0]",
)
@click.option(
    "--child-retries",
    type=click.IntRange(min=0),
    help="Ray: times a child whose worker died is run again before it counts as failed. [2]",
)
@click.option("--no-onnx", is_flag=True, help="Do not export best_model.onnx.")
@click.option("--no-progress", is_flag=True, help="A line per step instead of a progress bar.")
def search_command(
    space: str,
    dataset: str | None,
    trials: int,
    workers: int,
    batch: int | None,
    out_dir: Path,
    resume: bool,
    evaluator: str,
    table: Path | None,
    strategy: str,
    strategy_options: tuple[str, ...],
    epochs: int,
    seed: int,
    device: str,
    timeout: float | None,
    threads: int | None,
    data_dir: Path | None,
    executor_name: str,
    top: int,
    backend: str,
    address: str | None,
    replicas: int | None,
    children: int | None,
    ps_shards: int | None,
    cpus_per_child: float | None,
    gpus_per_child: float | None,
    child_retries: int | None,
    no_onnx: bool,
    no_progress: bool,
) -> None:
    """Search --space with --strategy, evaluating children with --evaluator."""
    from nasforge.controller.space import load_space

    from ..search.evaluators import TrainEvaluator, make_evaluator
    from ..search.loop import run_search
    from ..search.outputs import WEIGHTS_DIR, WeightsKeeper, write_outputs
    from ..search.report import build_report, render, write_report

    if evaluator == "train" and dataset is None:
        raise Failure("--evaluator train needs --dataset (e.g. --dataset digits)")
    if evaluator == "table" and table is None:
        raise Failure("--evaluator table needs --table PATH (a NAS-Bench-201-format CSV)")
    if table is not None and not table.is_file():
        raise Failure(f"--table {table}: no such file")
    options = parse_pairs(strategy_options, "--option", "lr=0.01", allow_none=True)
    ray_options = {
        "address": address,
        "replicas": replicas,
        "children": children,
        "ps_shards": ps_shards,
        "cpus_per_child": cpus_per_child,
        "gpus_per_child": gpus_per_child,
        "child_retries": child_retries,
    }
    if backend == "ray":
        cluster = _ray_settings(ray_options, strategy, batch, options)
        batch = cluster["children"]
    else:
        given = [f"--{k.replace('_', '-')}" for k, v in ray_options.items() if v is not None]
        if given:
            raise Failure(f"{', '.join(given)} need --backend ray")
        cluster = {key: None for key in ray_options}
    config: dict[str, Any] = {
        "space": space,
        "strategy": strategy,
        "options": options,
        "evaluator": evaluator,
        "dataset": dataset if evaluator == "train" else None,
        "table": str(table.resolve()) if evaluator == "table" and table else None,
        "epochs": epochs if evaluator == "train" else None,
        "seed": seed,
        "batch": batch,
        "trials": trials,
        "workers": workers,
        "device": device,
        "timeout": timeout,
        "backend": backend,
        **{key: value for key, value in cluster.items() if key != "address"},
    }
    _check_out(out_dir / STORE_FILE, resume)
    search_space = load_space(space)
    # Everything that can fail on bad input is built before the store exists, so a failed
    # start leaves no store behind that the next run would call "a search".
    if backend == "ray":
        threads = threads or max(1, int(cluster["cpus_per_child"]))
    threads = threads or max(1, _cores() // workers)
    scorer = make_evaluator(
        evaluator,
        dataset=dataset,
        epochs=epochs,
        device=device,
        threads=threads,
        data_dir=data_dir,
        table=table,
        weights_dir=out_dir / WEIGHTS_DIR,
    )
    import torch

    # The controller is tiny (an LSTM of 35 units): more threads only spin against the
    # trials for the cores (10x slower updates on 2 busy cores). An inline train
    # evaluator sets its own count for each trial.
    torch.set_num_threads(1)
    proposer = _make_strategy(strategy, search_space, seed, options)
    # REINFORCE on Ray trains asynchronously (parameter servers, replicas); every other
    # strategy keeps the local loop and only its children become Ray tasks.
    asynchronous = backend == "ray" and strategy == "reinforce"
    if asynchronous:
        tensors = len(list(proposer.policy.parameters()))
        if cluster["ps_shards"] > tensors:
            raise Failure(
                f"--ps-shards {cluster['ps_shards']}: a shard holds whole parameter tensors "
                f"and the controller of space {space} has {tensors}; use at most {tensors}"
            )
    # A resumed search is checked against its store before a Ray cluster is started for it.
    store = _open_store(out_dir / STORE_FILE, config, resume) if resume else None
    try:
        connected_here = backend == "ray" and _connect_ray(address)
    except Failure:
        if store is not None:
            store.close()
        raise
    if asynchronous:
        executor: Any = contextlib.nullcontext()  # replicas and children are Ray's
    else:
        executor = _make_executor(executor_name, evaluator, scorer, workers, timeout, cluster)
    if store is None:
        store = _open_store(out_dir / STORE_FILE, config, resume)
    try:
        done = store.count()
        if resume:
            click.echo(f"resuming the search in {out_dir}: {done} trials are stored", err=True)
        keeper = WeightsKeeper(out_dir / WEIGHTS_DIR, store.trials())
        try:
            unit = "round" if asynchronous else "step"
            bar = _Progress(trials, done, keeper, enabled=not no_progress, unit=unit)
            with bar as progress, executor:
                if asynchronous:
                    result = _run_on_ray(
                        search_space,
                        options,
                        scorer,
                        store,
                        trials,
                        seed,
                        cluster,
                        timeout,
                        progress,
                    )
                else:
                    result = run_search(
                        proposer,
                        executor,
                        store,
                        trials=trials,
                        batch=config["batch"],
                        seed=seed,
                        on_trial=progress.trial,
                        on_step=progress.step,
                    )
        except KeyboardInterrupt:
            click.echo(
                f"nasforge: interrupted; {store.count()} trials are stored in {store.path}: "
                "run the same command with --resume to continue",
                err=True,
            )
            raise SystemExit(EXIT_INTERRUPTED) from None
        if result.resumed_from is not None:
            click.echo(
                f"resumed at {unit} {result.resumed_from}: {done} trials were stored "
                f"({result.reused} of {'that step' if unit == 'step' else 'the reopened rounds'}"
                " reused, not re-run)",
                err=True,
            )
        data = scorer.data() if isinstance(scorer, TrainEvaluator) else None
        outputs = write_outputs(out_dir, store, data, onnx=not no_onnx)
        report = build_report(store, top=top, outputs=outputs)
        write_report(out_dir, report)
    finally:
        store.close()
        if connected_here:
            import ray

            ray.shutdown()  # a local cluster ends here; a joined one only loses this driver
    click.echo(render(report))
    if outputs.get("best_model.onnx", "").startswith("FAILED"):
        click.echo(
            "nasforge: warning: the best model could not be exported to ONNX "
            f"({outputs['best_model.onnx']}); recorded in {out_dir / 'summary.json'}",
            err=True,
        )
    written = [name for name in outputs if (out_dir / name).is_file()]
    click.echo(
        f"wrote {out_dir}/: {', '.join([*written, 'report.md', 'rewards.png'])} "
        f"(search {result.seconds:.1f} s)",
        err=True,
    )


def _open_store(path: Path, config: dict[str, Any], resume: bool) -> Any:
    """The store to write: a new one, or with --resume the one in DIR (same search only).

    Fills in config["batch"] when --batch was not given: --workers for a new search,
    the stored batch for a resumed one (so resuming with more workers just works)."""
    from ..search.store import StoreError, TrialStore

    _check_out(path, resume)
    if not resume:
        config["batch"] = config["batch"] or config["workers"]
        try:
            return TrialStore.create(path, config)
        except StoreError as err:
            raise Failure(str(err)) from None
    store = TrialStore.open(path)
    stored = store.config

    def recorded(key: str) -> Any:
        # A store written before a key existed ran with that key's default.
        return stored.get(key, IDENTITY_DEFAULTS.get(key))

    config["batch"] = config["batch"] or stored.get("batch")  # not given: the stored one
    differences = [
        f"--{key} {_show(config.get(key))} (the stored search has {_show(recorded(key))})"
        for key in IDENTITY
        if recorded(key) != config.get(key)
    ]
    if differences:
        store.close()
        raise Failure(
            f"--resume: {path.parent} holds a different search: " + "; ".join(differences)
        )
    store.set_config({**stored, **config})
    return store


def _check_out(path: Path, resume: bool) -> None:
    """A new search needs a folder without a store; --resume needs one with a store."""
    if not resume and path.exists():
        raise Failure(
            f"{path.parent} already holds a search ({path.name}); add --resume to continue "
            "it, or choose another --out"
        )
    if resume and not path.is_file():
        raise Failure(f"--resume: there is no search to resume in {path.parent} (no {path.name})")


def _show(value: object) -> str:
    return "(none)" if value is None else str(value)


def _make_strategy(name: str, space: Any, seed: int, options: dict[str, Any]) -> Any:
    from nasforge.controller.strategy import make_strategy

    try:
        return make_strategy(name, space, seed=seed, **options)
    except ImportError as err:
        raise Failure(f"--strategy {name} is not available in this install ({err})") from None
    except TypeError as err:  # an option the strategy does not take
        raise Failure(f"--strategy {name}: bad --option: {err}") from None
    except ValueError as err:
        raise Failure(f"--strategy {name}: {err}") from None


def _make_executor(
    name: str,
    evaluator: str,
    scorer: Any,
    workers: int,
    timeout: float | None,
    cluster: dict[str, Any],
) -> Any:
    from ..search.executors import InProcessExecutor, LocalPoolExecutor

    if cluster["children"] is not None:  # the Ray backend: children are Ray tasks
        from ..search.ray_children import RayExecutor

        return RayExecutor(scorer, _resources(cluster, timeout), workers=cluster["children"])
    if name == "inline" or (name == "auto" and evaluator == "table"):
        if timeout is not None:
            raise Failure("--timeout needs the pool executor (each trial in its own process)")
        return InProcessExecutor(scorer)
    return LocalPoolExecutor(scorer, workers, timeout=timeout)


def _ray_settings(
    given: dict[str, Any], strategy: str, batch: int | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The Ray backend's settings with their defaults; Failure for what cannot work."""
    settings = {
        "address": given["address"],
        "replicas": given["replicas"] or 1,
        "children": given["children"] or batch or 1,
        "ps_shards": given["ps_shards"] or 1,
        "cpus_per_child": 1.0 if given["cpus_per_child"] is None else given["cpus_per_child"],
        "gpus_per_child": given["gpus_per_child"] or 0.0,
        "child_retries": 2 if given["child_retries"] is None else given["child_retries"],
    }
    if batch is not None and given["children"] is not None and batch != given["children"]:
        raise Failure(f"--batch {batch} and --children {given['children']} disagree; give one")
    if strategy != "reinforce" and (settings["replicas"] > 1 or settings["ps_shards"] > 1):
        raise Failure(
            "--replicas and --ps-shards drive the asynchronous REINFORCE controller: they need "
            f"--strategy reinforce (--strategy {strategy} runs its children as Ray tasks)"
        )
    from nasforge.controller.param_server import LOCAL_ONLY_OPTIONS

    local_only = [key for key in LOCAL_ONLY_OPTIONS if key in options]
    if strategy == "reinforce" and local_only:
        raise Failure(
            f"--option {', '.join(local_only)}: the Ray backend's replicas keep no state "
            "between updates, and this option needs some; use --backend local"
        )
    return settings


def _resources(cluster: dict[str, Any], timeout: float | None) -> Any:
    from ..search.ray_children import ChildResources

    return ChildResources(
        cpus=cluster["cpus_per_child"],
        gpus=cluster["gpus_per_child"],
        retries=cluster["child_retries"],
        timeout=timeout,
    )


def _connect_ray(address: str | None) -> bool:
    """Join the cluster at `address`, or start a local one on this machine; False when this
    process was connected already (a program that runs the command itself), which it then
    keeps connected."""
    try:
        import ray
    except ImportError:
        raise Failure(
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
        raise Failure(f"--backend ray: cannot start or join {where}: {err}") from None
    return True


def _check_reachable(address: str) -> None:
    """Fail at once on an address nothing listens at (ray.init would retry for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise Failure(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.1:6379) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise Failure(
            f"--address {address}: no Ray cluster answers there ({err.strerror or err}); "
            "start one with `ray start --head` or leave --address out for a local one"
        ) from None


def _run_on_ray(
    space: Any,
    options: dict[str, Any],
    scorer: Any,
    store: Any,
    trials: int,
    seed: int,
    cluster: dict[str, Any],
    timeout: float | None,
    progress: _Progress,
) -> Any:
    from ..search.loop import SearchError
    from ..search.ray_search import RaySettings, run_ray_search

    settings = RaySettings(
        replicas=cluster["replicas"],
        children=cluster["children"],
        shards=cluster["ps_shards"],
        resources=_resources(cluster, timeout),
    )
    try:
        return run_ray_search(
            space,
            options,
            scorer,
            store,
            trials=trials,
            seed=seed,
            settings=settings,
            on_trial=progress.trial,
            on_round=progress.step,
        )
    except (SearchError, ValueError) as err:
        raise Failure(str(err)) from None


class _Progress:
    """A live progress bar (trials done, best reward, ETA) on a terminal, else a line per step."""

    def __init__(
        self, total: int, done: int, keeper: Any, *, enabled: bool, unit: str = "step"
    ) -> None:
        self.unit = unit  # "round" for the Ray backend's replica rounds
        self.total = total
        self.done = done
        self.keeper = keeper
        self.best = keeper.best.reward if keeper.best is not None else None
        self.live = enabled and sys.stderr.isatty()
        self.rewards: list[float] = []
        self.began = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("search"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("best {task.fields[best]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                "search", total=self.total, completed=self.done, best=self._best_text()
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def _best_text(self) -> str:
        return "-" if self.best is None else f"{self.best:.4f}"

    def trial(self, record: Any) -> None:
        self.keeper(record)
        self.done += 1
        self.rewards.append(record.reward)
        if record.status == "ok" and (self.best is None or record.reward > self.best):
            self.best = record.reward
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, best=self._best_text())

    def step(self, step: int, stats: dict[str, float]) -> None:
        if self.live:
            return
        recent = self.rewards[-20:]
        mean = sum(recent) / len(recent) if recent else float("nan")
        elapsed = time.perf_counter() - self.began
        click.echo(
            f"{self.unit} {step}: {self.done}/{self.total} trials, best {self._best_text()}, "
            f"mean of the last {len(recent)} {mean:.4f}, {elapsed:.0f} s",
            err=True,
        )
