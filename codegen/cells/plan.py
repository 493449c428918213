"""plan_cells: the cell classes, then the network the architecture's skeleton stacks."""

from __future__ import annotations

from nasforge.grammar import ops
from nasforge.grammar.ir import CellsArch

from ..naming import Namespace
from .cell import plan_cell_class
from .darts import DARTS
from .modules import HELPERS, helpers_for
from .nasnet import NASNET
from .nb201 import NB201
from .plan_types import CellsPlan, SkeletonCode

# The skeleton table: one row per skeleton of the op table.
SKELETONS: dict[str, SkeletonCode] = {"nasnet": NASNET, "darts": DARTS, "nb201": NB201}

_CLASS_NAMES = {"normal": "NormalCell", "reduction": "ReductionCell", "cell": "Cell"}


def plan_cells(arch: CellsArch) -> CellsPlan:
    code = SKELETONS[arch.skeleton]
    module_ns = Namespace()
    for helper in HELPERS:  # the op classes keep their names; the rest steer clear
        module_ns.name(helper)
    sections = ops.SKELETONS[arch.skeleton].sections
    class_names = {kind: module_ns.name(_CLASS_NAMES[kind]) for kind in sections}
    options = {s.name: s.value for s in arch.options}
    stem = str(options.get("stem", "cifar"))  # nb201 has no stem option
    network = module_ns.name(code.networks[stem])
    classes = [plan_cell_class(arch, kind, class_names[kind]) for kind in sections]
    net_ns = Namespace()
    for reserved in ("num_classes", "aux_head", "drop_path", "dropout", "logits", "out"):
        net_ns.name(reserved)
    stack = code.stack(
        arch,
        int(options["n"]),
        int(options["filters"]),
        stem,
        {c.kind: c for c in classes},
        net_ns,
    )
    modules = [e.module for c in classes for n in c.nodes for e in n.edges]
    modules += [o.module for c in classes for o in c.outputs if o.name is not None]
    base = code.helpers + (("AuxiliaryHead",) if stack.aux is not None else ())
    last = stack.steps[-1]
    return CellsPlan(
        skeleton=arch.skeleton,
        stem=stem,
        input_shape=arch.input_shape,
        classes=arch.classes,
        network=network,
        helpers=helpers_for(base, modules),
        cell_classes=tuple(classes),
        steps=tuple(stack.steps),
        aux=stack.aux,
        head_input=last.name,
        head_channels=last.out_shape[0],
        dropout=stack.dropout,
        drop_path=code.drop_path,
        bn_eps=stack.bn_eps,
    )
