"""`nasforge search`: a durable architecture search, its best model and its report in --out.

The options become one SearchConfig (runtime/search/config.py), validated once and
recorded in the store; runtime/search/build.py turns it into the strategy, evaluator,
executor and store. DIR/search.db is the trial store (runtime/search/store.py): every
trial is committed as it finishes and the controller is checkpointed every step, so a
search killed at any moment continues with `--resume`, losing no trial and repeating
none. At the end DIR holds best.arch, best_model.py, best_weights.pt (train evaluator),
best_model.onnx, report.md, rewards.png and summary.json.

Exit status: 0 done; 130 interrupted (Ctrl-C; --resume continues); 2 bad input
(unknown space, strategy or dataset, a missing table, --resume without a search in
DIR, DIR holding a different search, a new search into a folder holding other files),
a store that cannot be used (damaged, refused checkpoint, read-only, another search
running in DIR) or a full disk (the stored trials are intact; --resume continues).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from nasforge.controller.space import space_names
from nasforge.controller.strategy import STRATEGIES

from ..choices import (
    DATASET_NAMES,
    DEFAULT_RETRAIN_EPOCHS,
    DEFAULT_VAL_FRACTION,
    DEVICE_CHOICES,
    ONESHOT_BATCH,
    ONESHOT_DESCRIPTIONS,
    ONESHOT_STRATEGIES,
    absolute_dataset,
)
from ..search.config import BACKENDS, EVALUATORS, EXECUTORS, SearchConfig
from . import Failure
from .dashboard import beside, dashboard_options, pop_dashboard_options
from .data_options import pop_data_options, user_data_options
from .input import FiniteFloat, parse_pairs

EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


@click.command(short_help="Search a space for the best architecture (durable, resumable).")
@click.option(
    "--space",
    required=True,
    help=f"A built-in search space ({', '.join(space_names())}) or the path of a space file "
    "(.toml; its format: 'Search spaces' in grammar/README.md).",
)
@click.option(
    "--dataset",
    metavar="NAME|PATH",
    callback=lambda ctx, param, value: absolute_dataset(value),
    help=f"The train evaluator's data set: {', '.join(DATASET_NAMES)}, or a path to your own "
    "(`nasforge datasets`; without its own validation split, a fixed seeded "
    f"{DEFAULT_VAL_FRACTION:g} of it is held out).",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    help="Proposals in all (every strategy but the one-shot ones, which need none).",
)
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
    help="Architectures per controller update (default: --workers); a one-shot strategy: "
    f"its minibatch (default: {', '.join(f'{k} {v}' for k, v in ONESHOT_BATCH.items())}).",
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
    type=click.Path(dir_okay=False),
    help="The table evaluator's NAS-Bench-201-format CSV.",
)
@click.option(
    "--strategy",
    default="reinforce",
    show_default=True,
    type=click.Choice([*STRATEGIES, *ONESHOT_STRATEGIES]),
    help="How architectures are proposed. The one-shot strategies train one supernet whose "
    "shared weights stand in for every child (docs/oneshot.md):\n\n"
    + "\n\n".join(f"{name}: {ONESHOT_DESCRIPTIONS[name]}." for name in ONESHOT_STRATEGIES),
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A strategy option (repeatable), e.g. lr=0.01, entropy_weight=0.001, population=10.",
)
@click.option(
    "--epochs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Training epochs per child (train evaluator); a one-shot strategy: the supernet's "
    "search epochs.",
)
@click.option(
    "--retrain-epochs",
    type=click.IntRange(min=0),
    help="One-shot: epochs the derived architecture trains at the end, with the runtime's "
    f"recipe (default {DEFAULT_RETRAIN_EPOCHS}; 0 with --inherit: evaluate only).",
)
@click.option(
    "--inherit",
    is_flag=True,
    help="One-shot: the derived architecture starts from the supernet's weights, not from "
    "scratch.",
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
    type=FiniteFloat(min=0, min_open=True),
    help="Seconds a trial may take before it is killed and recorded as failed.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads per trial (default: cores / workers).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Folder of the data (cifar10, ptb, ptb-char).",
)
@click.option(
    "--executor",
    default="auto",
    show_default=True,
    type=click.Choice(EXECUTORS),
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
    type=click.Choice(BACKENDS),
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
    type=FiniteFloat(min=0),
    help="Ray: CPUs each child's task asks for. [1]",
)
@click.option(
    "--gpus-per-child",
    type=FiniteFloat(min=0),
    help="Ray: GPUs each child's task asks for (fractions share a GPU). [0]",
)
@click.option(
    "--child-retries",
    type=click.IntRange(min=0),
    help="Ray: times a child whose worker died is run again before it counts as failed. [2]",
)
@click.option("--no-onnx", is_flag=True, help="Do not export best_model.onnx.")
@click.option("--no-progress", is_flag=True, help="A line per step instead of a progress bar.")
@dashboard_options
@user_data_options
def search_command(
    out_dir: Path, resume: bool, top: int, no_onnx: bool, no_progress: bool, **given: Any
) -> None:
    """Search --space with --strategy, evaluating children with --evaluator."""
    from ..search.build import build_search
    from ..search.outputs import WEIGHTS_DIR, WeightsKeeper, write_outputs
    from ..search.report import PLOT_FILE, REPORT_FILE, build_report, render, write_report
    from .progress import SearchProgress, live_bar

    dashboard = pop_dashboard_options(given)
    options = parse_pairs(given.pop("options"), "--option", "lr=0.01", allow_none=True)
    data_options = pop_data_options(given)
    config = SearchConfig.create(**given, options=options, data_options=data_options)
    if config.oneshot:
        if dashboard.get("dashboard"):
            raise Failure(
                "--dashboard shows a multi-trial search's trials, and a one-shot search has "
                "none: drop --dashboard (`nasforge report DIR` draws its epochs)"
            )
        from .search_oneshot import run_oneshot

        run_oneshot(config, out_dir, resume=resume, onnx=not no_onnx)
        return
    if not live_bar(not no_progress):
        click.echo(f"nasforge search: preparing {_preparing(config)}", err=True)
    search = build_search(config, out_dir, resume=resume)
    config, store = search.config, search.store
    try:
        done = store.count()
        if resume:
            click.echo(f"resuming the search in {out_dir}: {done} trials are stored", err=True)
        keeper = WeightsKeeper(out_dir / WEIGHTS_DIR, store.trials())
        unit = "round" if config.asynchronous else "step"
        bar = SearchProgress(config.trials, done, keeper.best, enabled=not no_progress, unit=unit)
        bar.say(_ready(search))
        try:
            with beside(out_dir, dashboard), bar as progress:
                result = search.run(hooks=[keeper], on_trial=progress.trial, on_step=progress.step)
        except KeyboardInterrupt:
            click.echo(
                f"nasforge: interrupted; {store.count()} trials are stored in {store.path}: "
                "run the same command with --resume to continue",
                err=True,
            )
            raise SystemExit(EXIT_INTERRUPTED) from None
        if result.resumed_from is not None:
            reopened = "that step" if unit == "step" else "the reopened rounds"
            click.echo(
                f"resumed at {unit} {result.resumed_from}: {done} trials were stored "
                f"({result.reused} of {reopened} reused, not re-run)",
                err=True,
            )
        try:
            outputs = write_outputs(out_dir, store, search.data(), onnx=not no_onnx)
            report = build_report(store, top=top, outputs=outputs)
            store.record_outputs([REPORT_FILE, PLOT_FILE])
            write_report(out_dir, report)
        except OSError as err:  # a full disk, most likely: the trials are safe in the store
            raise Failure(
                f"cannot write the search's files in {out_dir} ({err.strerror or err}); its "
                f"{store.count()} trials are stored in {store.path}: free some space and run "
                "the same command with --resume to write them"
            ) from None
    finally:
        search.close()
    click.echo(render(report))
    _say_what_was_written(out_dir, outputs, result.seconds)


def _preparing(config: SearchConfig) -> str:
    """What the search is about to load, for the first line."""
    if config.evaluator == "table":
        evaluated = f"looked up in {config.table}"
    else:
        evaluated = f"trained {config.epochs} epoch(s) on {config.dataset} (loading it now)"
    return (
        f"space {config.space}, strategy {config.strategy}, {config.trials} trials, each "
        f"{evaluated}"
    )


def _ready(search: Any) -> str:
    """What happens next, once the data is loaded: the workers start, the first step runs."""
    config = search.config
    data = search.data()
    loaded = f"data set loaded: {data.description}; " if data is not None else ""
    if config.asynchronous:
        running = (
            f"{config.replicas} controller replica(s) on Ray start, each training "
            f"{config.children} children a round"
        )
    elif config.backend == "ray":
        running = f"each step sends {config.batch} architectures to Ray as tasks"
    elif config.inline:
        running = f"each step evaluates {config.batch} architectures in this process"
    else:
        threads = getattr(search.evaluator, "threads", None)
        running = (
            f"starting {config.workers} worker process(es) (each imports torch once); each "
            f"step evaluates {config.batch} architectures, {config.workers} at a time"
            + (f", {threads} torch thread(s) each" if threads else "")
        )
    return f"{loaded}{running}"


def _say_what_was_written(out_dir: Path, outputs: dict[str, str], seconds: float) -> None:
    if outputs.get("best_model.onnx", "").startswith("FAILED"):
        click.echo(
            "nasforge: warning: the best model could not be exported to ONNX "
            f"({outputs['best_model.onnx']}); recorded in {out_dir / 'summary.json'}",
            err=True,
        )
    written = [name for name in outputs if (out_dir / name).is_file()]
    click.echo(
        f"wrote {out_dir}/: {', '.join([*written, 'report.md', 'rewards.png'])} "
        f"(search {seconds:.1f} s)",
        err=True,
    )
