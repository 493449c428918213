"""A one-shot supernet of ENAS's macro space: every layer holds every op of the space.

ENAS's macro search (Pham et al. 2018, section 2.3) chooses, per layer, one op and the
earlier layers it reads. In the cnn family a layer reads the channel concatenation of
its anchors, so its input width depends on the architecture: the supernet builds each
op of a layer at the widest input (every layer it may read, `sources`) and, for a given
architecture, uses the input-channel blocks of the layers it reads. Every op outputs
`filters` channels (a pooling op projects to them first, as ENAS's pool branch), so a
block is `filters` wide, and a compiled architecture's weights are exact slices of the
supernet's (`standalone_state_dict`).

Each op is the module a compiled file builds for that layer (the same plan, `plan_cnn`,
and the same template macro, `_cnn_layers.py.jinja`), with the convs that read the
layer's input as `SlicedConv2d`. The architecture is data: `forward(x, arch)`, `arch`
of shape (layers, len(ops) + layers): per layer, the op's one-hot row, then the 0/1 row
of the layers it reads (`one_hot`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nasforge.grammar import ops, parse, to_text, validate
from nasforge.grammar.ir import Arch, CnnArch, Layer, Ref

from .cnn import CnnPlan, LayerPlan, plan_cnn
from .render import ArchText, format_source, render


@dataclass(frozen=True)
class MacroSupernetSpec:
    """What a macro supernet is generated from: a cnn space with a layer-op slot, as data.

    Layer i (L{i}, i from 1) may read the layers `sources[i - 1]` (none: the image) with
    stride `strides[i - 1]`; each of its ops (`ops`, "KIND HxW" labels, in the order of
    the op columns) outputs `filters` channels. The classifier reads the last layer, so
    every other layer must feed a later one.
    """

    name: str  # the space's name, for the file's docstring
    input_shape: tuple[int, int, int]
    classes: int
    filters: int
    ops: tuple[str, ...]
    sources: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, int], ...]

    @property
    def layers(self) -> int:
        return len(self.sources)


@dataclass(frozen=True)
class MacroLayerPlan:
    name: str  # attribute and variable, as in a compiled file (l3)
    index: int
    sources: tuple[int, ...]
    inputs: tuple[str, ...]  # the variables it may read (("x",): the image)
    candidates: tuple[LayerPlan, ...]  # one per op, each at the widest input
    out_shape: tuple[int, int, int]


@dataclass(frozen=True)
class MacroPlan:
    input_shape: tuple[int, int, int]
    classes: int
    filters: int
    ops: tuple[ArchText, ...]
    layers: tuple[MacroLayerPlan, ...]
    head_input: str

    @property
    def uses_uneven_avgpool(self) -> bool:
        return any(c.kind == "avgpool" and c.pad for layer in self.layers for c in layer.candidates)


def _check(spec: MacroSupernetSpec) -> None:
    if not spec.ops or len(set(spec.ops)) != len(spec.ops):
        raise ValueError(f"a macro supernet's ops are distinct layer ops, not {spec.ops!r}")
    for label in spec.ops:
        ops.split_layer_op(label)
    if not spec.sources or len(spec.strides) != len(spec.sources):
        raise ValueError("a macro supernet needs one sources entry and one stride per layer")
    for i, sources in enumerate(spec.sources, start=1):
        if (i == 1) != (not sources) or any(not 1 <= j < i for j in sources):
            raise ValueError(f"L{i} of a macro supernet reads earlier layers only (L1: the image)")


def _full_arch(spec: MacroSupernetSpec, label: str) -> CnnArch:
    """The architecture with op `label` on every layer, each reading all it may read."""
    kind, kernel = ops.split_layer_op(label)
    layers = tuple(
        Layer(i, kind, kernel, stride, spec.filters, inputs=tuple(Ref(j) for j in sources))
        for i, (sources, stride) in enumerate(zip(spec.sources, spec.strides, strict=True), 1)
    )
    return validate(CnnArch(spec.input_shape, spec.classes, layers))


def plan_macro(spec: MacroSupernetSpec) -> MacroPlan:
    """Each layer's candidate modules: the compiled layer of each op at the widest input."""
    _check(spec)
    plans: list[CnnPlan] = [plan_cnn(_full_arch(spec, label)) for label in spec.ops]
    base = plans[0]
    if any(layer.pad_inputs for layer in base.layers):
        raise ValueError("a macro supernet's layers read layers of one resolution each")
    layers = tuple(
        MacroLayerPlan(
            name=layer.name,
            index=i,
            sources=spec.sources[i - 1],
            inputs=layer.inputs,
            candidates=tuple(plan.layers[i - 1] for plan in plans),
            out_shape=layer.out_shape,
        )
        for i, layer in enumerate(base.layers, start=1)
    )
    labels = tuple(ArchText(label) for label in spec.ops)
    return MacroPlan(spec.input_shape, spec.classes, spec.filters, labels, layers, layers[-1].name)


def generate_macro_supernet(spec: MacroSupernetSpec, *, black: bool = True) -> str:
    """The Python source of the macro supernet of `spec`."""
    plan = plan_macro(spec)
    header = ArchText(f"cnn input {'x'.join(map(str, spec.input_shape))} classes {spec.classes}")
    source = render("supernet_macro.py.jinja", plan=plan, space=spec.name, header=header)
    return format_source(source) if black else source


# --- architectures on the supernet ----------------------------------------------------


def _arch(spec: MacroSupernetSpec, arch: Arch | str) -> CnnArch:
    """`arch` as IR, checked to be one the supernet holds."""
    ir = parse(arch) if isinstance(arch, str) else arch
    if not isinstance(ir, CnnArch):
        raise ValueError(f"not a cnn architecture: {to_text(ir, one_line=True)}")
    if (ir.input_shape, ir.classes) != (spec.input_shape, spec.classes):
        raise ValueError(
            "the architecture's header (input, classes) is not the supernet's: "
            + to_text(ir, one_line=True).split(";")[0]
        )
    if len(ir.layers) != spec.layers:
        raise ValueError(f"the architecture has {len(ir.layers)} layers, not {spec.layers}")
    read = {ref.index for layer in ir.layers for ref in layer.inputs}
    for layer in ir.layers:
        _check_layer(spec, layer, read)
    return ir


def _check_layer(spec: MacroSupernetSpec, layer: Layer, read: set[int]) -> None:
    name, i = f"L{layer.index}", layer.index
    op = f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]}"
    if op not in spec.ops:
        raise ValueError(f"{name}'s op {op!r} is not one of the supernet's {spec.ops}")
    if layer.filters != spec.filters or not layer.batchnorm or layer.lrn:
        raise ValueError(f"{name} must be {op} n{spec.filters} without flags")
    if layer.stride != spec.strides[i - 1]:
        raise ValueError(f"{name}'s stride is {layer.stride}, not {spec.strides[i - 1]}")
    reads = [ref.index for ref in layer.inputs]
    sources = spec.sources[i - 1]
    if any(j not in sources for j in reads) or (sources and not reads):
        raise ValueError(
            f"{name} reads {_labels(reads)}; in the supernet it may read {_labels(sources)}"
        )
    if i < spec.layers and i not in read:
        raise ValueError(
            f"{name} feeds no layer; the supernet's classifier reads only L{spec.layers}"
        )


def _labels(indices: Sequence[int]) -> str:
    return " ".join(f"L{j}" for j in indices) or "the image"


def macro_one_hot(spec: MacroSupernetSpec, arch: Arch | str) -> list[list[float]]:
    """The rows (layers x (ops + layers)) that select `arch`: per layer a 1 at its op, then
    a 1 at each layer it reads."""
    ir = _arch(spec, arch)
    rows = []
    for layer in ir.layers:
        op = spec.ops.index(f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]}")
        reads = {ref.index for ref in layer.inputs}
        rows.append(
            [1.0 if k == op else 0.0 for k in range(len(spec.ops))]
            + [1.0 if j in reads else 0.0 for j in range(1, spec.layers + 1)]
        )
    return rows


T = TypeVar("T")


def _readers(layer: LayerPlan) -> dict[str, int]:
    """The convs of a compiled layer that read its input: Sequential index -> the weight's
    input-channel axis (0 for a depthwise conv, whose filters are its input channels).
    Mirrors `_cnn_layers.py.jinja`'s module order."""
    if layer.projection:
        return {"0": 1}
    first = 1 if layer.pad else 0
    if layer.kind == "sep":
        return {str(first): 0, str(first + 1): 1}
    return {str(first): 1}


def macro_standalone_state_dict(
    spec: MacroSupernetSpec, supernet_state: Mapping[str, T], arch: Arch | str
) -> dict[str, T]:
    """The state_dict of `arch`'s compiled file (nasforge.codegen.generate), from the supernet's.

    A candidate `lI.K.REST` of the supernet (op K of layer I) is `lI.REST` of the
    compiled file when K is the layer's op; a conv that reads the layer's input keeps
    the input-channel blocks of the layers it reads (in ascending order, as the
    compiled file concatenates them). Everything outside the layers keeps its name.
    """
    ir = _arch(spec, arch)
    plan = plan_macro(spec)
    chosen: dict[str, tuple[str, dict[str, int], list[int] | None]] = {}
    for layer, macro in zip(ir.layers, plan.layers, strict=True):
        op = spec.ops.index(f"{layer.kind} {layer.kernel[0]}x{layer.kernel[1]}")
        candidate = macro.candidates[op]
        positions = [macro.sources.index(ref.index) for ref in layer.inputs]
        width = spec.filters
        channels = [k * width + c for k in positions for c in range(width)]
        full = len(positions) == len(macro.sources)
        chosen[macro.name] = (str(op), _readers(candidate), None if full else channels)
    state: dict[str, T] = {}
    for key, value in supernet_state.items():
        name, *rest = key.split(".")
        if name not in chosen:
            state[key] = value
            continue
        op, readers, channels = chosen[name]
        if rest[0] != op:
            continue
        module, *field = rest[1:]
        axis = readers.get(module)
        if channels is not None and axis is not None and field == ["weight"]:
            value = _take(value, axis, channels)
        elif channels is not None and axis == 0 and field == ["bias"]:
            value = _take(value, 0, channels)
        state[".".join([name, *rest[1:]])] = value
    return state


def _take(value: Any, axis: int, channels: list[int]) -> Any:
    """`value` indexed by `channels` along `axis` (a torch tensor or a numpy array)."""
    return value[channels] if axis == 0 else value[:, channels]
