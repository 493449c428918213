"""Lowering of a cells architecture: cell classes, the network that stacks them, and its cost.

Three skeletons, each as its reference implementation builds it:

- ``nasnet``: TensorFlow slim ``nets/nasnet`` (``_build_nasnet_base``, ``_cell_base``,
  ``_apply_conv_operation``, ``_combine_unused_states``).
- ``darts``: the DARTS reference code, ``cnn/model.py`` (``NetworkCIFAR``,
  ``NetworkImageNet``) with the ops of ``cnn/operations.py``.
- ``nb201``: NAS-Bench-201's ``TinyNetwork`` and ``InferCell``.

The plan is what both the template and the cost model read. A cell class is
planned once per cell kind; its widths are written in terms of its constructor
arguments (``c``, and for NASNet ``c0``, the width of S0, which differs from
``c`` only when S0 is the stem's raw output); the instances carry the numbers.

Where the language allows more than a reference implementation does, these
rules apply (each is also stated in the generated file where it shows):

1. Every op maps its input width to the cell width ``c``. An op reading a
   state of another width (a ``concat`` node, or NASNet's raw S0) changes the
   width the way its reference does: separable, dilated and plain convolutions
   take the input width natively; NASNet's identity becomes ReLU -> 1x1 conv ->
   BN and its pools get a 1x1 conv -> BN after them (slim); DARTS and
   NAS-Bench-201 identities become a 1x1 conv -> BN and their pools get a
   ReLU -> 1x1 conv -> BN before them (NAS-Bench-201's FactorizedReduce and
   POOLING); ``none`` gives zeros of the output's width.
2. A ``concat`` node concatenates its edges' outputs on channels (width
   ``len(edges) * c``).
3. Output rule: NASNet brings every output state to the last node's height
   and width as slim's ``_combine_unused_states`` does (a factorized reduction
   when the size differs, a 1x1 conv -> BN when only the width does; the ReLU
   is not part of it). DARTS concatenates the listed states as they are, except
   that a reduction cell's inputs S0/S1 in its output are halved by a
   factorized reduction (DARTS itself would fail there).
4. Ops that slim's released code does not implement (plain, paired and dilated
   convolutions, zero) use the DARTS definitions in every skeleton; pooling
   windows of any size pad by ``kernel // 2``; TensorFlow's SAME padding pads
   one pixel more after than before when striding, PyTorch pads evenly: same
   output sizes, parameters and multiply-adds, a one-pixel shift.
5. Sizes: a cell is at least 2 channels wide (a factorized reduction splits its
   output in two); DARTS' ImageNet stem halves ``filters`` to at least 1;
   NASNet's ImageNet stem conv pads an axis shorter than 3 by one; the
   auxiliary heads clamp their windows to the feature map and read the
   flattened result, so any input size builds. NAS-Bench-201's reduction
   shortcut pools with ``ceil_mode=True`` so odd sizes match the strided conv.
6. Drop-path (an override of the nasnet and darts files) has a fixed
   probability, applied in training after every op but the identity (slim
   skips its 'none' op even where it is a strided 1x1 conv; DARTS skips
   Identity modules only). slim scales it by depth and training progress and
   DARTS by epoch: a training loop may set each DropPath's `p` the same way.
   NAS-Bench-201 has no drop-path.
7. Network outputs: the logits; with ``aux_head=True`` in training mode, the
   pair ``(logits, aux_logits)`` (NAS-Bench-201's TinyNetwork returns
   ``(features, logits)``; this file returns the logits only).
"""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.grammar import ops
from nasforge.grammar.ir import CellsArch

from .cost import Cost, PartCost, batchnorm_params, conv_cost, linear_cost
from .naming import Namespace
from .shapes import same_out

Shape = tuple[int, int, int]  # channels, height, width
HW = tuple[int, int]

MIN_WIDTH = 2  # rule 5: a factorized reduction splits its output in two
AUX_CHANNELS = (128, 768)  # both auxiliary heads: 1x1 conv to 128, then a conv to 768


# The op classes a file may define, in the order it defines them.
HELPERS = (
    "DropPath",
    "ReLUConvBN",
    "ConvBN",
    "FactorizedReduce",
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


# --- plan dataclasses ----------------------------------------------------------------


@dataclass(frozen=True)
class Width:
    """A channel count inside a cell class: `mult` times the constructor argument `var`."""

    var: str  # "c" or "c0"
    mult: int = 1


@dataclass(frozen=True)
class EdgePlan:
    name: str  # attribute, from the node and edge position: s2_0
    op: str  # the op's name in the op table
    module: str  # what the template builds (see _edge_module)
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
    module: str  # none | convbn | convbn_if_differs | factorized | factorized_norelu
    c_in: Width
    c_out: Width


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

    @property
    def uses_functional(self) -> bool:
        return "FactorizedReduce" in self.helpers


# --- cell classes ----------------------------------------------------------------------


def _edge_module(skeleton: str, op: ops.CellOp, stride: int, width_differs: bool) -> str:
    """What the template builds for an op (rule 1)."""
    kind = op.kind
    if kind == "identity":
        if skeleton == "nasnet":
            return "skip"  # slim's 'none': decides at build time from the widths
        if stride > 1:
            return "factorized"
        return "convbn" if width_differs else "identity"
    if kind in ("avgpool", "maxpool"):
        if skeleton == "nasnet":
            return f"slim_{kind}"
        return f"{kind}_projected" if width_differs else kind
    return kind  # zero | conv | conv_pair | sep | dil


def _plan_cell_class(arch: CellsArch, kind: str, class_name: str) -> CellClassPlan:
    skeleton = ops.SKELETONS[arch.skeleton]
    cell = arch.cell(kind)
    ns = Namespace()
    reduction = kind == "reduction"
    first = skeleton.inputs
    inputs = tuple(ns.name(f"s{i}") for i in range(first))
    names: dict[int, str] = dict(enumerate(inputs))
    widths: dict[int, int] = {i: 1 for i in range(first)}
    for reserved in ("c", "c0", "c_prev", "c_prev_prev", "reduction_prev", "project_prev"):
        ns.name(reserved)
    for reserved in ("preprocess0", "preprocess1", "drop_path"):
        ns.name(reserved)
    has_drop_path = arch.skeleton != "nb201"

    def width_of(index: int) -> Width:
        if index == 0 and arch.skeleton == "nasnet":
            return Width("c0")
        return Width("c", widths[index])

    nodes = []
    for node in cell.nodes:
        edges = []
        for position, edge in enumerate(node.edges):
            op = ops.CELL_OPS[edge.op]
            source = edge.source.index
            stride = 2 if reduction and source < first else 1
            c_in = width_of(source)
            module = _edge_module(arch.skeleton, op, stride, c_in != Width("c"))
            # slim drops every op but 'none'; DARTS every op that is not an Identity
            nasnet = arch.skeleton == "nasnet"
            dropped = op.kind != "identity" if nasnet else module != "identity"
            edges.append(
                EdgePlan(
                    name=ns.name(f"s{node.index}_{position}"),
                    op=op.name,
                    module=module,
                    kernel=op.kernel,
                    dilation=op.dilation,
                    stride=stride,
                    source=names[source],
                    source_index=source,
                    c_in=c_in,
                    drop_path=has_drop_path and dropped,
                )
            )
        width = len(node.edges) if node.combine == "concat" else 1
        names[node.index] = ns.name(f"s{node.index}")
        widths[node.index] = width
        nodes.append(NodePlan(names[node.index], node.index, node.combine, tuple(edges), width))

    outputs = []
    last = cell.nodes[-1].index
    if arch.skeleton == "nasnet":
        target = Width("c", widths[last])
        for ref in cell.output:
            i = ref.index
            c_in = width_of(i)
            if reduction and i < first:
                module = "factorized_norelu"
            elif c_in == target:
                module = "none"
            elif c_in.var == "c0":
                module = "convbn_if_differs"
            else:
                module = "convbn"
            name = None if module == "none" else ns.name(f"out_s{i}")
            outputs.append(OutPlan(names[i], i, name, module, c_in, target))
        out_mult = len(cell.output) * widths[last]
    else:
        out_mult = 0
        for ref in cell.output:
            i = ref.index
            c_in = width_of(i)
            module = "factorized" if reduction and i < first else "none"
            name = None if module == "none" else ns.name(f"out_s{i}")
            outputs.append(OutPlan(names[i], i, name, module, c_in, c_in))
            out_mult += widths[i]
    return CellClassPlan(
        kind=kind,
        class_name=class_name,
        reduction=reduction,
        inputs=inputs,
        nodes=tuple(nodes),
        outputs=tuple(outputs),
        out_mult=out_mult,
        drop_path=has_drop_path,
    )


def _helpers(arch: CellsArch, classes: list[CellClassPlan], aux: bool) -> tuple[str, ...]:
    """The op classes the file needs, in the order it defines them."""
    modules = {e.module for c in classes for n in c.nodes for e in n.edges}
    outs = {o.module for c in classes for o in c.outputs}
    need = set()
    if arch.skeleton != "nb201":
        need |= {"DropPath", "ReLUConvBN", "FactorizedReduce"}  # the preprocessing
    else:
        need |= {"ReLUConvBN", "ResNetBasicBlock"}
    if aux:
        need.add("AuxiliaryHead")
    table = {
        "conv": "ReLUConvBN",
        "sep": "SepConv",
        "dil": "DilConv",
        "conv_pair": "ConvPair",
        "zero": "Zero",
        "skip": "Skip",
        "factorized": "FactorizedReduce",
        "convbn": "ConvBN",
        "slim_avgpool": "AvgPool",
        "slim_maxpool": "MaxPool",
        "avgpool_projected": "ReLUConvBN",
        "maxpool_projected": "ReLUConvBN",
    }
    need |= {table[m] for m in modules if m in table}
    if outs & {"convbn", "convbn_if_differs"} or need & {"AvgPool", "MaxPool"}:
        need.add("ConvBN")
    if outs & {"factorized", "factorized_norelu"}:
        need.add("FactorizedReduce")
    return tuple(h for h in HELPERS if h in need)


# --- the network -------------------------------------------------------------------------


def _halve(hw: HW) -> HW:
    return same_out(hw[0], 2), same_out(hw[1], 2)


def _aux(after: str, shape: Shape, stride: int, bn_after_conv: bool, whole: bool) -> AuxPlan:
    """An auxiliary head reading `shape`: pool 5x5 at `stride`, 1x1 conv, then a conv to 768.

    slim's conv covers the whole pooled map (`whole`); DARTS' is 2x2.
    """
    _, h, w = shape
    pool = (min(5, h), min(5, w))
    pooled = ((h - pool[0]) // stride + 1, (w - pool[1]) // stride + 1)
    conv = pooled if whole else (min(2, pooled[0]), min(2, pooled[1]))
    out_hw = (pooled[0] - conv[0] + 1, pooled[1] - conv[1] + 1)
    features = AUX_CHANNELS[1] * out_hw[0] * out_hw[1]
    return AuxPlan(after, shape, pool, stride, pooled, conv, out_hw, bn_after_conv, features)


def plan_cells(arch: CellsArch) -> CellsPlan:
    skeleton = arch.skeleton
    module_ns = Namespace()
    for helper in HELPERS:  # the op classes keep their names; the rest steer clear
        module_ns.name(helper)
    n = int(arch.option("n"))
    filters = int(arch.option("filters"))
    stem = str(arch.option("stem")) if skeleton != "nb201" else "cifar"

    if skeleton == "nb201":
        class_names = {"cell": module_ns.name("Cell")}
        network = module_ns.name("TinyNetwork")
    else:
        class_names = {
            "normal": module_ns.name("NormalCell"),
            "reduction": module_ns.name("ReductionCell"),
        }
        if skeleton == "nasnet":
            network = module_ns.name("NASNet")
        else:
            network = module_ns.name("NetworkImageNet" if stem == "imagenet" else "NetworkCIFAR")
    classes = [
        _plan_cell_class(arch, kind, class_names[kind]) for kind in ops.SKELETONS[skeleton].sections
    ]
    by_kind = {c.kind: c for c in classes}
    net_ns = Namespace()
    for reserved in ("num_classes", "aux_head", "drop_path", "dropout", "logits", "out"):
        net_ns.name(reserved)
    steps: list[StepPlan] = []
    aux: AuxPlan | None = None

    if skeleton == "nasnet":
        steps, aux, dropout = _plan_nasnet(arch, n, filters, stem, by_kind, net_ns)
        drop_path = True
    elif skeleton == "darts":
        steps, aux = _plan_darts(arch, n, filters, stem, by_kind, net_ns)
        dropout, drop_path = 0.0, True
    else:
        steps = _plan_nb201(arch, n, filters, by_kind, net_ns)
        dropout, drop_path = 0.0, False
    last = steps[-1]
    return CellsPlan(
        skeleton=skeleton,
        stem=stem,
        input_shape=arch.input_shape,
        classes=arch.classes,
        network=network,
        helpers=_helpers(arch, classes, aux is not None),
        cell_classes=tuple(classes),
        steps=tuple(steps),
        aux=aux,
        head_input=last.name,
        head_channels=last.out_shape[0],
        dropout=dropout,
        drop_path=drop_path,
    )


def _cell_step(
    name: str,
    cls: CellClassPlan,
    inputs: tuple[str, str],
    prev: Shape,
    curr: Shape,
    c: int,
    reduction_prev: bool,
    project_prev: bool,
) -> StepPlan:
    hw = _halve(curr[1:]) if cls.reduction else curr[1:]
    return StepPlan(
        name=name,
        module="cell",
        inputs=inputs,
        in_shapes=(prev, curr),
        out_shape=(cls.out_mult * c, *hw),
        cls=cls.class_name,
        kind=cls.kind,
        c=c,
        reduction_prev=reduction_prev,
        project_prev=project_prev,
    )


def _plan_nasnet(arch, n, filters, stem, by_kind, ns):
    """slim's _build_nasnet_base (and _imagenet_stem / the CIFAR stem)."""
    _, in_h, in_w = arch.input_shape
    multiplier = int(arch.option("stem_multiplier"))
    skip_reduction_input = bool(arch.option("skip_reduction_input"))
    normal, reduction = by_kind["normal"], by_kind["reduction"]
    steps: list[StepPlan] = []
    # cell_outputs holds (variable, shape), None standing for slim's initial None.
    outputs: list[tuple[str, Shape] | None] = [None]

    def run_cell(name: str, cls: CellClassPlan, c: int, prev, curr) -> StepPlan:
        curr_name, curr_shape = curr
        if prev is None:  # slim: prev_layer None -> the current input, as it is
            prev_name, prev_shape = curr_name, curr_shape
            reduce_prev = project_prev = False
        else:
            prev_name, prev_shape = prev
            reduce_prev = prev_shape[1:] != curr_shape[1:]
            project_prev = not reduce_prev and prev_shape[0] != c
        step = _cell_step(
            name, cls, (prev_name, curr_name), prev_shape, curr_shape, c, reduce_prev, project_prev
        )
        steps.append(step)
        return step

    def width(scaling_exp: int) -> int:  # int(filters * filter_scaling), filter_scaling = 2**exp
        return max(MIN_WIDTH, int(filters * 2.0**scaling_exp))

    if stem == "cifar":
        stem_width = filters * multiplier
        name = ns.name("stem")
        shape = (stem_width, in_h, in_w)
        steps.append(StepPlan(name, "stem", ("x",), (arch.input_shape,), shape, padding=(1, 1)))
        outputs.append((name, shape))
    else:
        stem_width = int(32 * multiplier)
        padding = (1 if in_h < 3 else 0, 1 if in_w < 3 else 0)  # rule 5
        hw = ((in_h + 2 * padding[0] - 3) // 2 + 1, (in_w + 2 * padding[1] - 3) // 2 + 1)
        name = ns.name("conv0")
        shape = (stem_width, *hw)
        steps.append(StepPlan(name, "conv0", ("x",), (arch.input_shape,), shape, padding=padding))
        outputs.append((name, shape))
        for k, exp in enumerate((-2, -1)):  # two stem cells, filter scaling 1/4 then 1/2
            step = run_cell(
                ns.name(f"cell_stem_{k}"), reduction, width(exp), outputs[-2], outputs[-1]
            )
            outputs.append((step.name, step.out_shape))

    num_cells = 3 * n
    reduction_indices = (n, 2 * n)  # calc_reduction_layers(3n, 2)
    aux_cell = reduction_indices[1] - 1
    exp = 0
    aux = None
    for cell_num in range(num_cells):
        prev = outputs[-2]
        if cell_num in reduction_indices:
            exp += 1
            step = run_cell(
                ns.name(f"reduction_cell_{reduction_indices.index(cell_num)}"),
                reduction,
                width(exp),
                outputs[-2],
                outputs[-1],
            )
            outputs.append((step.name, step.out_shape))
        if not skip_reduction_input:
            prev = outputs[-2]
        step = run_cell(ns.name(f"cell_{cell_num}"), normal, width(exp), prev, outputs[-1])
        outputs.append((step.name, step.out_shape))
        if cell_num == aux_cell:
            aux = _aux(step.name, step.out_shape, 3, True, True)
    dropout = 0.5 if stem == "imagenet" else 0.0  # slim: dense_dropout_keep_prob 0.5 / 1.0
    return steps, aux, dropout


def _plan_darts(arch, n, filters, stem, by_kind, ns):
    """DARTS' NetworkCIFAR / NetworkImageNet: layers = 3n + 2, reductions at layers // 3
    and 2 * layers // 3 (they replace normal cells)."""
    _, in_h, in_w = arch.input_shape
    steps: list[StepPlan] = []
    c = max(MIN_WIDTH, filters)
    if stem == "cifar":
        name = ns.name("stem")
        shape = (3 * c, in_h, in_w)  # stem_multiplier 3
        steps.append(StepPlan(name, "stem", ("x",), (arch.input_shape,), shape, padding=(1, 1)))
        s0 = s1 = (name, shape)
        reduction_prev = False
    else:
        half = max(1, c // 2)
        hw = _halve(_halve((in_h, in_w)))
        name0 = ns.name("stem0")
        shape0 = (c, *hw)
        steps.append(
            StepPlan(name0, "stem0", ("x",), (arch.input_shape,), shape0, c=half, padding=(1, 1))
        )
        name1 = ns.name("stem1")
        shape1 = (c, *_halve(hw))
        steps.append(StepPlan(name1, "stem1", (name0,), (shape0,), shape1, padding=(1, 1)))
        s0, s1 = (name0, shape0), (name1, shape1)
        reduction_prev = True
    layers = 3 * n + 2
    reductions = (layers // 3, 2 * layers // 3)
    aux = None
    c_curr = c
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c_curr *= 2
        cls = by_kind["reduction" if reduction else "normal"]
        step = _cell_step(
            ns.name(f"cell_{i}"), cls, (s0[0], s1[0]), s0[1], s1[1], c_curr, reduction_prev, False
        )
        steps.append(step)
        s0, s1 = s1, (step.name, step.out_shape)
        reduction_prev = reduction
        if i == reductions[1]:
            if stem == "cifar":
                aux = _aux(step.name, step.out_shape, 3, True, False)
            else:
                aux = _aux(step.name, step.out_shape, 2, False, False)
    return steps, aux


def _plan_nb201(arch, n, filters, by_kind, ns):
    """NAS-Bench-201's TinyNetwork: n cells at C, a residual block, n at 2C, a block, n at 4C."""
    _, in_h, in_w = arch.input_shape
    cls = by_kind["cell"]
    c = max(MIN_WIDTH, filters)
    name = ns.name("stem")
    shape = (c, in_h, in_w)
    steps = [StepPlan(name, "stem", ("x",), (arch.input_shape,), shape, padding=(1, 1))]
    index = 0
    for stage in range(3):
        if stage:
            block_name = ns.name(f"cell_{index}")
            out = (shape[0] * 2, *_halve(shape[1:]))
            steps.append(
                StepPlan(
                    block_name,
                    "resblock",
                    (name,),
                    (shape,),
                    out,
                    cls="ResNetBasicBlock",
                    c=out[0],
                )
            )
            name, shape = block_name, out
            index += 1
        for _ in range(n):
            cell_name = ns.name(f"cell_{index}")
            out = (cls.out_mult * shape[0], *shape[1:])
            steps.append(
                StepPlan(
                    cell_name,
                    "cell",
                    (name,),
                    (shape,),
                    out,
                    cls=cls.class_name,
                    kind="cell",
                    c=shape[0],
                )
            )
            name, shape = cell_name, out
            index += 1
    return steps


# --- the cost model ------------------------------------------------------------------------


class _Counter:
    """Adds up parameters and multiply-adds of convolutions, batch norms and linear layers."""

    def __init__(self) -> None:
        self.params = 0
        self.macs = 0

    def conv(self, c_in: int, c_out: int, kernel: HW, out_hw: HW, groups: int = 1) -> None:
        p, m = conv_cost(c_in, c_out, kernel, out_hw, groups=groups)
        self.params += p
        self.macs += m

    def bn(self, channels: int) -> None:
        self.params += batchnorm_params(channels)

    def relu_conv_bn(self, c_in: int, c_out: int, kernel: int, out_hw: HW) -> None:
        self.conv(c_in, c_out, (kernel, kernel), out_hw)
        self.bn(c_out)

    def factorized_reduce(self, c_in: int, c_out: int, out_hw: HW) -> None:
        self.conv(c_in, c_out // 2, (1, 1), out_hw)
        self.conv(c_in, c_out - c_out // 2, (1, 1), out_hw)
        self.bn(c_out)

    def linear(self, c_in: int, c_out: int) -> None:
        p, m = linear_cost(c_in, c_out)
        self.params += p
        self.macs += m


def _edge_cost(count: _Counter, skeleton: str, e: EdgePlan, c_in: int, c: int, in_hw: HW) -> None:
    s, k = e.stride, e.kernel
    out_hw = (same_out(in_hw[0], s), same_out(in_hw[1], s))
    m = e.module
    if m in ("zero", "identity", "avgpool", "maxpool"):
        return
    if m == "conv":
        count.relu_conv_bn(c_in, c, k, out_hw)
    elif m == "sep":
        mid = c if skeleton == "nasnet" else c_in  # slim's first pointwise conv widens to c
        count.conv(c_in, c_in, (k, k), out_hw, groups=c_in)
        count.conv(c_in, mid, (1, 1), out_hw)
        count.bn(mid)
        count.conv(mid, mid, (k, k), out_hw, groups=mid)
        count.conv(mid, c, (1, 1), out_hw)
        count.bn(c)
    elif m == "dil":
        count.conv(c_in, c_in, (k, k), out_hw, groups=c_in)
        count.conv(c_in, c, (1, 1), out_hw)
        count.bn(c)
    elif m == "conv_pair":
        count.conv(c_in, c, (1, k), (in_hw[0], out_hw[1]))
        count.conv(c, c, (k, 1), out_hw)
        count.bn(c)
    elif m == "skip":  # slim's 'none'
        if s > 1 or c_in != c:
            count.relu_conv_bn(c_in, c, 1, out_hw)
    elif m == "factorized":
        count.factorized_reduce(c_in, c, out_hw)
    elif m == "convbn":
        count.relu_conv_bn(c_in, c, 1, out_hw)
    elif m in ("slim_avgpool", "slim_maxpool"):
        if c_in != c:
            count.relu_conv_bn(c_in, c, 1, out_hw)
    elif m in ("avgpool_projected", "maxpool_projected"):
        count.relu_conv_bn(c_in, c, 1, in_hw)
    else:  # pragma: no cover - the plan only makes the modules above
        raise AssertionError(m)


def _cell_cost(plan: CellsPlan, step: StepPlan, cls: CellClassPlan) -> _Counter:
    count = _Counter()
    c = step.c
    skeleton = plan.skeleton
    if skeleton == "nb201":
        c0 = c
        hw = step.in_shapes[0][1:]
    else:
        (c_pp, *_), (c_prev, *hw_list) = step.in_shapes
        hw = (hw_list[0], hw_list[1])
        if step.reduction_prev:
            count.factorized_reduce(c_pp, c, hw)
            c0 = c
        elif skeleton == "darts" or step.project_prev:
            count.relu_conv_bn(c_pp, c, 1, hw)
            c0 = c
        else:
            c0 = c_pp
        count.relu_conv_bn(c_prev, c, 1, hw)
    out_hw = _halve(hw) if cls.reduction else hw

    def value(w: Width) -> int:
        return c0 if w.var == "c0" else w.mult * c

    first = len(cls.inputs)
    for node in cls.nodes:
        for e in node.edges:
            in_hw = hw if e.source_index < first else out_hw
            _edge_cost(count, skeleton, e, value(e.c_in), c, in_hw)
    for o in cls.outputs:
        c_in, c_out = value(o.c_in), value(o.c_out)
        if o.module in ("factorized", "factorized_norelu"):
            count.factorized_reduce(c_in, c_out, out_hw)
        elif o.module == "convbn" or (o.module == "convbn_if_differs" and c_in != c_out):
            count.relu_conv_bn(c_in, c_out, 1, out_hw)
    return count


def cost_cells(
    plan: CellsPlan,
    num_classes: int | None = None,
    aux_head: bool = False,
    **overrides: object,
) -> Cost:
    """Parameters and multiply-adds of the network `build_model(**overrides)` builds."""
    allowed = {"drop_path", "dropout"} if plan.skeleton == "nasnet" else set()
    if plan.skeleton == "darts":
        allowed = {"drop_path"}
    if plan.skeleton == "nb201" and aux_head:
        raise TypeError("the nb201 skeleton has no auxiliary head")
    unknown = set(overrides) - allowed
    if unknown:
        raise TypeError(f"unexpected override(s): {', '.join(sorted(unknown))}")
    classes = plan.classes if num_classes is None else num_classes
    by_class = {c.class_name: c for c in plan.cell_classes}
    parts = []
    for step in plan.steps:
        count = _Counter()
        c_in = step.in_shapes[0][0]
        c_out, *hw = step.out_shape
        out_hw = (hw[0], hw[1])
        if step.module in ("stem", "conv0"):
            count.conv(c_in, c_out, (3, 3), out_hw)
            count.bn(c_out)
        elif step.module == "stem0":
            half = step.c
            mid_hw = _halve(step.in_shapes[0][1:])
            count.conv(c_in, half, (3, 3), mid_hw)
            count.bn(half)
            count.conv(half, c_out, (3, 3), out_hw)
            count.bn(c_out)
        elif step.module == "stem1":
            count.conv(c_in, c_out, (3, 3), out_hw)
            count.bn(c_out)
        elif step.module == "resblock":
            count.conv(c_in, c_out, (3, 3), out_hw)
            count.bn(c_out)
            count.conv(c_out, c_out, (3, 3), out_hw)
            count.bn(c_out)
            count.conv(c_in, c_out, (1, 1), out_hw)  # the shortcut: avg pool -> 1x1 conv
        else:
            count = _cell_cost(plan, step, by_class[step.cls])
        parts.append(PartCost(step.name, step.out_shape, count.params, count.macs))
        if aux_head and plan.aux is not None and step.name == plan.aux.after:
            a = plan.aux
            aux = _Counter()
            aux.relu_conv_bn(a.in_shape[0], AUX_CHANNELS[0], 1, a.pooled)
            aux.conv(AUX_CHANNELS[0], AUX_CHANNELS[1], a.conv, a.out_hw)
            if a.bn_after_conv:
                aux.bn(AUX_CHANNELS[1])
            aux.linear(a.features, classes)
            parts.append(PartCost("aux_head", (classes,), aux.params, aux.macs))
    head = _Counter()
    if plan.skeleton == "nb201":
        head.bn(plan.head_channels)  # lastact: BN -> ReLU
    head.linear(plan.head_channels, classes)
    parts.append(PartCost("classifier", (classes,), head.params, head.macs))
    return Cost.of(parts)
