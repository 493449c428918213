"""The cost model: parameters and multiply-adds of an architecture, from its plan alone.

No model is built: the counts come from the same lowering the code generator
renders, and tests hold them equal to the built model's parameter count.
Multiply-adds count convolutions and linear layers (the convention of the
NASNet and DARTS papers); pooling, batch norm, activations and additions are free.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.grammar.ir import Arch


@dataclass(frozen=True)
class PartCost:
    """One named part of a model (a layer, a cell, the head) and what it costs."""

    name: str
    out_shape: tuple[int, ...]  # without the batch axis
    params: int
    macs: int


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int  # per example, at the architecture's input size
    parts: tuple[PartCost, ...]

    @staticmethod
    def of(parts: list[PartCost]) -> Cost:
        return Cost(sum(p.params for p in parts), sum(p.macs for p in parts), tuple(parts))


def conv_cost(
    c_in: int,
    c_out: int,
    kernel: tuple[int, int],
    out_hw: tuple[int, int],
    *,
    groups: int = 1,
    bias: bool = False,
) -> tuple[int, int]:
    """(parameters, multiply-adds) of one Conv2d."""
    weights = kernel[0] * kernel[1] * (c_in // groups) * c_out
    return weights + (c_out if bias else 0), weights * out_hw[0] * out_hw[1]


def linear_cost(c_in: int, c_out: int, *, bias: bool = True) -> tuple[int, int]:
    return c_in * c_out + (c_out if bias else 0), c_in * c_out


def batchnorm_params(channels: int) -> int:
    return 2 * channels  # weight and bias; running statistics are buffers, not parameters


def cost(arch: Arch, **overrides: object) -> Cost:
    """Parameters and multiply-adds of `arch`'s generated model built with `overrides`
    (ArchError for an IR the language does not allow, as `generate` refuses it)."""
    from nasforge.grammar import validate

    from .families import family  # the families table imports every lowering, which import this

    row = family(arch)
    validate(arch)
    return row.cost(row.plan(arch), **overrides)
