"""The nb201 skeleton: NAS-Bench-201's TinyNetwork."""

from __future__ import annotations

from nasforge.grammar.ir import CellsArch

from ..naming import Namespace
from .plan_types import MIN_WIDTH, CellClassPlan, SkeletonCode, Stack, StepPlan
from .stacking import halve


def stack_nb201(
    arch: CellsArch,
    n: int,
    filters: int,
    stem: str,
    by_kind: dict[str, CellClassPlan],
    ns: Namespace,
) -> Stack:
    """n cells at C, a residual block, n at 2C, a block, n at 4C."""
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
            out = (shape[0] * 2, *halve(shape[1:]))
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
    return Stack(steps)


NB201 = SkeletonCode(
    stack=stack_nb201,
    networks={"cifar": "TinyNetwork"},
    helpers=("ReLUConvBN", "ResNetBasicBlock"),  # the stem's reductions
    overrides=frozenset(),
)
