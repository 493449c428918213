"""`nasforge validate`: parse and check architectures, print `ok` or the canonical text."""

from __future__ import annotations

import click
from nasforge.grammar import ArchError, parse, to_text

from .cli import EXIT_ERROR, Failure
from .cli_input import read_text


def _check(name: str, text: str, *, canonical: bool, one_line: bool, several: bool) -> bool:
    """Validate one text and print the result; False (after printing the error) if invalid."""
    try:
        arch = parse(text, name)
    except ArchError as err:
        click.echo(str(err), err=True)
        return False
    if canonical or one_line:
        if several:
            click.echo(f"# {name}")
        click.echo(to_text(arch, one_line=one_line).rstrip("\n"))
    else:
        click.echo(f"{name}: ok" if several else "ok")
    return True


@click.command(short_help="Parse and check architectures; print ok or the canonical form.")
@click.argument("files", nargs=-1, metavar="[FILE|-]...")
@click.option("--arch", "arches", multiple=True, metavar="STRING", help="An architecture text.")
@click.option("--canonical", is_flag=True, help="Print the canonical form instead of `ok`.")
@click.option("--one-line", is_flag=True, help="Canonical form on one line (implies --canonical).")
def validate(
    files: tuple[str, ...], arches: tuple[str, ...], canonical: bool, one_line: bool
) -> None:
    """Parse and validate architectures: files, `-` for stdin, or --arch STRING.

    Prints `ok` (`NAME: ok` for several inputs) or, with --canonical, the
    canonical text (preceded by `# NAME` for several inputs). Exits 2 if any
    input is unreadable or invalid, printing FILE:LINE:COL: error: ... to stderr.
    """
    if not files and not arches:
        raise click.UsageError("give at least one FILE, '-' for stdin, or --arch STRING")
    several = len(files) + len(arches) > 1
    options = {"canonical": canonical, "one_line": one_line, "several": several}
    ok = True
    for path in files:
        try:
            name, text = read_text(path)
        except Failure as err:
            err.show()
            ok = False
            continue
        ok = _check(name, text, **options) and ok
    for text in arches:
        ok = _check("<arch>", text, **options) and ok
    if not ok:
        raise SystemExit(EXIT_ERROR)
