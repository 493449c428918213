"""`nasforge datasets`: the built-in data sets and the forms of a user's own (torch-free)."""

from __future__ import annotations

import click

from ..choices import BUILTIN_DATASETS, DEFAULT_VAL_FRACTION, PATH_FORMS


@click.command(short_help="List the built-in data sets and the forms of your own.")
def datasets_command() -> None:
    """The built-in --dataset names, and the paths train and search also take."""
    click.echo("built-in (--dataset NAME):")
    click.echo(f"  {'name':<10} {'shape':<9} {'classes':<8} source")
    for name, shape, classes, source in BUILTIN_DATASETS:
        click.echo(f"  {name:<10} {shape:<9} {classes:<8} {source}")
    click.echo("\nyour own (--dataset PATH):")
    for form, meaning in PATH_FORMS:
        click.echo(f"  {form:<20} {meaning}")
    click.echo(
        f"\nWithout its own validation split (train/ and val/ folders, x_val/y_val), "
        f"{DEFAULT_VAL_FRACTION:g} of a path data set is held out (--val-fraction), drawn "
        "with the seed; pixels are scaled to [0, 1] and normalised per channel by the "
        "training split's mean and standard deviation."
    )
