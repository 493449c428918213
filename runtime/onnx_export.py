"""ONNX export of a generated model, checked by onnx.checker and against onnxruntime.

`export_model` exports with torch.onnx's dynamo exporter (torch.export; the
TorchScript exporter is deprecated), saves one self-contained .onnx file, runs
`onnx.checker`, and then compares onnxruntime (CPUExecutionProvider) with the
PyTorch model in eval mode on a few seeded random inputs of different sizes. Each
output value must pass numpy.allclose's test, |onnxruntime - PyTorch| <= atol + rtol *
|PyTorch|: an absolute tolerance alone fails models with large outputs on float32
rounding alone. The file is written under a temporary name and takes its place only
once every check passed; a failed one is renamed NAME.failed.onnx (kept for
inspection), so a file at the path asked for is always a checked export.

What is dynamic in the exported graph:

- image families (cnn, cells): input `x` (batch, C, H, W) -> `logits`
  (batch, classes). The batch axis is dynamic; channels, height and width are
  fixed by the architecture (`input ... CxHxW`), as the generated layers are.
  With `preprocessing` (a trained model's mean, std and class names) the graph
  takes `pixels` instead: raw pixels scaled to [0, 1], normalised inside the
  graph, (pixels - mean) / std, before the model; the check inputs are then
  uniform in [0, 1], and the file's metadata_props hold mean, std and
  class_names (JSON).
- rnn: input `tokens` (seq, batch) int64 -> `logits` (seq, batch, vocab). Both
  the sequence length and the batch are dynamic. The generated LanguageModel
  unrolls a Python loop over time; torch.export would trace that loop into a
  graph with the example's length baked in. So the export runs the generated
  model's own modules (embedding, cells, dropout, decoder) in a time loop
  written with torch's `scan`, which becomes one ONNX `Scan` node; parity is
  checked against the generated `forward` itself. With `state=True` the graph
  also takes and returns the recurrent state as `h0`, `c0` -> `h`, `c`,
  each (layers, batch, hidden).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import json
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from nasforge.codegen.preprocessing import Preprocessing
from nasforge.grammar.errors import NasforgeError
from nasforge.grammar.ir import Arch
from torch import nn

from .choices import DEFAULT_CHECKS, DEFAULT_RTOL, DEFAULT_TOLERANCE

EXAMPLE_BATCH = 2  # not 1: torch.export specialises size-1 dimensions
EXAMPLE_LENGTH = 5  # tokens; the Scan graph does not depend on it
SEED = 0
Shape = tuple[int | str, ...]


class ExportError(NasforgeError):
    """The model could not be exported, checked or run by onnxruntime."""


class ExportParityError(ExportError):
    """onnxruntime's output differs from PyTorch's by more than the tolerance."""

    def __init__(self, message: str, report: ExportReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ExportReport:
    """What was exported and how closely onnxruntime matches PyTorch."""

    path: Path
    family: str
    opset: int
    inputs: dict[str, Shape]  # name -> shape; strings are the dynamic axes
    outputs: dict[str, Shape]
    max_abs_diff: float
    tolerance: float  # atol
    checked_shapes: tuple[tuple[int, ...], ...]  # the first input's shape in each check
    export_seconds: float
    check_seconds: float
    size_bytes: int = field(default=0)
    rtol: float = DEFAULT_RTOL

    @property
    def allowed(self) -> str:
        """The parity test in words."""
        return f"atol {self.tolerance:g} + rtol {self.rtol:g} x |PyTorch|, as numpy.allclose"

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Name -> {axis: symbol} for every dynamic axis of every input and output."""
        return {
            name: {axis: dim for axis, dim in enumerate(shape) if isinstance(dim, str)}
            for name, shape in {**self.inputs, **self.outputs}.items()
        }

    def summary(self) -> str:
        def signature(shapes: dict[str, Shape]) -> str:
            return ", ".join(f"{name} ({', '.join(map(str, s))})" for name, s in shapes.items())

        checked = ", ".join("x".join(map(str, shape)) for shape in self.checked_shapes)
        return "\n".join(
            [
                f"wrote {self.path} ({self.size_bytes / 1e6:.1f} MB, opset {self.opset})",
                f"graph: {signature(self.inputs)} -> {signature(self.outputs)}",
                f"export: {self.export_seconds:.2f} s; onnxruntime checks: "
                f"{self.check_seconds:.2f} s on inputs {checked}",
                f"max abs diff vs PyTorch: {self.max_abs_diff:.3g} (tolerance: {self.allowed})",
            ]
        )


# --- language models: the time loop as one Scan -------------------------------


def _step(
    cell: nn.Module, carry: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    h, (h_next, c_next) = cell(x, carry)
    # scan needs outputs that alias neither its inputs nor each other (a cell may
    # return the same tensor as h and c); the clones become no-ops in the graph.
    return (h_next.clone(), c_next.clone()), h.clone()


class ScanLanguageModel(nn.Module):
    """The generated LanguageModel's forward with its time loop written as torch's scan.

    Uses the generated model's own modules (embedding, dropout, cells, decoder),
    so the weights are the same; `reference` calls the generated forward itself.
    """

    def __init__(self, lm: nn.Module, *, with_state: bool = False) -> None:
        super().__init__()
        for name in ("embedding", "dropout", "cells", "decoder"):
            if not hasattr(lm, name):
                raise ExportError(f"not a generated LanguageModel: it has no '{name}'")
        self.lm = lm
        self.with_state = with_state

    @property
    def vocab_size(self) -> int:
        return int(self.lm.embedding.num_embeddings)

    @property
    def state_shape(self) -> tuple[int, int]:
        """(layers, hidden) of the recurrent state."""
        return len(self.lm.cells), int(self.lm.hidden_size)

    def forward(
        self,
        tokens: torch.Tensor,
        h0: torch.Tensor | None = None,
        c0: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from torch._higher_order_ops import scan  # prototype API; exports as ONNX Scan

        lm = self.lm
        inputs = lm.dropout(lm.embedding(tokens))  # (T, N, embed)
        last_h, last_c = [], []
        for index, cell in enumerate(lm.cells):
            if h0 is None or c0 is None:
                h = inputs.new_zeros(tokens.shape[1], lm.hidden_size)
                c = h.clone()
            else:
                h, c = h0[index].clone(), c0[index].clone()
            (h, c), outputs = scan(partial(_step, cell), (h, c), inputs)
            inputs = lm.dropout(outputs)  # (T, N, hidden)
            last_h.append(h)
            last_c.append(c)
        logits = lm.decoder(inputs)
        if not self.with_state:
            return logits
        return logits, torch.stack(last_h), torch.stack(last_c)

    def reference(
        self,
        tokens: torch.Tensor,
        h0: torch.Tensor | None = None,
        c0: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same computation through the generated LanguageModel.forward."""
        state = None
        if h0 is not None and c0 is not None:
            state = list(zip(h0.unbind(0), c0.unbind(0), strict=True))
        logits, final = self.lm(tokens, state)
        if not self.with_state:
            return logits
        return (logits, torch.stack([h for h, _ in final]), torch.stack([c for _, c in final]))

    def random_inputs(
        self, seq: int, batch: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        tokens = torch.randint(0, self.vocab_size, (seq, batch), generator=generator)
        if not self.with_state:
            return (tokens,)
        layers, hidden = self.state_shape
        h0, c0 = torch.randn(2, layers, batch, hidden, generator=generator).unbind(0)
        return tokens, h0, c0


# --- what gets exported -----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The module to export, its inputs, and how to make check inputs of other sizes."""

    module: nn.Module
    reference: Callable[..., object]  # the generated model's own forward, for parity
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    example: tuple[torch.Tensor, ...]
    dynamic_shapes: dict[str, dict[int, torch.export.Dim]]
    random_inputs: Callable[[tuple[int, ...], torch.Generator], tuple[torch.Tensor, ...]]


class Normalised(nn.Module):
    """`model` after its training's normalisation: raw pixels in [0, 1] -> logits."""

    def __init__(self, model: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.model = model
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(shape))
        self.register_buffer("std", torch.tensor(preprocessing.std).view(shape))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


def image_plan(
    model: nn.Module,
    arch: Arch,
    example: torch.Tensor | None,
    preprocessing: Preprocessing | None = None,
) -> Plan:
    draw = torch.randn if preprocessing is None else torch.rand  # raw pixels lie in [0, 1]
    if example is None:
        example = draw(EXAMPLE_BATCH, *arch.input_shape, generator=_generator())
    if tuple(example.shape[1:]) != tuple(arch.input_shape):
        raise ExportError(
            f"example input has shape {tuple(example.shape)}; the architecture reads "
            f"(N, {', '.join(map(str, arch.input_shape))})"
        )
    if preprocessing is not None and len(preprocessing.mean) != arch.input_shape[0]:
        raise ExportError(
            f"the normalisation has {len(preprocessing.mean)} channel(s), the architecture "
            f"reads {arch.input_shape[0]}"
        )

    def random_inputs(size: tuple[int, ...], generator: torch.Generator) -> tuple[torch.Tensor]:
        return (draw(*size, *arch.input_shape, generator=generator),)

    module = model if preprocessing is None else Normalised(model, preprocessing)
    name = "x" if preprocessing is None else "pixels"
    batch = torch.export.Dim("batch")
    return Plan(module, module, (name,), ("logits",), (example,), {name: {0: batch}}, random_inputs)


def rnn_plan(model: nn.Module, example: torch.Tensor | None, state: bool) -> Plan:
    module = ScanLanguageModel(model, with_state=state)

    def random_inputs(
        size: tuple[int, ...], generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        return module.random_inputs(size[0], size[1], generator)

    inputs = random_inputs((EXAMPLE_LENGTH, EXAMPLE_BATCH), _generator())
    if example is not None:
        if example.dim() != 2 or example.dtype != torch.int64:
            raise ExportError(
                f"example tokens must be (seq, batch) int64, not {tuple(example.shape)} "
                f"{example.dtype}"
            )
        inputs = (example, *random_inputs(tuple(example.shape), _generator())[1:])
    seq, batch = torch.export.Dim("seq"), torch.export.Dim("batch")
    dynamic: dict[str, dict[int, torch.export.Dim]] = {"tokens": {0: seq, 1: batch}}
    if state:
        dynamic |= {"h0": {1: batch}, "c0": {1: batch}}
    outputs = ("logits", "h", "c") if state else ("logits",)
    return Plan(module, module.reference, tuple(dynamic), outputs, inputs, dynamic, random_inputs)


def check_sizes(first: tuple[int, ...], checks: int) -> list[tuple[int, ...]]:
    """The example's leading sizes, then all ones, then ever larger ones.

    Images: (batch,); language models: (seq, batch), both dynamic.
    """
    sizes = [first]
    for index in range(1, checks):
        grow = index + 1
        sizes.append(tuple(1 for _ in first) if index == 1 else tuple(n + grow for n in first))
    return sizes


def check_inputs(plan: Plan, family: str, checks: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """The example itself, then seeded random inputs of the other `check_sizes`."""
    generator = _generator(SEED + 1)
    leading = 2 if family == "rnn" else 1
    for index, size in enumerate(check_sizes(tuple(plan.example[0].shape[:leading]), checks)):
        yield plan.example if index == 0 else plan.random_inputs(size, generator)


# --- export, check, compare ----------------------------------------------------


def export_model(
    model: nn.Module,
    arch: Arch,
    path: Path,
    *,
    example: torch.Tensor | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    checks: int = DEFAULT_CHECKS,
    state: bool = False,
    rtol: float = DEFAULT_RTOL,
    preprocessing: Preprocessing | None = None,
) -> ExportReport:
    """Export `model` (generated from `arch`) to `path` and check it against onnxruntime.

    `example` is one input for tracing (images (N, C, H, W); tokens (T, N) int64);
    by default a seeded random one with batch 2. `checks` inputs of different sizes
    (the first is the example) are run through both; ExportParityError when an output
    value fails |onnxruntime - PyTorch| <= tolerance + rtol * |PyTorch| (numpy.allclose's
    test, `tolerance` its atol). On any failure no file is left at `path` (one that was
    there stays as it was) and a written one is renamed NAME.failed.onnx, which the
    error names. `state` (rnn only) adds the
    recurrent state as graph inputs and outputs. The model is exported and checked
    in eval mode; its training mode is restored afterwards. `preprocessing` (image
    families: a trained model's mean, std, class names) puts the normalisation into the
    graph, whose input is then raw pixels in [0, 1] (see the module's docstring).
    """
    if checks < 1:
        raise ExportError(f"checks must be at least 1, not {checks}")
    if state and arch.family != "rnn":
        raise ExportError("state=True is for language models (rnn) only")
    if preprocessing is not None and arch.family == "rnn":
        raise ExportError("preprocessing (mean, std, class names) is for image models only")
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial.onnx")
    failed = path.with_name(f"{path.stem}.failed{path.suffix or '.onnx'}")
    try:
        report = _export_and_check(
            model, arch, partial, example, Parity(tolerance, rtol), checks, state, preprocessing
        )
        return replace(report, path=partial.replace(path))
    except ExportError as err:
        if not partial.exists():
            raise
        partial.replace(failed)
        if isinstance(err, ExportParityError):
            err.report = replace(err.report, path=failed)
        err.args = (f"{err}; kept as {failed} for inspection",)
        raise
    finally:
        partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class Parity:
    """numpy.allclose's test: |onnxruntime - PyTorch| <= atol + rtol * |PyTorch|."""

    atol: float
    rtol: float


def _export_and_check(
    model: nn.Module,
    arch: Arch,
    path: Path,
    example: torch.Tensor | None,
    parity: Parity,
    checks: int,
    state: bool,
    preprocessing: Preprocessing | None = None,
) -> ExportReport:
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if arch.family == "rnn":
                plan = rnn_plan(model, example, state)
            else:
                plan = image_plan(model, arch, example, preprocessing)
            plan.module.eval()
            started = time.perf_counter()
            _export(plan, path)
            if preprocessing is not None:
                _add_metadata(path, preprocessing)
            export_seconds = time.perf_counter() - started
            proto = _checked(path)
            started = time.perf_counter()
            diff, worst, shapes = _compare(plan, arch.family, path, checks, parity)
            check_seconds = time.perf_counter() - started
    finally:
        model.train(training)
    report = ExportReport(
        path=path,
        family=arch.family,
        opset=_opset(proto),
        inputs=_shapes(proto.graph.input),
        outputs=_shapes(proto.graph.output),
        max_abs_diff=diff,
        tolerance=parity.atol,
        checked_shapes=shapes,
        export_seconds=export_seconds,
        check_seconds=check_seconds,
        size_bytes=path.stat().st_size,
        rtol=parity.rtol,
    )
    if worst is not None:
        got, want = worst
        raise ExportParityError(
            f"onnxruntime differs from PyTorch by {abs(got - want):.3g} ({got:.7g} where "
            f"PyTorch gives {want:.7g}; allowed: {report.allowed})",
            report,
        )
    return report


def _export(plan: Plan, path: Path) -> None:
    chatter = io.StringIO()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
        ):
            warnings.simplefilter("ignore")
            program = _onnx_program(plan)
            path.parent.mkdir(parents=True, exist_ok=True)
            program.save(path, external_data=False)  # one self-contained file
    except ExportError:
        raise
    except Exception as err:  # the exporter raises many kinds; report the reason, typed
        raise ExportError(f"torch.onnx could not export the model: {_reason(err)}") from err


def _onnx_program(plan: Plan) -> torch.onnx.ONNXProgram:
    """torch.onnx.export(dynamo=True), reusing one op registry across exports.

    The public function rebuilds the torchlib registry on every call (about a
    second, as long as a small model's whole export); the exporter's core takes a
    registry, so it is built once. The rest is what the public function does with
    these arguments. Where those internals are missing or have changed, the public
    function is used.
    """
    options = {
        "dynamic_shapes": plan.dynamic_shapes,
        "input_names": list(plan.input_names),
        "output_names": list(plan.output_names),
        "verbose": False,
    }
    core = _core_export()
    if core is not None:
        program = core(plan.module, plan.example, registry=_registry(), **options)
        program._rename_dynamic_axes(plan.dynamic_shapes)  # "batch", not "s77", as the public one
        return program
    program = torch.onnx.export(plan.module, plan.example, dynamo=True, **options)
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    return program


@functools.cache
def _core_export() -> Callable[..., torch.onnx.ONNXProgram] | None:
    try:
        from torch.onnx._internal.exporter import _core, _registration

        parameters = inspect.signature(_core.export).parameters
        _registration.ONNXRegistry.from_torchlib  # noqa: B018 (these must exist)
        torch.onnx.ONNXProgram._rename_dynamic_axes  # noqa: B018
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    wanted = {"registry", "dynamic_shapes", "input_names", "output_names", "verbose"}
    return _core.export if wanted <= parameters.keys() else None


@functools.cache
def _registry() -> object:
    from torch.onnx._internal.exporter import _registration

    return _registration.ONNXRegistry.from_torchlib()


def _add_metadata(path: Path, preprocessing: Preprocessing) -> None:
    """mean, std and class_names (JSON) as the file's metadata_props."""
    import onnx

    proto = onnx.load(str(path))
    for key, value in preprocessing.as_record().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(proto, str(path))


def _checked(path: Path):  # -> onnx.ModelProto
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
        return onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ExportError(f"onnx.checker rejects {path}: {_reason(err)}") from err


def _compare(
    plan: Plan, family: str, path: Path, checks: int, parity: Parity
) -> tuple[float, tuple[float, float] | None, tuple[tuple[int, ...], ...]]:
    """Largest |onnxruntime - PyTorch| over `checks` inputs, the (onnxruntime, PyTorch)
    values that fail `parity` by the most (None when every value passes), and the input
    shapes checked."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:
        raise ExportError(f"onnxruntime cannot load {path}: {_reason(err)}") from err
    largest = 0.0
    worst: tuple[float, float] | None = None
    worst_excess = 0.0
    shapes = []
    for inputs in check_inputs(plan, family, checks):
        shape = tuple(inputs[0].shape)
        shapes.append(shape)
        feed = {name: tensor.numpy() for name, tensor in zip(plan.input_names, inputs, strict=True)}
        try:
            got = session.run(list(plan.output_names), feed)
        except Exception as err:
            raise ExportError(f"onnxruntime failed on input shape {shape}: {_reason(err)}") from err
        expected = _flat(plan.reference(*inputs))
        for want, have in zip(expected, got, strict=True):
            if want.shape != have.shape:
                raise ExportError(
                    f"onnxruntime output shape {have.shape} differs from PyTorch's "
                    f"{tuple(want.shape)} on input shape {shape}"
                )
            expected_values = want.numpy().astype(np.float64)
            gap = np.abs(expected_values - have)
            diff = float(np.max(gap, initial=0.0))
            largest = diff if np.isnan(diff) else max(largest, diff)
            # NaN anywhere fails: its excess is NaN, which no comparison passes.
            excess = gap - (parity.atol + parity.rtol * np.abs(expected_values))
            excess = np.where(np.isnan(excess), np.inf, excess)
            if excess.size and float(excess.max()) > worst_excess:
                at = np.unravel_index(int(np.argmax(excess)), excess.shape)
                worst_excess = float(excess.max())
                worst = (float(have[at]), float(expected_values[at]))
            if np.isnan(largest):
                return largest, worst, tuple(shapes)
    return largest, worst, tuple(shapes)


# --- small helpers ------------------------------------------------------------


def _generator(seed: int = SEED) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _flat(output: object) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Sequence):
        return [tensor for item in output for tensor in _flat(item)]
    raise ExportError(f"the model returned {type(output).__name__}, not tensors")


def _shapes(values: Sequence) -> dict[str, Shape]:
    return {
        value.name: tuple(
            dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim
        )
        for value in values
    }


def _opset(proto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _reason(err: BaseException) -> str:
    """A one-line reason: the exception type and the first informative line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    cause = err.__cause__
    text = lines[0] if lines else ""
    if cause is not None and str(cause).strip():
        text = f"{text} ({type(cause).__name__}: {str(cause).strip().splitlines()[0]})"
    text = text[:400]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def onnx_bytes(model: nn.Module, arch: Arch) -> bytes:
    """`model`'s ONNX graph as bytes, exported as `export_model` exports it but kept in
    memory and not compared with PyTorch (runtime/latency.py times it)."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            plan = (
                rnn_plan(model, None, False)
                if arch.family == "rnn"
                else image_plan(model, arch, None)
            )
            plan.module.eval()
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.onnx"
                _export(plan, path)
                return path.read_bytes()
    finally:
        model.train(training)
