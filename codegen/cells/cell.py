"""A cell class's plan: its nodes, each edge's module, and the output rule (rules 1-3)."""

from __future__ import annotations

from nasforge.grammar import ops
from nasforge.grammar.ir import CellsArch

from ..naming import Namespace
from .modules import edge_module
from .plan_types import CellClassPlan, EdgePlan, NodePlan, OutPlan, Width

_RESERVED = (
    "c",
    "c0",
    "c_prev",
    "c_prev_prev",
    "reduction_prev",
    "project_prev",
    "preprocess0",
    "preprocess1",
    "drop_path",
)


def plan_cell_class(arch: CellsArch, kind: str, class_name: str) -> CellClassPlan:
    skeleton = ops.SKELETONS[arch.skeleton]
    cell = arch.cell(kind)
    ns = Namespace()
    reduction = kind == "reduction"
    first = skeleton.inputs
    inputs = tuple(ns.name(f"s{i}") for i in range(first))
    names: dict[int, str] = dict(enumerate(inputs))
    widths: dict[int, int] = {i: 1 for i in range(first)}
    for reserved in _RESERVED:
        ns.name(reserved)
    nasnet = arch.skeleton == "nasnet"
    has_drop_path = arch.skeleton != "nb201"

    def width_of(index: int) -> Width:
        if index == 0 and nasnet:
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
            module = edge_module(arch.skeleton, op, stride, c_in != Width("c"))
            # slim drops every op but 'none'; DARTS every op that is not an Identity
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
    if nasnet:
        target = Width("c", widths[cell.nodes[-1].index])
        for ref in cell.output:
            i = ref.index
            stride = 2 if reduction and i < first else 1
            module = _nasnet_out_module(width_of(i), target, stride > 1)
            name = None if module == "none" else ns.name(f"out_s{i}")
            outputs.append(OutPlan(names[i], i, name, module, width_of(i), target, stride))
        out_mult = len(cell.output) * target.mult
    else:
        out_mult = 0
        for ref in cell.output:
            i = ref.index
            c_in = width_of(i)
            stride = 2 if reduction and i < first else 1
            module = "factorized" if stride > 1 else "none"
            name = None if module == "none" else ns.name(f"out_s{i}")
            outputs.append(OutPlan(names[i], i, name, module, c_in, c_in, stride))
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


def _nasnet_out_module(c_in: Width, target: Width, reduced_input: bool) -> str:
    """slim's _combine_unused_states for one output state (rule 3)."""
    if reduced_input:
        return "factorized_norelu"
    if c_in == target:
        return "none"
    if c_in.var == "c0":
        return "convbn_if_differs"
    return "convbn"
