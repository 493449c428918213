"""cnn spaces: the NAS paper's layer-by-layer networks with anchors (Zoph & Le 2017, §3.1-3.3).

Each layer i decides, in the paper's order (its Figure 4): its anchor point
(one yes/no slot per earlier layer j: does Lj feed Li), then filter height,
filter width, stride height, stride width, and filters. A slot with a single
choice is left out of the sequence (v1's stride is always 1).

Pooling (the paper's v3 space) is one more choice of the filters slot,
`maxpool`: a pooling layer keeps its input's channels, so a separate
"layer kind" slot would leave the filters decision meaningless for it and
break the one-to-one map between decisions and strings that log-probabilities
recomputed from text rely on.

Every decision sequence is a valid network: layers use 'same' padding, so a
stride never shrinks an image below 1 pixel (out = ceil(in / stride)), and
inputs of different sizes are zero-padded before concatenation.
"""

from __future__ import annotations

from collections.abc import Sequence

from nasforge.grammar import limits, ops, validate
from nasforge.grammar.ir import Arch, CnnArch, Layer, Ref

from .space import ANCHOR_CHOICES, Slot, Space, Table

FIELDS = ("kernel_h", "kernel_w", "stride_h", "stride_w", "filters")


class CnnSpace(Space):
    family = "cnn"

    def __init__(
        self,
        name: str,
        doc: str,
        *,
        input_shape: tuple[int, int, int],
        classes: int,
        kernel_h: tuple[int, ...],
        kernel_w: tuple[int, ...],
        stride_h: tuple[int, ...],
        stride_w: tuple[int, ...],
        filters: tuple[int, ...],
        pooling: tuple[str, ...],
        depth: tuple[int, int, int | None, int | None],  # start, max, step, every
    ) -> None:
        super().__init__(name, doc)
        self.input_shape = input_shape
        self.classes = classes
        self.choices: dict[str, tuple[str, ...]] = {
            "kernel_h": tuple(str(k) for k in kernel_h),
            "kernel_w": tuple(str(k) for k in kernel_w),
            "stride_h": tuple(str(s) for s in stride_h),
            "stride_w": tuple(str(s) for s in stride_w),
            "filters": tuple(f"n{f}" for f in filters) + pooling,
        }
        self.default_depth, self.max_depth, self.depth_step, self.depth_every = depth

    @classmethod
    def read(cls, name: str, doc: str, table: Table) -> CnnSpace:
        shape = table.shape("input")
        classes = table.integer("classes", low=2, high=limits.MAX_CLASSES)
        depth = table.table("depth")
        max_depth = depth.integer("max", high=limits.MAX_LAYERS)
        start = depth.integer("start", max_depth, high=max_depth)
        step = depth.optional_integer("step")
        every = depth.optional_integer("every")
        layer = table.table("layer")
        kernel, stride = limits.MAX_KERNEL, limits.MAX_STRIDE
        pools = {name: kind for name, kind in ops.LAYER_KINDS.items() if not kind.has_filters}
        pooling = layer.names("pooling", pools, [], empty=True)
        return cls(
            name,
            doc,
            input_shape=shape,
            classes=classes,
            kernel_h=layer.integers("kernel_h", high=kernel),
            kernel_w=layer.integers("kernel_w", high=kernel),
            stride_h=layer.integers("stride_h", [1], high=stride),
            stride_w=layer.integers("stride_w", [1], high=stride),
            filters=layer.integers("filters", high=limits.MAX_FILTERS),
            pooling=pooling,
            depth=(start, max_depth, step, every),
        )

    # --- the sequence ----------------------------------------------------------------

    def _layer_slots(self, index: int) -> list[Slot]:
        slots = [
            Slot(f"L{index}.anchor.L{j}", "anchor", ANCHOR_CHOICES, source=j, target=index)
            for j in range(1, index)
        ]
        slots.extend(
            Slot(f"L{index}.{field}", "choice", self.choices[field])
            for field in FIELDS
            if len(self.choices[field]) > 1
        )
        return slots

    def _build_slots(self, depth: int | None) -> list[Slot]:
        assert depth is not None
        return [slot for index in range(1, depth + 1) for slot in self._layer_slots(index)]

    def layer_starts(self, depth: int | None = None) -> tuple[int, ...]:
        depth = self.check_depth(depth)
        assert depth is not None
        starts, position = [], 0
        for index in range(1, depth + 1):
            starts.append(position)
            position += len(self._layer_slots(index))
        return tuple(starts)

    # --- decisions -> architecture ----------------------------------------------------

    def to_arch(self, decisions: Sequence[int], depth: int | None = None) -> Arch:
        self.check_decisions(decisions, depth)
        count = self.check_depth(depth)
        assert count is not None
        values = [int(v) for v in decisions]
        searched = [f for f in FIELDS if len(self.choices[f]) > 1]
        position = 0  # walks the sequence in slot order: anchors, then the searched fields
        layers = []
        for index in range(1, count + 1):
            anchors = values[position : position + index - 1]
            position += index - 1
            inputs = tuple(Ref(j) for j, on in enumerate(anchors, start=1) if on)
            label = {field: self.choices[field][0] for field in FIELDS}
            for field in searched:
                label[field] = self.choices[field][values[position]]
                position += 1
            kernel = (int(label["kernel_h"]), int(label["kernel_w"]))
            stride = (int(label["stride_h"]), int(label["stride_w"]))
            filters = label["filters"]
            if filters.startswith("n"):
                layer = Layer(index, "conv", kernel, stride, int(filters[1:]), inputs=inputs)
            else:  # a pooling choice keeps its input's channels
                layer = Layer(index, filters, kernel, stride, None, inputs=inputs)
            layers.append(layer)
        return validate(CnnArch(self.input_shape, self.classes, tuple(layers)))

    # --- architecture -> decisions ----------------------------------------------------

    def decisions_of(self, arch: Arch) -> tuple[tuple[int, ...], int | None]:
        if not isinstance(arch, CnnArch):
            raise self.mismatch(f"a {arch.family} architecture is not a cnn", arch.pos, ("cnn",))
        self.check_image_header(arch, self.input_shape, self.classes)
        if arch.lr is not None:
            raise self.mismatch("a learning rate (lr) is not a decision", arch.pos)
        assert self.max_depth is not None
        depth = len(arch.layers)
        if depth > self.max_depth:
            raise self.mismatch(
                f"{depth} layers is more than {self.max_depth}", arch.layers[-1].pos
            )
        decisions: list[int] = []
        for layer in arch.layers:
            decisions.extend(self._layer_decisions(layer))
        return tuple(decisions), depth

    def _layer_decisions(self, layer: Layer) -> list[int]:
        name = f"L{layer.index}"
        if not layer.batchnorm or layer.lrn:
            flags = " ".join(
                f for f, on in (("nobn", not layer.batchnorm), ("lrn", layer.lrn)) if on
            )
            raise self.mismatch(f"{name}'s flag {flags} is not a decision", layer.pos)
        filters = f"n{layer.filters}" if layer.kind == "conv" else layer.kind
        labels = {
            "kernel_h": str(layer.kernel[0]),
            "kernel_w": str(layer.kernel[1]),
            "stride_h": str(layer.stride[0]),
            "stride_w": str(layer.stride[1]),
            "filters": filters,
        }
        reads = {ref.index for ref in layer.inputs}
        decisions = [int(j in reads) for j in range(1, layer.index)]
        for field in FIELDS:
            choices = self.choices[field]
            slot = f"{name}.{field}"
            if labels[field] not in choices:
                raise self.outside(slot, labels[field], choices, layer.pos)
            if len(choices) > 1:
                decisions.append(choices.index(labels[field]))
        return decisions
