"""The nasnet skeleton: slim's _build_nasnet_base (and _imagenet_stem / the CIFAR stem)."""

from __future__ import annotations

from nasforge.grammar.ir import CellsArch

from ..naming import Namespace
from .plan_types import MIN_WIDTH, CellClassPlan, Shape, SkeletonCode, Stack, StepPlan
from .stacking import aux_head, cell_step


def stack_nasnet(
    arch: CellsArch,
    n: int,
    filters: int,
    stem: str,
    by_kind: dict[str, CellClassPlan],
    ns: Namespace,
) -> Stack:
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
        step = cell_step(
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
            aux = aux_head(step.name, step.out_shape, 3, True, True)
    if stem == "imagenet":  # slim's ImageNet configs: dense_dropout_keep_prob 0.5, epsilon 1e-3
        return Stack(steps, aux, dropout=0.5, bn_eps=1e-3)
    return Stack(steps, aux)  # slim's cifar_config: keep_prob 1.0, epsilon 1e-5


NASNET = SkeletonCode(
    stack=stack_nasnet,
    networks={"cifar": "NASNet", "imagenet": "NASNet"},
    helpers=("DropPath", "ReLUConvBN", "FactorizedReduce"),  # the preprocessing
    overrides=frozenset({"drop_path", "dropout"}),
)
