"""`nasforge compile`: an architecture -> a standalone PyTorch file."""

from __future__ import annotations

from pathlib import Path

import click

from . import Failure
from .input import read_arch


@click.command(short_help="Generate the standalone PyTorch file of an architecture.")
@click.argument("source", required=False, metavar="[FILE|-]")
@click.option("--arch", metavar="STRING", help="The architecture text itself.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write here instead of stdout.",
)
@click.option("--overwrite", is_flag=True, help="Replace the file -o names if it exists.")
@click.option("--no-format", is_flag=True, help="Skip black (faster; same code, unformatted).")
def compile_command(
    source: str | None, arch: str | None, output: str | None, overwrite: bool, no_format: bool
) -> None:
    """Compile an architecture (FILE, `-` for stdin, or --arch STRING) to Python source."""
    from nasforge.codegen import generate

    code = generate(read_arch(source, arch), black=not no_format)
    if output is not None and not Path(output).parent.is_dir():
        raise Failure(
            f"-o {output}: the folder {Path(output).parent} does not exist; create it first "
            "(e.g. mkdir -p) or write elsewhere"
        )
    if output is None:
        click.echo(code, nl=False)
        return
    if Path(output).exists() and not overwrite:
        raise Failure(
            f"-o {output} already exists; add --overwrite to replace it, or write elsewhere"
        )
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(code)
    click.echo(f"wrote {output}", err=True)
