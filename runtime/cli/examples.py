"""`nasforge examples`: the published architectures and the language reference that ship
with nasforge (package data: nasforge.examples, nasforge.grammar's README.md), listed,
or copied into a folder to try and edit (`--copy DIR`, which never overwrites a file).
"""

from __future__ import annotations

import shutil
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import click

from . import Failure

REFERENCE = "LANGUAGE.md"  # the name the language reference is copied under


def shipped_examples() -> list[Traversable]:
    """The shipped *.arch files, sorted by name."""
    folder = resources.files("nasforge.examples")
    return sorted(
        (item for item in folder.iterdir() if item.is_file() and item.name.endswith(".arch")),
        key=lambda item: item.name,
    )


def language_reference() -> Traversable:
    return resources.files("nasforge.grammar").joinpath("README.md")


def header(text: str) -> str:
    """An architecture's first statement (family, input, classes): what it is at a glance."""
    for line in text.splitlines():
        statement = line.split("#", 1)[0].strip()
        if statement:
            return statement.split(";", 1)[0].strip()
    return ""


@click.command(short_help="List the shipped example architectures, or copy them to a folder.")
@click.option(
    "--copy",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help=f"Copy every example and the language reference ({REFERENCE}) into DIR "
    "(created if missing; an existing file there is never overwritten).",
)
def examples_command(target: Path | None) -> None:
    """List the example architectures that ship with nasforge, or copy them into DIR."""
    examples = shipped_examples()
    if target is None:
        width = max(len(item.name) for item in examples)
        for item in examples:
            click.echo(f"{item.name:<{width}}  {header(item.read_text(encoding='utf-8'))}")
        click.echo(
            f"\n{len(examples)} examples; `nasforge examples --copy DIR` copies them and the "
            f"language reference ({REFERENCE}) into DIR"
        )
        return
    sources = [*examples, language_reference()]
    names = [*(item.name for item in examples), REFERENCE]
    present = [name for name in names if (target / name).exists()]
    if present:
        raise Failure(
            f"{target} already has {', '.join(present)}; nothing was copied (choose another "
            "folder, or move those files away)"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        for source, name in zip(sources, names, strict=True):
            with resources.as_file(source) as path:
                shutil.copyfile(path, target / name)
    except OSError as err:
        raise Failure(f"cannot copy into {target}: {err.strerror or err}") from None
    click.echo(f"copied {len(examples)} examples and {REFERENCE} into {target}")
