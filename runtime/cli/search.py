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
DIR, DIR holding a different search).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from nasforge.controller.strategy import STRATEGIES

from ..choices import DATASET_NAMES, DEVICE_CHOICES
from ..search.config import BACKENDS, EVALUATORS, EXECUTORS, SearchConfig
from .dashboard import beside, dashboard_options, pop_dashboard_options
from .input import parse_pairs

EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


@click.command(short_help="Search a space for the best architecture (durable, resumable).")
@click.option("--space", required=True, help="A search space name (or a .toml file).")
@click.option("--dataset", type=click.Choice(DATASET_NAMES), help="The train evaluator's data set.")
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
    type=click.Path(dir_okay=False),
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
@dashboard_options
def search_command(
    out_dir: Path, resume: bool, top: int, no_onnx: bool, no_progress: bool, **given: Any
) -> None:
    """Search --space with --strategy, evaluating children with --evaluator."""
    from ..search.build import build_search
    from ..search.outputs import WEIGHTS_DIR, WeightsKeeper, write_outputs
    from ..search.report import build_report, render, write_report
    from .progress import SearchProgress

    dashboard = pop_dashboard_options(given)
    options = parse_pairs(given.pop("options"), "--option", "lr=0.01", allow_none=True)
    config = SearchConfig.create(**given, options=options)
    search = build_search(config, out_dir, resume=resume)
    config, store = search.config, search.store
    try:
        done = store.count()
        if resume:
            click.echo(f"resuming the search in {out_dir}: {done} trials are stored", err=True)
        keeper = WeightsKeeper(out_dir / WEIGHTS_DIR, store.trials())
        best = keeper.best.reward if keeper.best is not None else None
        unit = "round" if config.asynchronous else "step"
        bar = SearchProgress(config.trials, done, best, enabled=not no_progress, unit=unit)
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
        outputs = write_outputs(out_dir, store, search.data(), onnx=not no_onnx)
        report = build_report(store, top=top, outputs=outputs)
        write_report(out_dir, report)
    finally:
        search.close()
    click.echo(render(report))
    _say_what_was_written(out_dir, outputs, result.seconds)


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
