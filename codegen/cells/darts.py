"""The darts skeleton: DARTS' NetworkCIFAR / NetworkImageNet (cnn/model.py)."""

from __future__ import annotations

from nasforge.grammar.ir import CellsArch

from ..naming import Namespace
from .plan_types import MIN_WIDTH, CellClassPlan, SkeletonCode, Stack, StepPlan
from .stacking import aux_head, cell_step, halve


def stack_darts(
    arch: CellsArch,
    n: int,
    filters: int,
    stem: str,
    by_kind: dict[str, CellClassPlan],
    ns: Namespace,
) -> Stack:
    """layers = 3n + 2, reductions at layers // 3 and 2 * layers // 3 (they replace
    normal cells)."""
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
        hw = halve(halve((in_h, in_w)))
        name0 = ns.name("stem0")
        shape0 = (c, *hw)
        steps.append(
            StepPlan(name0, "stem0", ("x",), (arch.input_shape,), shape0, c=half, padding=(1, 1))
        )
        name1 = ns.name("stem1")
        shape1 = (c, *halve(hw))
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
        step = cell_step(
            ns.name(f"cell_{i}"), cls, (s0[0], s1[0]), s0[1], s1[1], c_curr, reduction_prev, False
        )
        steps.append(step)
        s0, s1 = s1, (step.name, step.out_shape)
        reduction_prev = reduction
        if i == reductions[1]:
            if stem == "cifar":
                aux = aux_head(step.name, step.out_shape, 3, True, False)
            else:
                aux = aux_head(step.name, step.out_shape, 2, False, False)
    return Stack(steps, aux)


DARTS = SkeletonCode(
    stack=stack_darts,
    networks={"cifar": "NetworkCIFAR", "imagenet": "NetworkImageNet"},
    helpers=("DropPath", "ReLUConvBN", "FactorizedReduce"),  # the preprocessing
    overrides=frozenset({"drop_path"}),
)
