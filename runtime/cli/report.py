"""`nasforge report DIR`: print a search's report and redraw its files, from the store alone.

Works on a finished search, a running one (the store is read while it is written),
a killed one and one on read-only media: the store is opened read-only and never
written. Rewrites DIR/report.md and DIR/rewards.png where it can (a one-shot search's report: its
epochs and plots, runtime/search/oneshot_report.py). Exit 2 when DIR holds
no search or a damaged store (the message says how to salvage what is readable).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..choices import ONESHOT_STRATEGIES
from . import Failure


@click.command(short_help="Print a search's report (top-k, improvement) and redraw its plot.")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows of the top table.",
)
def report_command(out_dir: Path, top: int) -> None:
    """Report on the search stored in DIR (written by `nasforge search --out DIR`)."""
    from ..search.build import STORE_FILE
    from ..search.outputs import read_outputs
    from ..search.report import build_report, render, write_report
    from ..search.store import StoreError, TrialStore

    path = out_dir / STORE_FILE
    if not path.is_file():
        raise Failure(
            f"{out_dir} holds no search (no {STORE_FILE}); run `nasforge search --out "
            f"{out_dir} ...` first"
        )
    try:
        with TrialStore.open_readonly(path) as store:
            if store.config.get("strategy") in ONESHOT_STRATEGIES:
                _oneshot_report(out_dir, store)
                return
            report = build_report(store, top=top, outputs=read_outputs(out_dir))
    except StoreError as err:
        raise Failure(str(err)) from None
    try:
        text_path, plot_path = write_report(out_dir, report)
    except OSError as err:  # read-only media, a full disk: the report is printed anyway
        click.echo(render(report), nl=False)
        click.echo(
            f"nasforge: {out_dir} is read-only or full ({err.strerror or err}): report.md and "
            "rewards.png not rewritten",
            err=True,
        )
        return
    click.echo(render(report), nl=False)
    click.echo(f"wrote {text_path} and {plot_path}", err=True)


def _oneshot_report(out_dir: Path, store: object) -> None:
    """Print a one-shot search's report and redraw its files where it can."""
    from ..search.oneshot_outputs import read_summary
    from ..search.oneshot_report import build_oneshot_report, render_oneshot, write_oneshot_report

    report = build_oneshot_report(store, read_summary(out_dir))
    click.echo(render_oneshot(report), nl=False)
    try:
        written = write_oneshot_report(out_dir, report)
    except OSError as err:
        click.echo(
            f"nasforge: {out_dir} is read-only or full ({err.strerror or err}): report.md and "
            "the plots not rewritten",
            err=True,
        )
        return
    click.echo(f"wrote {', '.join(str(path) for path in written)}", err=True)
