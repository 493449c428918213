"""`nasforge info`: parameters, multiply-adds and output shapes, from the cost model."""

from __future__ import annotations

import json

import click

from .input import read_arch


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


@click.command(short_help="Parameters, multiply-adds and output shape of each part.")
@click.argument("source", required=False, metavar="[FILE|-]")
@click.option("--arch", metavar="STRING", help="The architecture text itself.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(source: str | None, arch: str | None, as_json: bool) -> None:
    """Cost of an architecture (FILE, `-` for stdin, or --arch STRING), without building it.

    Multiply-adds count convolutions and linear layers for one example at the
    architecture's input size (per token for language models).
    """
    from nasforge.codegen.cost import cost

    ir = read_arch(source, arch)
    result = cost(ir)
    if as_json:
        payload = {
            "family": ir.family,
            "parameters": result.params,
            "multiply_adds": result.macs,
            "parts": [
                {
                    "name": p.name,
                    "output_shape": list(p.out_shape),
                    "parameters": p.params,
                    "multiply_adds": p.macs,
                }
                for p in result.parts
            ],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    rows = [(p.name, _shape(p.out_shape), f"{p.params:,}", f"{p.macs:,}") for p in result.parts]
    rows.append(("total", "", f"{result.params:,}", f"{result.macs:,}"))
    header = ("part", "output", "parameters", "multiply-adds")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for i, row in enumerate([header, *rows]):
        if i == len(rows):
            click.echo("  ".join("-" * w for w in widths))
        name, shape, params, macs = (
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        click.echo(f"{name}  {shape}  {params}  {macs}")
