"""`nasforge search --strategy enas|darts|darts1|rsws`: a one-shot search from the CLI.

The options were validated into a SearchConfig (runtime/search/config.py); the
builder makes the engine's search (runtime/oneshot) and its store, the run trains the
supernet epoch by epoch with a checkpoint in the store after each
(runtime/search/oneshot_run.py), then the derived architecture is compiled, trained
and exported (oneshot_outputs.py) and the report drawn (oneshot_report.py).

Exit status as for every search: 0 done; 130 interrupted (Ctrl-C: the epochs that
ended are stored; --resume continues); 2 bad input or a store that cannot be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import Failure

EXIT_INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


def run_oneshot(config: Any, out_dir: Path, *, resume: bool, onnx: bool) -> None:
    """Run (or, with `resume`, continue) the one-shot search `config` in out_dir."""
    from ..errors import TrainingFailed
    from ..search.build import build_oneshot

    click.echo(
        f"nasforge search: preparing one-shot search {config.strategy} on space "
        f"{config.space}: loading {config.dataset}, generating the supernet",
        err=True,
    )
    run = build_oneshot(config, out_dir, resume=resume)
    try:
        epochs = int(run.config.epochs)
        stored = run.stored_epochs()
        if resume:
            click.echo(
                f"resuming the one-shot search in {out_dir}: {stored} of {epochs} epochs are "
                "stored",
                err=True,
            )
        click.echo(_ready(run), err=True)
        try:
            result = run.run(
                on_epoch=lambda record: click.echo(_epoch_line(record, epochs), err=True)
            )
            arch = run.search.derive()
            click.echo(f"derived: {' '.join(arch.split())}", err=True)
            report, outputs = _finish(run, arch, onnx)
        except KeyboardInterrupt:
            click.echo(
                f"nasforge: interrupted; {run.stored_epochs()} of {epochs} epochs are stored in "
                f"{run.store.path}, the last with its checkpoint: run the same command with "
                "--resume to continue",
                err=True,
            )
            raise SystemExit(EXIT_INTERRUPTED) from None
        except TrainingFailed as err:
            raise Failure(_failed(run, err, searched=run.stored_epochs() == epochs)) from None
    finally:
        run.close()
    from ..search.oneshot_report import render_oneshot

    click.echo(render_oneshot(report), nl=False)
    written = [
        name for name in [*outputs, "report.md", *report.plots()] if (out_dir / name).is_file()
    ]
    click.echo(f"wrote {out_dir}/: {', '.join(written)} (search {result.seconds:.1f} s)", err=True)


def _finish(run: Any, arch: str, onnx: bool) -> tuple[Any, dict[str, str]]:
    """Write the outputs and the report; (the report, the outputs' lines)."""
    from ..search.oneshot_outputs import read_summary, write_oneshot_outputs
    from ..search.oneshot_report import build_oneshot_report, write_oneshot_report
    from ..search.report import REPORT_FILE

    config, out_dir, store = run.config, run.out_dir, run.store
    retrain = int(config.retrain_epochs or 0)
    try:
        outputs = write_oneshot_outputs(
            run,
            arch,
            onnx=onnx,
            on_epoch=lambda row: click.echo(_retrain_line(row, retrain), err=True),
        )
        report = build_oneshot_report(store, read_summary(out_dir))
        store.record_outputs([REPORT_FILE, *report.plots()])
        write_oneshot_report(out_dir, report)
    except OSError as err:  # a full disk, most likely: the epochs are safe in the store
        raise Failure(
            f"cannot write the search's files in {out_dir} ({err.strerror or err}); its "
            f"{run.stored_epochs()} epochs are stored in {store.path}: free some space and "
            "run the same command with --resume to write them"
        ) from None
    if outputs.get("best_model.onnx", "").startswith("FAILED"):
        click.echo(
            "nasforge: warning: the derived model could not be exported to ONNX "
            f"({outputs['best_model.onnx']}); recorded in {out_dir / 'summary.json'}",
            err=True,
        )
    return report, outputs


def _failed(run: Any, err: Exception, *, searched: bool) -> str:
    """What failed (the supernet's training or the derived model's) and what is kept."""
    stored = f"{run.stored_epochs()} epochs are stored in {run.store.path}"
    if searched:
        return (
            f"the derived architecture failed in its final training: {err}; the search's "
            f"{stored}: run the same command with --resume (and other --retrain-epochs, or "
            "--inherit) to train it again"
        )
    return (
        f"the supernet failed to train: {err}; {stored}, readable with `nasforge report "
        f"{run.out_dir}`"
    )


def _ready(run: Any) -> str:
    search, config = run.search, run.config
    parameters = sum(p.numel() for p in search.supernet.parameters())
    return (
        f"data set loaded: {run.data.description}; supernet of {parameters:,} parameters on "
        f"{search.device}; {config.epochs} epoch(s) of batch {config.batch}"
    )


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record.get('epoch')}/{epochs}:"]
    if isinstance(record.get("train_loss"), float):
        parts.append(f"train loss {record['train_loss']:.4f} acc {record.get('train_acc', 0):.2%},")
    if isinstance(record.get("valid_acc"), float):
        parts.append(f"held-out acc {record['valid_acc']:.2%},")
    for key in ("entropy", "reward", "baseline"):
        if isinstance(record.get(key), float):
            parts.append(f"{key} {record[key]:.4f},")
    parts.append(f"{float(record.get('seconds') or 0):.1f} s")
    return " ".join(parts)


def _retrain_line(row: dict[str, float], epochs: int) -> str:
    return (
        f"final training, epoch {int(row['epoch'])}/{epochs}: train loss "
        f"{row['train_loss']:.4f} acc {row['train_acc']:.2%}, val acc {row['val_acc']:.2%}, "
        f"{row['seconds']:.1f} s"
    )
