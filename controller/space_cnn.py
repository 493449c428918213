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

ENAS's macro space (Pham et al. 2018, section 2.3) needs three more settings, all
optional, so the NAS paper's spaces read as before:

- `ops`: a layer-op slot in place of the kernel and pooling choices. Each choice is a
  layer kind with its kernel (`conv 3x3`, `sep 5x5`, `maxpool 3x3`); a pooling op takes
  the layer's filter count too (`maxpool 3x3 n36`, ENAS's pool branch, which projects
  to out_filters), so every op outputs the same width and the filters decision means
  the same for every op.
- `chain`: each layer reads the one before it, as ENAS's layers do; the anchors to the
  layers before that are the decisions (ENAS's skip connections).
- `reductions`: the layers that halve the resolution (stride 2; all others stride 1).
  A layer reads only the layers at its input's resolution: those from the last
  reduction up to the layer before it (the language zero-pads smaller maps up to the
  largest before concatenating, so a skip across a reduction would undo it).

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
OP_FIELDS = ("op", "stride_h", "stride_w", "filters")  # a space with `ops`


class CnnSpace(Space):
    family = "cnn"

    def __init__(
        self,
        name: str,
        doc: str,
        *,
        input_shape: tuple[int, int, int],
        classes: int,
        kernel_h: tuple[int, ...] = (),
        kernel_w: tuple[int, ...] = (),
        stride_h: tuple[int, ...] = (1,),
        stride_w: tuple[int, ...] = (1,),
        filters: tuple[int, ...],
        pooling: tuple[str, ...] = (),
        depth: tuple[int, int, int | None, int | None],  # start, max, step, every
        layer_ops: tuple[str, ...] = (),  # "KIND HxW" labels; replaces kernels and pooling
        chain: bool = False,
        reductions: tuple[int, ...] = (),  # layers with stride 2; the others stride 1
    ) -> None:
        super().__init__(name, doc)
        self.input_shape = input_shape
        self.classes = classes
        self.layer_ops = {label: _parse_op(label) for label in layer_ops}
        self.chain = chain
        self.reductions = tuple(sorted(reductions))
        self.fields = OP_FIELDS if layer_ops else FIELDS
        self.choices: dict[str, tuple[str, ...]] = {
            "op": tuple(layer_ops),
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
        layer_ops = _read_ops(layer)
        kernels: dict[str, tuple[int, ...]] = {"kernel_h": (), "kernel_w": ()}
        pooling: tuple[str, ...] = ()
        if not layer_ops:
            kernels = {key: layer.integers(key, high=kernel) for key in kernels}
            pools = {n: kind for n, kind in ops.LAYER_KINDS.items() if not kind.has_filters}
            pooling = layer.names("pooling", pools, [], empty=True)
        reductions: tuple[int, ...] = ()
        if "reductions" in layer.data:
            _exclusive(layer, "reductions", ("stride_h", "stride_w"))
            reductions = layer.integers("reductions", high=max_depth)
        return cls(
            name,
            doc,
            input_shape=shape,
            classes=classes,
            kernel_h=kernels["kernel_h"],
            kernel_w=kernels["kernel_w"],
            stride_h=layer.integers("stride_h", [1], high=stride),
            stride_w=layer.integers("stride_w", [1], high=stride),
            filters=layer.integers("filters", high=limits.MAX_FILTERS),
            pooling=pooling,
            depth=(start, max_depth, step, every),
            layer_ops=layer_ops,
            chain=layer.boolean("chain", False),
            reductions=reductions,
        )

    # --- the layers a layer may read ---------------------------------------------------

    def sources(self, index: int) -> tuple[int, ...]:
        """The layers layer `index` may read: every earlier one, or, with reductions,
        those at its input's resolution (from the last reduction up to L{index-1})."""
        first = max((r for r in self.reductions if r < index), default=1)
        return tuple(range(first, index))

    def anchor_sources(self, index: int) -> tuple[int, ...]:
        """The layers whose anchor to layer `index` is a decision (chain: not the previous)."""
        sources = self.sources(index)
        return sources[:-1] if self.chain and sources else sources

    def stride(self, index: int) -> tuple[int, int] | None:
        """Layer `index`'s stride where the space fixes it (reductions), else None."""
        if not self.reductions:
            return None
        return (2, 2) if index in self.reductions else (1, 1)

    # --- the sequence ----------------------------------------------------------------

    def _layer_slots(self, index: int) -> list[Slot]:
        slots = [
            Slot(f"L{index}.anchor.L{j}", "anchor", ANCHOR_CHOICES, source=j, target=index)
            for j in self.anchor_sources(index)
        ]
        slots.extend(
            Slot(f"L{index}.{field}", "choice", self.choices[field])
            for field in self.fields
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
        searched = [f for f in self.fields if len(self.choices[f]) > 1]
        position = 0  # walks the sequence in slot order: anchors, then the searched fields
        layers = []
        for index in range(1, count + 1):
            optional = self.anchor_sources(index)
            anchors = values[position : position + len(optional)]
            position += len(optional)
            reads = {j for j, on in zip(optional, anchors, strict=True) if on}
            if self.chain and index > 1:
                reads.add(index - 1)
            inputs = tuple(Ref(j) for j in sorted(reads))
            label = {field: self.choices[field][0] for field in self.fields}
            for field in searched:
                label[field] = self.choices[field][values[position]]
                position += 1
            stride = self.stride(index) or (int(label["stride_h"]), int(label["stride_w"]))
            filters = label["filters"]
            if self.layer_ops:  # every op takes the filter count (a pool projects to it)
                kind, kernel = self.layer_ops[label["op"]]
                layer = Layer(index, kind, kernel, stride, int(filters[1:]), inputs=inputs)
            else:
                kernel = (int(label["kernel_h"]), int(label["kernel_w"]))
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
        reads = {ref.index for ref in layer.inputs}
        self._check_reads(layer, reads)
        labels = self._labels(layer)
        decisions = [int(j in reads) for j in self.anchor_sources(layer.index)]
        for field in self.fields:
            choices = self.choices[field]
            slot = f"{name}.{field}"
            if labels[field] not in choices:
                raise self.outside(slot, labels[field], choices, layer.pos)
            if len(choices) > 1:
                decisions.append(choices.index(labels[field]))
        return decisions

    def _check_reads(self, layer: Layer, reads: set[int]) -> None:
        name, sources = f"L{layer.index}", self.sources(layer.index)
        beyond = sorted(reads - set(sources))
        if beyond:
            allowed = f"L{sources[0]}..L{sources[-1]}" if sources else "no layer"
            raise self.mismatch(
                f"{name} reads L{beyond[0]}, but it may read only {allowed} (the layers at "
                "its input's resolution)",
                layer.pos,
            )
        if self.chain and layer.index > 1 and layer.index - 1 not in reads:
            raise self.mismatch(
                f"{name} does not read L{layer.index - 1}: every layer reads the one before it",
                layer.pos,
            )
        fixed = self.stride(layer.index)
        if fixed is not None and layer.stride != fixed:
            given, wanted = "x".join(map(str, layer.stride)), "x".join(map(str, fixed))
            raise self.mismatch(f"{name}'s stride is {given}, not {wanted}", layer.pos)

    def _labels(self, layer: Layer) -> dict[str, str]:
        """The label of each field's choice that `layer` has."""
        if layer.kind == "conv" or (self.layer_ops and layer.filters is not None):
            filters = f"n{layer.filters}"
        elif layer.filters is None:
            filters = layer.kind  # a pooling choice (or a layer the space cannot hold)
        else:
            filters = f"{layer.kind} n{layer.filters}"
        labels = {
            "op": f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]}",
            "kernel_h": str(layer.kernel[0]),
            "kernel_w": str(layer.kernel[1]),
            "stride_h": str(layer.stride[0]),
            "stride_w": str(layer.stride[1]),
            "filters": filters,
        }
        if self.reductions:  # the stride is checked against the reductions instead
            labels["stride_h"], labels["stride_w"] = "1", "1"
        return labels


# --- reading the `ops` key -----------------------------------------------------------------


def _parse_op(label: str) -> tuple[str, tuple[int, int]]:
    """A layer op `KIND HxW` as (kind, kernel); ValueError if it is not one."""
    kind, kernel = ops.split_layer_op(label)
    if not all(1 <= k <= limits.MAX_KERNEL for k in kernel):
        raise ValueError(f"{label!r}: a kernel side is from 1 to {limits.MAX_KERNEL}")
    return kind, kernel


def _read_ops(layer: Table) -> tuple[str, ...]:
    if "ops" not in layer.data:
        layer.read.add("ops")
        return ()
    _exclusive(layer, "ops", ("kernel_h", "kernel_w", "pooling"))
    value = layer.value("ops", None)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) for v in value)
        or len(set(value)) != len(value)
    ):
        raise layer.error(
            "ops", "must be a non-empty list of distinct layer ops, such as 'conv 3x3'"
        )
    for label in value:
        try:
            _parse_op(label)
        except ValueError as err:
            raise layer.error("ops", str(err)) from None
    return tuple(value)


def _exclusive(layer: Table, key: str, others: tuple[str, ...]) -> None:
    for other in others:
        if other in layer.data:
            raise layer.error(other, f"a space with {key} leaves {other} out")
