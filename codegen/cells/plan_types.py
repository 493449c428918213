"""The plan of a cells file: what both the template and the cost model read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Shape = tuple[int, int, int]  # channels, height, width
HW = tuple[int, int]

MIN_WIDTH = 2  # rule 5: a factorized reduction splits its output in two
AUX_CHANNELS = (128, 768)  # both auxiliary heads: 1x1 conv to 128, then a conv to 768


@dataclass(frozen=True)
class Width:
    """A channel count inside a cell class: `mult` times the constructor argument `var`."""

    var: str  # "c" or "c0"
    mult: int = 1


@dataclass(frozen=True)
class EdgePlan:
    name: str  # attribute, from the node and edge position: s2_0
    op: str  # the op's name in the op table
    module: str  # what the template builds: a key of modules.MODULES
    kernel: int
    dilation: int
    stride: int
    source: str  # the state variable it reads
    source_index: int
    c_in: Width
    drop_path: bool  # wrapped in the cell's drop-path module


@dataclass(frozen=True)
class NodePlan:
    name: str  # the state variable: s2
    index: int
    combine: str  # add | concat
    edges: tuple[EdgePlan, ...]
    width: int  # channels, in multiples of c


@dataclass(frozen=True)
class OutPlan:
    """One state of a cell's output, with the module that brings it to the output size."""

    source: str
    source_index: int
    name: str | None  # attribute of the matching module, None when used as it is
    module: str  # "none" (used as it is) or a key of modules.MODULES
    c_in: Width
    c_out: Width
    stride: int  # 2 where a reduction cell's input is halved to the nodes' size


@dataclass(frozen=True)
class CellClassPlan:
    kind: str  # normal | reduction | cell
    class_name: str
    reduction: bool
    inputs: tuple[str, ...]  # the forward arguments: s0, s1 (nb201: s0)
    nodes: tuple[NodePlan, ...]
    outputs: tuple[OutPlan, ...]
    out_mult: int  # output channels = out_mult * c
    drop_path: bool  # has a drop-path module

    @property
    def concat_output(self) -> bool:
        return len(self.outputs) > 1


@dataclass(frozen=True)
class StepPlan:
    """One statement of the network's forward: a stem piece, a cell or a residual block."""

    name: str  # attribute and variable
    module: str  # stem | conv0 | stem0 | stem1 | cell | resblock
    inputs: tuple[str, ...]  # variables it reads (a cell: s0, s1)
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    cls: str | None = None  # class name, for cells and blocks
    kind: str | None = None  # cell kind
    c: int = 0  # a cell's width; a block's output width
    reduction_prev: bool = False
    project_prev: bool = False  # nasnet: S0 goes through ReLU -> 1x1 conv -> BN
    padding: HW = (0, 0)  # stem convs


@dataclass(frozen=True)
class AuxPlan:
    after: str  # the variable it reads
    in_shape: Shape
    pool: HW  # window, clamped to the feature map
    pool_stride: int
    pooled: HW
    conv: HW  # kernel of the 768-channel conv
    out_hw: HW
    bn_after_conv: bool  # DARTS' ImageNet head has none
    features: int  # inputs of its linear layer


@dataclass(frozen=True)
class CellsPlan:
    skeleton: str  # nasnet | darts | nb201
    stem: str  # cifar | imagenet (nb201: cifar)
    input_shape: Shape
    classes: int
    network: str  # class name
    helpers: tuple[str, ...]  # op classes the file defines, in order
    cell_classes: tuple[CellClassPlan, ...]
    steps: tuple[StepPlan, ...]
    aux: AuxPlan | None  # where an auxiliary head would read, when the skeleton has one
    head_input: str
    head_channels: int
    dropout: float  # default of the head's dropout (nasnet)
    drop_path: bool  # the skeleton takes a drop_path override
    bn_eps: float | None  # every batch norm's epsilon; None: PyTorch's default, 1e-5

    @property
    def uses_functional(self) -> bool:
        return "FactorizedReduce" in self.helpers


@dataclass(frozen=True)
class Stack:
    """A skeleton's network body: its steps, where an auxiliary head reads, the head's
    dropout, the batch norms' epsilon."""

    steps: list[StepPlan]
    aux: AuxPlan | None = None
    dropout: float = 0.0
    bn_eps: float | None = None


@dataclass(frozen=True)
class SkeletonCode:
    """How one skeleton is generated: the row of the skeleton table (plan.SKELETONS)."""

    stack: Callable[..., Stack]  # (arch, n, filters, stem, cells by kind, namespace) -> Stack
    networks: dict[str, str]  # the network's class name, by stem
    helpers: tuple[str, ...]  # op classes its stem and preprocessing use
    overrides: frozenset[str]  # build_model's overrides besides num_classes and aux_head

    @property
    def drop_path(self) -> bool:
        return "drop_path" in self.overrides
