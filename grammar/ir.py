"""The IR: what an architecture string means, one frozen dataclass per node.

Every node carries the source position it came from (`pos`); positions take no
part in equality, so `parse(print(ir)) == ir` compares architectures, not text.
Numbering follows the language: cnn layers are 1-based (`L1`), rnn tree nodes
and cell states are 0-based (`N0`, `S0`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar


@dataclass(frozen=True, order=True)
class Pos:
    line: int = 0  # 1-based; 0 when the node was built in code, not parsed
    col: int = 0


NOWHERE = Pos()


@dataclass(frozen=True)
class Ref:
    """A reference to a layer or state by its number, at the place it was written."""

    index: int
    pos: Pos = field(default=NOWHERE, compare=False)


# --- cnn ------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    index: int  # n of the label Ln
    kind: str  # a key of ops.LAYER_KINDS
    kernel: tuple[int, int]  # height, width
    stride: tuple[int, int] = (1, 1)
    filters: int | None = None  # conv, sep; a pooling layer: optional (it projects first)
    batchnorm: bool = True  # conv only
    lrn: bool = False
    inputs: tuple[Ref, ...] = ()  # ascending; empty means the image
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class CnnArch:
    input_shape: tuple[int, int, int]  # channels, height, width
    classes: int
    layers: tuple[Layer, ...]
    lr: float | None = None
    pos: Pos = field(default=NOWHERE, compare=False)

    family = "cnn"


# --- rnn ------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeNode:
    index: int  # n of the label Nn
    combine: str  # a key of ops.RNN_COMBINES
    activation: str  # a key of ops.ACTIVATIONS
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Inject:
    """c_{t-1} joins a node's output: activation(combine(node, c_{t-1}))."""

    node: Ref
    combine: str
    activation: str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class RnnArch:
    base: int  # number of leaves; the tree has 2 * base - 1 nodes
    nodes: tuple[TreeNode, ...]
    inject: Inject | None  # required; None only so validation can say it is missing
    cell: Ref | None  # c_t is this node's value before its activation; required likewise
    pos: Pos = field(default=NOWHERE, compare=False)

    family = "rnn"


# --- cells ----------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    op: str  # a key of ops.CELL_OPS
    source: Ref  # the state it reads
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class CellNode:
    index: int  # n of the label Sn
    combine: str  # a key of ops.CELL_COMBINES
    edges: tuple[Edge, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Cell:
    kind: str  # one of the skeleton's sections: normal, reduction, cell
    nodes: tuple[CellNode, ...]
    output: tuple[Ref, ...]  # one state, or several concatenated on channels
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Setting:
    """A header option of a skeleton, such as `filters 32`."""

    name: str  # a name from the skeleton's options in ops.SKELETONS
    value: int | str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class CellsArch:
    skeleton: str  # a key of ops.SKELETONS
    input_shape: tuple[int, int, int]
    classes: int
    options: tuple[Setting, ...]  # every option of the skeleton, in table order
    cells: tuple[Cell, ...]  # in the skeleton's section order
    pos: Pos = field(default=NOWHERE, compare=False)

    family = "cells"

    def option(self, name: str) -> int | str:
        return next(s.value for s in self.options if s.name == name)

    def cell(self, kind: str) -> Cell:
        return next(c for c in self.cells if c.kind == kind)


Arch = CnnArch | RnnArch | CellsArch


T = TypeVar("T")


def for_family(table: Mapping[type, T], arch: object) -> T:
    """The entry of a families table (keyed by IR class) for `arch`.

    Each layer keeps one such table (printer, validator, code generator, cost
    model), so adding a family means adding a row to each, not an `isinstance` branch.
    """
    try:
        return table[type(arch)]
    except KeyError:
        raise TypeError(f"not an architecture IR: {type(arch).__name__}") from None
