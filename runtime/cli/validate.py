"""`nasforge validate`: parse and check architectures, print `ok` or the canonical text.

With `--space NAME` it also checks that each architecture lies inside that
search space; if not, the error names the slot whose choice is outside and
what the space allows there.
"""

from __future__ import annotations

import click
from nasforge.controller.space import Space, load_space
from nasforge.grammar import ArchError, parse, to_text

from . import EXIT_ERROR, Failure
from .input import read_text


def _check(
    name: str,
    text: str,
    *,
    canonical: bool,
    one_line: bool,
    several: bool,
    space: Space | None,
) -> bool:
    """Validate one text and print the result; False (after printing the error) if invalid."""
    try:
        arch = parse(text, name)
        if space is not None:
            try:
                space.decisions_of(arch)
            except ArchError as err:
                raise err.attach(text, name) from None
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
@click.option(
    "--space",
    "space_name",
    metavar="NAME",
    help="Also check that each architecture lies inside this search space (a name or .toml).",
)
def validate(
    files: tuple[str, ...],
    arches: tuple[str, ...],
    canonical: bool,
    one_line: bool,
    space_name: str | None,
) -> None:
    """Parse and validate architectures: files, `-` for stdin, or --arch STRING.

    Prints `ok` (`NAME: ok` for several inputs) or, with --canonical, the
    canonical text (preceded by `# NAME` for several inputs). Exits 2 if any
    input is unreadable or invalid, printing FILE:LINE:COL: error: ... to stderr.
    With --space, an architecture outside the space is an error too: the
    message names the slot whose choice is outside and what the space allows.
    """
    if not files and not arches:
        raise click.UsageError("give at least one FILE, '-' for stdin, or --arch STRING")
    space = load_space(space_name) if space_name is not None else None
    several = len(files) + len(arches) > 1
    options = {"canonical": canonical, "one_line": one_line, "several": several, "space": space}
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
