"""DARTS' search network for CIFAR-10 written by hand, for comparison with the generated supernet.

Written from the DARTS paper's description (Liu et al. 2019, "DARTS: Differentiable
Architecture Search", sections 2.1-2.2 and appendix A.1.1): a stack of cells, each a
DAG of two input states (the outputs of the two previous cells, each through a 1x1
ReLU-conv-BN, or a factorized reduction after a reduction cell) and four nodes; every
node is the sum of one mixed op on every earlier state (14 edges), a mixed op being
the softmax-weighted sum of all candidate ops; the cell's output concatenates its
four nodes. Reduction cells at a third and two thirds of the depth double the width,
and their ops on the input states have stride 2. The search network has 8 cells and
16 initial channels; the stem is a 3x3 conv to 3C channels with batch norm; the head
is global average pooling and a linear classifier.

The ops are built as nasforge compiles them (docs/oneshot.md, "Choices to know"),
so that this network and the generated supernet compute the same function and the
benchmark compares like with like: batch norms have affine parameters, pooling ops
have no batch norm after them (the paper's search network uses non-affine batch
norms and a batch norm after each pooling op inside the mixed op). The columns of
the architecture weights are in the generated file's OPS order, and `forward(x,
weights)` takes the mixture weights of every edge, normal cells' 14 rows then the
reduction cells' 14, as the generated supernet does, so one architecture step drives
both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn

T = TypeVar("T")

OPS = ("none", "skip", "sep3x3", "sep5x5", "dil3x3", "dil5x5", "avgpool3x3", "maxpool3x3")
NODES = 4  # new states per cell
EDGES_PER_CELL = sum(2 + i for i in range(NODES))  # 14


def relu_conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """The 1x1 preprocessing of a cell's inputs."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convs, one on the pixels the other misses."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.even = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.odd = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.even(x), self.odd(x[:, :, 1:, 1:])], dim=1))


def separable(c: int, kernel: int, stride: int) -> nn.Sequential:
    """The paper's separable conv: ReLU-depthwise-pointwise-BN, applied twice."""
    pad = kernel // 2
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
    )


def dilated(c: int, kernel: int, stride: int) -> nn.Sequential:
    """The paper's dilated separable conv (dilation 2): ReLU-depthwise-pointwise-BN once."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, kernel, stride, kernel - 1, dilation=2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
    )


class Zero(nn.Module):
    """The 'zero' op: no connection."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def candidate(name: str, c: int, stride: int) -> nn.Module:
    if name == "none":
        return Zero(stride)
    if name == "skip":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    kernel = int(name[-1])
    if name.startswith("sep"):
        return separable(c, kernel, stride)
    if name.startswith("dil"):
        return dilated(c, kernel, stride)
    if name.startswith("avg"):
        return nn.AvgPool2d(kernel, stride, 1, count_include_pad=False)
    return nn.MaxPool2d(kernel, stride, 1)


class MixedOp(nn.ModuleList):
    """Every candidate op of one edge; the output is their weighted sum."""

    def __init__(self, c: int, stride: int) -> None:
        super().__init__(candidate(name, c, stride) for name in OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self, strict=True))


class Cell(nn.Module):
    def __init__(
        self, c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool
    ):
        super().__init__()
        self.reduction = reduction
        self.pre0 = (
            FactorizedReduce(c_prev_prev, c) if reduction_prev else relu_conv_bn(c_prev_prev, c)
        )
        self.pre1 = relu_conv_bn(c_prev, c)
        # Edges in node order, each node's edges in the order of the states they read.
        self.edges = nn.ModuleList(
            MixedOp(c, 2 if reduction and j < 2 else 1) for i in range(NODES) for j in range(2 + i)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(NODES):
            edges = range(offset, offset + len(states))
            states.append(sum(self.edges[e](states[e - offset], weights[e]) for e in edges))
            offset += len(edges)
        return torch.cat(states[2:], dim=1)


class SearchNetwork(nn.Module):
    def __init__(
        self, c: int = 16, cells: int = 8, num_classes: int = 10, stem_multiplier: int = 3
    ):
        super().__init__()
        c_stem = stem_multiplier * c
        self.stem = nn.Sequential(
            nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        self.cells = nn.ModuleList()
        c_prev_prev, c_prev, reduction_prev = c_stem, c_stem, False
        for i in range(cells):
            reduction = i in (cells // 3, 2 * cells // 3)
            c = c * 2 if reduction else c
            self.cells.append(Cell(c_prev_prev, c_prev, c, reduction, reduction_prev))
            c_prev_prev, c_prev, reduction_prev = c_prev, NODES * c, reduction
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """`weights`: (28, 8) mixtures, the normal cells' 14 edges, then the reduction cells'."""
        normal, reduce = weights[:EDGES_PER_CELL], weights[EDGES_PER_CELL:]
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        return self.classifier(s1.mean((2, 3)))


def from_supernet_names(state: Mapping[str, T]) -> dict[str, T]:
    """A generated darts supernet's state_dict under this network's names.

    `cell_I.preprocessP.REST` -> `cells.I.preP.REST`, `cell_I.sN_J.K.REST` (op K of the
    edge from state J to node N) -> `cells.I.edges.E.K.REST` (E counts the edges in node
    order), a factorized reduction's `conv_1`/`conv_2` -> `even`/`odd`; the stem and the
    classifier keep their names.
    """
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        cell = re.fullmatch(r"cell_(\d+)", parts[0])
        if cell:
            edge = re.fullmatch(r"s(\d+)_(\d+)", parts[1])
            if edge:
                node, source = int(edge[1]) - 2, int(edge[2])
                parts[1:2] = ["edges", str(node * (node + 3) // 2 + source)]
            else:
                parts[1] = parts[1].replace("preprocess", "pre")
            parts[0:1] = ["cells", cell[1]]
        renamed[".".join(_FACTORIZED.get(p, p) for p in parts)] = value
    return renamed


_FACTORIZED = {"conv_1": "even", "conv_2": "odd"}


if __name__ == "__main__":
    model = SearchNetwork()
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    mixture = torch.full((2 * EDGES_PER_CELL, len(OPS)), 1.0 / len(OPS))
    print(tuple(model(torch.randn(2, 3, 32, 32), mixture).shape))
