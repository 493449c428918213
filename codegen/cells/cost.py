"""The cost of a cells plan: each step's parameters and multiply-adds, without building it."""

from __future__ import annotations

from ..cost import Cost, PartCost
from ..shapes import same_out
from .counter import Counter
from .modules import MODULES, Site
from .plan import SKELETONS
from .plan_types import AUX_CHANNELS, HW, CellClassPlan, CellsPlan, StepPlan, Width
from .stacking import halve


def cost_cells(
    plan: CellsPlan,
    num_classes: int | None = None,
    aux_head: bool = False,
    **overrides: object,
) -> Cost:
    """Parameters and multiply-adds of the network `build_model(**overrides)` builds."""
    if aux_head and plan.aux is None:
        raise TypeError(f"the {plan.skeleton} skeleton has no auxiliary head")
    unknown = set(overrides) - SKELETONS[plan.skeleton].overrides
    if unknown:
        raise TypeError(f"unexpected override(s): {', '.join(sorted(unknown))}")
    classes = plan.classes if num_classes is None else num_classes
    by_class = {c.class_name: c for c in plan.cell_classes}
    parts = []
    for step in plan.steps:
        if step.module == "cell":
            count = _cell_cost(plan, step, by_class[step.cls])
        else:
            count = _stem_cost(step)
        parts.append(PartCost(step.name, step.out_shape, count.params, count.macs))
        if aux_head and plan.aux is not None and step.name == plan.aux.after:
            parts.append(_aux_cost(plan, classes))
    head = Counter()
    if plan.skeleton == "nb201":
        head.bn(plan.head_channels)  # lastact: BN -> ReLU
    head.linear(plan.head_channels, classes)
    parts.append(PartCost("classifier", (classes,), head.params, head.macs))
    return Cost.of(parts)


def _stem_cost(step: StepPlan) -> Counter:
    """A stem piece or NAS-Bench-201's residual block."""
    count = Counter()
    c_in = step.in_shapes[0][0]
    c_out, *hw = step.out_shape
    out_hw = (hw[0], hw[1])
    if step.module == "stem0":
        half = step.c
        count.conv(c_in, half, (3, 3), halve(step.in_shapes[0][1:]))
        count.bn(half)
        count.conv(half, c_out, (3, 3), out_hw)
        count.bn(c_out)
    elif step.module == "resblock":
        count.conv(c_in, c_out, (3, 3), out_hw)
        count.bn(c_out)
        count.conv(c_out, c_out, (3, 3), out_hw)
        count.bn(c_out)
        count.conv(c_in, c_out, (1, 1), out_hw)  # the shortcut: avg pool -> 1x1 conv
    else:  # stem | conv0 | stem1: one 3x3 conv -> BN
        count.conv(c_in, c_out, (3, 3), out_hw)
        count.bn(c_out)
    return count


def _aux_cost(plan: CellsPlan, classes: int) -> PartCost:
    a = plan.aux
    assert a is not None
    aux = Counter()
    aux.relu_conv_bn(a.in_shape[0], AUX_CHANNELS[0], 1, a.pooled)
    aux.conv(AUX_CHANNELS[0], AUX_CHANNELS[1], a.conv, a.out_hw)
    if a.bn_after_conv:
        aux.bn(AUX_CHANNELS[1])
    aux.linear(a.features, classes)
    return PartCost("aux_head", (classes,), aux.params, aux.macs)


def _cell_cost(plan: CellsPlan, step: StepPlan, cls: CellClassPlan) -> Counter:
    count = Counter()
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
    out_hw = halve(hw) if cls.reduction else hw

    def value(w: Width) -> int:
        return c0 if w.var == "c0" else w.mult * c

    first = len(cls.inputs)
    for node in cls.nodes:
        for e in node.edges:
            in_hw: HW = hw if e.source_index < first else out_hw
            edge_hw = (same_out(in_hw[0], e.stride), same_out(in_hw[1], e.stride))
            site = Site(value(e.c_in), c, e.kernel, e.stride, in_hw, edge_hw)
            MODULES[e.module].cost(count, site)
    for o in cls.outputs:
        if o.name is not None:
            in_hw = hw if o.source_index < first else out_hw
            site = Site(value(o.c_in), value(o.c_out), 1, o.stride, in_hw, out_hw)
            MODULES[o.module].cost(count, site)
    return count
