"""Pieces every skeleton uses to stack cells: sizes, a cell's step, an auxiliary head."""

from __future__ import annotations

from ..shapes import same_out
from .plan_types import AUX_CHANNELS, HW, AuxPlan, CellClassPlan, Shape, StepPlan


def halve(hw: HW) -> HW:
    return same_out(hw[0], 2), same_out(hw[1], 2)


def cell_step(
    name: str,
    cls: CellClassPlan,
    inputs: tuple[str, str],
    prev: Shape,
    curr: Shape,
    c: int,
    reduction_prev: bool,
    project_prev: bool,
) -> StepPlan:
    hw = halve(curr[1:]) if cls.reduction else curr[1:]
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


def aux_head(after: str, shape: Shape, stride: int, bn_after_conv: bool, whole: bool) -> AuxPlan:
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
