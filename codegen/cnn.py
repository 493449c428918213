"""Lowering of a cnn architecture: each layer's module, shapes and forward inputs.

The plan is what both the template and the cost model read, so the generated
file and the cost model cannot disagree about a shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.grammar.ir import CnnArch

from .cost import Cost, PartCost, batchnorm_params, conv_cost, linear_cost
from .naming import Namespace
from .shapes import same_out, same_padding

Shape = tuple[int, int, int]  # channels, height, width


@dataclass(frozen=True)
class LayerPlan:
    name: str  # attribute and variable name, from the label (L3 -> l3)
    kind: str  # conv | sep | maxpool | avgpool
    in_shape: Shape  # after concatenating the inputs
    out_shape: Shape
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]  # symmetric padding given to the conv or pool
    pad: tuple[int, int, int, int] | None  # explicit (left, right, top, bottom) when uneven
    batchnorm: bool
    lrn: bool
    inputs: tuple[str, ...]  # variable names read; ("x",) for the image
    pad_inputs: bool  # the inputs differ in height or width: zero-pad before concatenating
    projection: bool = False  # a pooling layer with nF: 1x1 conv -> BN -> ReLU to F, then the pool


@dataclass(frozen=True)
class CnnPlan:
    input_shape: Shape
    classes: int
    layers: tuple[LayerPlan, ...]
    head_inputs: tuple[str, ...]  # the layers no other layer reads
    head_pad: bool
    head_channels: int

    @property
    def uses_sep(self) -> bool:
        return any(layer.kind == "sep" for layer in self.layers)

    @property
    def uses_projection(self) -> bool:
        return any(layer.projection for layer in self.layers)

    @property
    def uses_padding_helper(self) -> bool:
        return self.head_pad or any(layer.pad_inputs for layer in self.layers)

    @property
    def uses_uneven_avgpool(self) -> bool:
        """An average pool with uneven padding: nn.AvgPool2d cannot leave that out of its count."""
        return any(layer.kind == "avgpool" and layer.pad for layer in self.layers)

    @property
    def uses_functional(self) -> bool:
        return self.uses_padding_helper or self.uses_uneven_avgpool


def _concat_shape(shapes: list[Shape]) -> tuple[Shape, bool]:
    height = max(s[1] for s in shapes)
    width = max(s[2] for s in shapes)
    uneven = any((s[1], s[2]) != (height, width) for s in shapes)
    return (sum(s[0] for s in shapes), height, width), uneven


def plan_cnn(arch: CnnArch, namespace: Namespace | None = None) -> CnnPlan:
    ns = namespace or Namespace()
    names: dict[int, str] = {}
    shapes: dict[int, Shape] = {}
    read: set[int] = set()
    layers = []
    for layer in arch.layers:
        if layer.inputs:
            sources = [r.index for r in layer.inputs]
            read.update(sources)
            in_shape, uneven = _concat_shape([shapes[i] for i in sources])
            inputs = tuple(names[i] for i in sources)
        else:
            in_shape, uneven, inputs = arch.input_shape, False, ("x",)
        (before_h, after_h), (before_w, after_w) = (same_padding(k) for k in layer.kernel)
        even = before_h == after_h and before_w == after_w
        channels = layer.filters if layer.filters is not None else in_shape[0]
        out_shape = (
            channels,
            same_out(in_shape[1], layer.stride[0]),
            same_out(in_shape[2], layer.stride[1]),
        )
        names[layer.index] = ns.name(f"l{layer.index}")
        shapes[layer.index] = out_shape
        layers.append(
            LayerPlan(
                name=names[layer.index],
                kind=layer.kind,
                in_shape=in_shape,
                out_shape=out_shape,
                kernel=layer.kernel,
                stride=layer.stride,
                padding=(before_h, before_w) if even else (0, 0),
                pad=None if even else (before_w, after_w, before_h, after_h),
                batchnorm=layer.batchnorm,
                lrn=layer.lrn,
                inputs=inputs,
                pad_inputs=uneven,
                projection=layer.kind not in ("conv", "sep") and layer.filters is not None,
            )
        )
    terminal = [layer.index for layer in arch.layers if layer.index not in read]
    head_shape, head_pad = _concat_shape([shapes[i] for i in terminal])
    return CnnPlan(
        input_shape=arch.input_shape,
        classes=arch.classes,
        layers=tuple(layers),
        head_inputs=tuple(names[i] for i in terminal),
        head_pad=head_pad,
        head_channels=head_shape[0],
    )


def cost_cnn(plan: CnnPlan, num_classes: int | None = None) -> Cost:
    parts = []
    for layer in plan.layers:
        params, macs = _layer_cost(layer)
        parts.append(PartCost(layer.name, layer.out_shape, params, macs))
    classes = plan.classes if num_classes is None else num_classes
    params, macs = linear_cost(plan.head_channels, classes)
    parts.append(PartCost("classifier", (classes,), params, macs))
    return Cost.of(parts)


def _layer_cost(layer: LayerPlan) -> tuple[int, int]:
    """(parameters, multiply-adds) of one layer; pooling is free, its projection is not."""
    if layer.projection:  # the 1x1 conv runs at the input's resolution, before the pool
        c_out = layer.out_shape[0]
        params, macs = conv_cost(layer.in_shape[0], c_out, (1, 1), layer.in_shape[1:])
        return params + batchnorm_params(c_out), macs
    if layer.kind not in ("conv", "sep"):
        return 0, 0
    c_in, c_out, out_hw = layer.in_shape[0], layer.out_shape[0], layer.out_shape[1:]
    if layer.kind == "sep":
        depth_params, depth_macs = conv_cost(c_in, c_in, layer.kernel, out_hw, groups=c_in)
        point_params, point_macs = conv_cost(c_in, c_out, (1, 1), out_hw, bias=not layer.batchnorm)
        params, macs = depth_params + point_params, depth_macs + point_macs
    else:
        params, macs = conv_cost(c_in, c_out, layer.kernel, out_hw, bias=not layer.batchnorm)
    if layer.batchnorm:
        params += batchnorm_params(c_out)
    return params, macs
