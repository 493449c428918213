"""The module registry: what a cell op becomes in a generated file.

Every edge op of the op table (grammar/ops.py, CELL_OPS) lowers to one module
below, chosen by `edge_module` (rule 1 of the package docstring); the output
rule's projections (rule 3) are modules of the same registry. A module is
built by the template macro of the same name in
templates/_edge_modules.py.jinja, needs the op classes `helpers` (defined by
templates/_cell_ops.py.jinja), and costs what its `cost` adds up. Nothing else
spells out how an op is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nasforge.grammar import ops

from .counter import Counter
from .plan_types import HW

# The op classes a file may define, in the order it defines them.
HELPERS = (
    "DropPath",
    "ReLUConvBN",
    "ConvBN",
    "FactorizedReduce",
    "same_padding",
    "SameConv2d",
    "SameAvgPool2d",
    "SameMaxPool2d",
    "SepConv",
    "DilConv",
    "ConvPair",
    "Zero",
    "Skip",
    "AvgPool",
    "MaxPool",
    "ResNetBasicBlock",
    "AuxiliaryHead",
)


@dataclass(frozen=True)
class Site:
    """Where a module sits: its widths and window, the sizes it reads and writes."""

    c_in: int
    c_out: int
    kernel: int
    stride: int
    in_hw: HW
    out_hw: HW


@dataclass(frozen=True)
class Module:
    name: str  # also the name of the template macro that builds it
    helpers: tuple[str, ...]  # op classes its construction needs
    cost: Callable[[Counter, Site], None]


def _free(count: Counter, s: Site) -> None:
    """No parameters (zero, identity, pooling)."""


def _conv(count: Counter, s: Site) -> None:
    count.relu_conv_bn(s.c_in, s.c_out, s.kernel, s.out_hw)


def _conv_pair(count: Counter, s: Site) -> None:
    k = s.kernel
    count.conv(s.c_in, s.c_out, (1, k), (s.in_hw[0], s.out_hw[1]))
    count.conv(s.c_out, s.c_out, (k, 1), s.out_hw)
    count.bn(s.c_out)


def _sep(count: Counter, s: Site, mid: int | None = None) -> None:
    k, c_in, c = s.kernel, s.c_in, s.c_out
    mid = c_in if mid is None else mid
    count.conv(c_in, c_in, (k, k), s.out_hw, groups=c_in)
    count.conv(c_in, mid, (1, 1), s.out_hw)
    count.bn(mid)
    count.conv(mid, mid, (k, k), s.out_hw, groups=mid)
    count.conv(mid, c, (1, 1), s.out_hw)
    count.bn(c)


def _slim_sep(count: Counter, s: Site) -> None:
    _sep(count, s, mid=s.c_out)  # slim's first pointwise conv widens to c


def _dil(count: Counter, s: Site) -> None:
    count.conv(s.c_in, s.c_in, (s.kernel, s.kernel), s.out_hw, groups=s.c_in)
    count.conv(s.c_in, s.c_out, (1, 1), s.out_hw)
    count.bn(s.c_out)


def _convbn(count: Counter, s: Site) -> None:
    count.relu_conv_bn(s.c_in, s.c_out, 1, s.out_hw)


def _convbn_if_differs(count: Counter, s: Site) -> None:
    if s.c_in != s.c_out:
        _convbn(count, s)


def _skip(count: Counter, s: Site) -> None:
    if s.stride > 1 or s.c_in != s.c_out:
        _convbn(count, s)


def _projected(count: Counter, s: Site) -> None:
    """The 1x1 projection runs before the pooling, at the input's size."""
    count.relu_conv_bn(s.c_in, s.c_out, 1, s.in_hw)


def _factorized(count: Counter, s: Site) -> None:
    count.factorized_reduce(s.c_in, s.c_out, s.out_hw)


MODULES: dict[str, Module] = {
    m.name: m
    for m in (
        Module("zero", ("Zero",), _free),
        Module("identity", (), _free),
        Module("skip", ("Skip",), _skip),  # slim's 'none': decides at build time
        Module("conv", ("ReLUConvBN",), _conv),
        Module("conv_pair", ("ConvPair",), _conv_pair),
        Module("sep", ("SepConv",), _sep),
        Module("slim_sep", ("SepConv", "same_padding", "SameConv2d"), _slim_sep),
        Module("dil", ("DilConv",), _dil),
        Module("avgpool", (), _free),
        Module("maxpool", (), _free),
        Module("avgpool_projected", ("ReLUConvBN",), _projected),
        Module("maxpool_projected", ("ReLUConvBN",), _projected),
        Module(
            "slim_avgpool",
            ("AvgPool", "ConvBN", "same_padding", "SameAvgPool2d"),
            _convbn_if_differs,
        ),
        Module(
            "slim_maxpool",
            ("MaxPool", "ConvBN", "same_padding", "SameMaxPool2d"),
            _convbn_if_differs,
        ),
        Module("factorized", ("FactorizedReduce",), _factorized),
        Module("factorized_norelu", ("FactorizedReduce",), _factorized),
        Module("convbn", ("ConvBN",), _convbn),
        Module("convbn_if_differs", ("ConvBN",), _convbn_if_differs),
    )
}


def edge_module(skeleton: str, op: ops.CellOp, stride: int, width_differs: bool) -> str:
    """The registry's module for an op on an edge (rule 1)."""
    kind = op.kind
    if kind == "identity":
        if skeleton == "nasnet":
            return "skip"
        if stride > 1:
            return "factorized"
        return "convbn" if width_differs else "identity"
    if skeleton == "nasnet" and kind in ("sep", "avgpool", "maxpool"):
        return f"slim_{kind}"  # slim's own ops: its widths, TensorFlow's SAME padding
    if kind in ("avgpool", "maxpool"):
        return f"{kind}_projected" if width_differs else kind
    return kind  # zero | conv | conv_pair | sep | dil


def helpers_for(base: Iterable[str], modules: Iterable[str]) -> tuple[str, ...]:
    """The op classes a file defines, in order: `base` and those its modules need."""
    need = set(base)
    for name in modules:
        need.update(MODULES[name].helpers)
    return tuple(h for h in HELPERS if h in need)
