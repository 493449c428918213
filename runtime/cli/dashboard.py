"""`nasforge dashboard DIR`: a live web page over the search stored in DIR (read-only).

Binds to the loopback address unless --allow-remote; then the page requires the token
printed with its address. The web libraries are an optional extra
(`pip install 'nasforge[dashboard]'`), imported only when the page is served.
`nasforge search --dashboard` runs this command in a subprocess beside the search
(`dashboard_options`, `beside`).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from . import Failure

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
START_SECONDS = 60.0  # how long `search --dashboard` waits for the page's address
# The page runs at a lower CPU priority than the search it watches: on a busy machine
# the search gets the CPU first (measured in benchmarks/bench_dashboard.py).
NICENESS = 10


@click.command(short_help="Serve a live web page over a search (read-only).")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other machines can reach; the page then requires a printed token.",
)
def dashboard_command(out_dir: Path, host: str, port: int, allow_remote: bool) -> None:
    """Show the search in DIR (running, finished or killed) as a web page."""
    try:
        from ..dashboard.access import new_token
        from ..dashboard.app import create_app
        from ..dashboard.serve import bind, check_host, serve, url
    except ImportError as err:
        raise Failure(
            f"the dashboard needs the web libraries ({err.name} is missing): "
            "pip install 'nasforge[dashboard]'"
        ) from None
    check_host(host, allow_remote)
    token = new_token() if allow_remote else None
    app = create_app(out_dir, token=token)
    sock = bind(host, port)
    os.nice(NICENESS)
    click.echo(f"nasforge dashboard: {url(sock, token)}")
    sys.stdout.flush()
    click.echo(f"serving the search in {out_dir} read-only; Ctrl-C stops", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        serve(app, sock)


def dashboard_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--dashboard` and its options, for `nasforge search`."""
    options = [
        click.option(
            "--dashboard",
            is_flag=True,
            help="Serve the live dashboard beside the search (see `nasforge dashboard`).",
        ),
        click.option("--dashboard-host", default=DEFAULT_HOST, show_default=True),
        click.option(
            "--dashboard-port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0)
        ),
        click.option("--dashboard-allow-remote", is_flag=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def pop_dashboard_options(given: dict[str, Any]) -> dict[str, Any]:
    """Take dashboard_options' values out of a command's keyword arguments."""
    return {key: given.pop(key) for key in list(given) if key.startswith("dashboard")}


@contextlib.contextmanager
def beside(out_dir: Path, options: dict[str, Any]) -> Iterator[str | None]:
    """Run `nasforge dashboard out_dir` in a subprocess while the block runs (when
    options["dashboard"]); yields its address (None when off or it did not start)."""
    if not options.get("dashboard"):
        yield None
        return
    command = [
        sys.executable, "-m", "nasforge.runtime.cli", "dashboard", str(out_dir),
        "--host", str(options["dashboard_host"]), "--port", str(options["dashboard_port"]),
        *(["--allow-remote"] if options.get("dashboard_allow_remote") else []),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    address = _address(process)
    if address is None:
        click.echo("nasforge: warning: the dashboard did not start; the search goes on", err=True)
    else:
        click.echo(f"dashboard: {address}", err=True)
    try:
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _address(process: subprocess.Popen[str]) -> str | None:
    """The address the dashboard prints first, or None if it ends or stays silent."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_SECONDS)
    line = process.stdout.readline() if ready else ""
    prefix = "nasforge dashboard: "
    if not line.startswith(prefix):
        return None
    return line[len(prefix) :].strip()
