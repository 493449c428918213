"""The op table: the only list of ops, layer kinds, combines, activations and skeletons.

The grammar's validation, the code generator and the controller all read these
tables; nothing else in nasforge spells an op name.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- cnn family: layer kinds (Zoph & Le 2017, section 3.1-3.3) -----------------


@dataclass(frozen=True)
class LayerKind:
    name: str
    has_filters: bool  # conv and sep layers choose their filter count; pooling keeps channels
    doc: str
    # Pooling may take a filter count all the same: `maxpool 3x3 n36` first projects its
    # input to 36 channels (1x1 conv -> batch norm -> ReLU), as ENAS's pool branch does
    # (src/cifar10/general_child.py, `_pool_branch`), so every op of ENAS's macro space
    # outputs the same width.
    projects: bool = False


LAYER_KINDS: dict[str, LayerKind] = {
    k.name: k
    for k in (
        LayerKind("conv", True, "convolution -> batch norm -> ReLU"),
        # ENAS's macro space (Pham et al. 2018) adds separable convs; the layer is the
        # out_conv part of _conv_branch(separable=True) in the reference code
        # (src/cifar10/general_child.py): tf.nn.separable_conv2d with channel
        # multiplier 1 and no bias, then batch norm, then ReLU.
        LayerKind(
            "sep",
            True,
            "depthwise separable convolution: depthwise conv -> pointwise 1x1 conv -> "
            "batch norm -> ReLU",
        ),
        LayerKind("maxpool", False, "max pooling", projects=True),
        LayerKind("avgpool", False, "average pooling", projects=True),
    )
}



def split_layer_op(label: str) -> tuple[str, tuple[int, int]]:
    """A layer op `KIND HxW` (a cnn space's op choice, e.g. "sep 5x5") as (kind, kernel).

    ValueError if `label` is not a layer kind, one space and a kernel size.
    """
    kind, _, size = label.partition(" ")
    height, _, width = size.partition("x")
    canonical = height.isdigit() and width.isdigit() and f"{kind} {int(height)}x{int(width)}"
    if kind not in LAYER_KINDS or canonical != label:
        raise ValueError(
            f"a layer op is a layer kind and its kernel, such as 'conv 3x3', not {label!r}; "
            f"layer kinds: {', '.join(LAYER_KINDS)}"
        )
    return kind, (int(height), int(width))


# Per-layer switches that may follow a layer's sizes (layers with filters only).
LAYER_FLAGS: dict[str, str] = {
    "nobn": "leave out the batch norm after a conv (its last conv then has a bias)",
    "lrn": "local response normalisation after the activation",
}

# --- rnn family: tree nodes (NAS section 3.4) -----------------------------------

RNN_COMBINES: dict[str, str] = {
    "add": "elementwise sum",
    "mul": "elementwise product",
}

ACTIVATIONS: dict[str, str] = {
    "identity": "f(x) = x",
    "tanh": "hyperbolic tangent",
    "relu": "max(x, 0)",
    "sigmoid": "logistic function",
}

# --- cells family: ops on the edges of NASNet / DARTS / NAS-Bench-201 cells -----


@dataclass(frozen=True)
class CellOp:
    """One op that can sit on a cell edge.

    `kind` is what the code generator builds; `kernel` and `dilation` size it.
    The `nasnet`, `darts` and `nb201` fields are the op's name in that
    project's own vocabulary, or None where that project has no such op.
    """

    name: str
    kind: str  # zero | identity | conv | conv_pair | sep | dil | avgpool | maxpool
    kernel: int
    dilation: int
    doc: str
    nasnet: str | None = None
    darts: str | None = None
    nb201: str | None = None


CELL_OPS: dict[str, CellOp] = {
    op.name: op
    for op in (
        CellOp("none", "zero", 0, 1, "the zero op: no connection", darts="none", nb201="none"),
        CellOp(
            "skip",
            "identity",
            0,
            1,
            "identity (a factorized reduction when it must stride)",
            nasnet="none",
            darts="skip_connect",
            nb201="skip_connect",
        ),
        CellOp(
            "conv1x1",
            "conv",
            1,
            1,
            "ReLU -> 1x1 conv -> BN",
            nasnet="conv_1x1",
            nb201="nor_conv_1x1",
        ),
        CellOp(
            "conv3x3",
            "conv",
            3,
            1,
            "ReLU -> 3x3 conv -> BN",
            nasnet="conv_3x3",
            nb201="nor_conv_3x3",
        ),
        CellOp(
            "conv1x3_3x1",
            "conv_pair",
            3,
            1,
            "ReLU -> 1x3 conv -> 3x1 conv -> BN",
            nasnet="conv_1x3_3x1",
        ),
        CellOp(
            "conv1x7_7x1",
            "conv_pair",
            7,
            1,
            "ReLU -> 1x7 conv -> 7x1 conv -> BN",
            nasnet="conv_1x7_7x1",
        ),
        CellOp(
            "sep3x3",
            "sep",
            3,
            1,
            "two stacked ReLU -> separable 3x3 -> BN",
            nasnet="separable_3x3_2",
            darts="sep_conv_3x3",
        ),
        CellOp(
            "sep5x5",
            "sep",
            5,
            1,
            "two stacked ReLU -> separable 5x5 -> BN",
            nasnet="separable_5x5_2",
            darts="sep_conv_5x5",
        ),
        CellOp(
            "sep7x7",
            "sep",
            7,
            1,
            "two stacked ReLU -> separable 7x7 -> BN",
            nasnet="separable_7x7_2",
        ),
        CellOp(
            "dil3x3",
            "dil",
            3,
            2,
            "ReLU -> separable 3x3 conv, dilation 2 -> BN",
            nasnet="dil_conv_3x3",
            darts="dil_conv_3x3",
        ),
        CellOp(
            "dil5x5",
            "dil",
            5,
            2,
            "ReLU -> separable 5x5 conv, dilation 2 -> BN",
            darts="dil_conv_5x5",
        ),
        CellOp(
            "avgpool3x3",
            "avgpool",
            3,
            1,
            "3x3 average pooling",
            nasnet="avg_pool_3x3",
            darts="avg_pool_3x3",
            nb201="avg_pool_3x3",
        ),
        CellOp(
            "maxpool3x3",
            "maxpool",
            3,
            1,
            "3x3 max pooling",
            nasnet="max_pool_3x3",
            darts="max_pool_3x3",
        ),
        CellOp("maxpool5x5", "maxpool", 5, 1, "5x5 max pooling", nasnet="max_pool_5x5"),
        CellOp("maxpool7x7", "maxpool", 7, 1, "7x7 max pooling", nasnet="max_pool_7x7"),
    )
}

CELL_COMBINES: dict[str, str] = {
    "add": "sum of the edges' outputs",
    "concat": "concatenation of the edges' outputs on the channel axis",
}


def ops_of(vocabulary: str) -> dict[str, CellOp]:
    """The ops a project knows, keyed by that project's own op name.

    `vocabulary` is "nasnet", "darts" or "nb201".
    """
    table: dict[str, CellOp] = {}
    for op in CELL_OPS.values():
        foreign = getattr(op, vocabulary)
        if foreign is not None:
            table[foreign] = op
    return table


# --- cells family: skeletons ------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """A header option of a skeleton: an integer in [low, high], or one of `choices`."""

    name: str
    default: int | str
    doc: str
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skeleton:
    """How cells are stacked into a network, as the named reference implementation does it.

    `sections` are the cell kinds the architecture defines, in canonical order.
    `inputs` is how many states a cell reads (S0 .. S{inputs-1}); its new
    nodes are numbered from there. `dense` skeletons (NAS-Bench-201) connect
    every node to every earlier one, one edge each, in order.
    """

    name: str
    reference: str
    sections: tuple[str, ...]
    inputs: int
    dense: bool
    options: tuple[Option, ...]


_STEMS = ("cifar", "imagenet")

SKELETONS: dict[str, Skeleton] = {
    s.name: s
    for s in (
        Skeleton(
            "nasnet",
            "TensorFlow slim nets/nasnet (Zoph et al. 2018)",
            ("normal", "reduction"),
            2,
            False,
            (
                Option("n", 6, "normal cells per stack (the N of N@P)", 1, 32),
                Option("filters", 32, "filters of the first stack (num_conv_filters)", 1, 1024),
                Option(
                    "stem",
                    "cifar",
                    "cifar: one 3x3 conv; imagenet: a strided conv and two reduction cells",
                    choices=_STEMS,
                ),
                Option("stem_multiplier", 3, "stem width multiplier", 1, 8),
                Option(
                    "skip_reduction_input",
                    0,
                    "1: the cell after a reduction reads the reduction's input too",
                    0,
                    1,
                ),
            ),
        ),
        Skeleton(
            "darts",
            "DARTS reference code, cnn/model.py (Liu et al. 2019)",
            ("normal", "reduction"),
            2,
            False,
            (
                Option("n", 6, "normal cells per stage (layers = 3n + 2)", 1, 32),
                Option("filters", 36, "initial channels (C)", 1, 1024),
                Option(
                    "stem",
                    "cifar",
                    "cifar: one 3x3 conv; imagenet: two strided stems",
                    choices=_STEMS,
                ),
            ),
        ),
        Skeleton(
            "nb201",
            "NAS-Bench-201 (Dong & Yang 2020)",
            ("cell",),
            1,
            True,
            (
                Option("n", 5, "cells per stage", 1, 32),
                Option("filters", 16, "channels of the first stage", 1, 1024),
            ),
        ),
    )
}
