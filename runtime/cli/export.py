"""`nasforge export`: an architecture or a trained folder -> a parity-checked ONNX file.

SOURCE is an architecture (a file, `-` for stdin, or --arch STRING; the generated
model with random weights, or --weights W, a state_dict), a `nasforge train`
output folder (DIR/model.py, the very file trained, and DIR/weights.pt; the build
overrides come from DIR/metrics.json) or a `nasforge search` folder (its best
architecture, DIR/best.arch, with the best trial's kept weights, DIR/best_weights.pt;
the build overrides come from DIR/summary.json). Prints the export report; exit 2
with a one-line message on bad input, a failed export or failed parity.

A trained folder's model.py (MEAN, STD, CLASS_NAMES) and a search folder's summary.json
(best.preprocessing) carry the training's normalisation: their graph then takes raw
pixels in [0, 1] (input `pixels`) and normalises them itself, as `nasforge train --onnx`
writes it. An architecture alone has none: its graph takes the normalised input `x`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from ..choices import DEFAULT_CHECKS, DEFAULT_RTOL, DEFAULT_TOLERANCE
from . import Failure
from .input import FiniteFloat, read_arch

WEIGHTS = "weights.pt"
MODEL = "model.py"
METRICS = "metrics.json"
# A search folder's (runtime/search/outputs.py writes them; the names are repeated here so
# that `nasforge export --help` imports nothing of the search).
BEST_ARCH = "best.arch"
BEST_WEIGHTS = "best_weights.pt"
SUMMARY = "summary.json"
STORE = "search.db"


@click.command(short_help="Export a model to ONNX and check it against onnxruntime.")
@click.argument("source", required=False, metavar="[FILE|-|DIR]")
@click.option("--arch", metavar="STRING", help="The architecture text itself.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .onnx file to write.",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A state_dict (torch.save) to load; default: DIR/weights.pt (a search DIR: "
    "best_weights.pt), or random init.",
)
@click.option(
    "--model-arg",
    "model_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="build_model override (repeatable), e.g. hidden_size=128.",
)
@click.option(
    "--tolerance",
    default=DEFAULT_TOLERANCE,
    show_default=True,
    type=FiniteFloat(min=0),
    help="atol: each value passes if |onnxruntime - PyTorch| <= atol + rtol * |PyTorch|.",
)
@click.option(
    "--rtol",
    default=DEFAULT_RTOL,
    show_default=True,
    type=FiniteFloat(min=0),
    help="rtol of that test (numpy.allclose's); 0 compares absolute differences only.",
)
@click.option(
    "--checks",
    default=DEFAULT_CHECKS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Random inputs compared (sizes differ from the second on).",
)
@click.option("--state", is_flag=True, help="rnn: the recurrent state as inputs and outputs.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random init.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def export_command(
    source: str | None,
    arch: str | None,
    out: Path,
    weights: Path | None,
    model_args: tuple[str, ...],
    tolerance: float,
    rtol: float,
    checks: int,
    state: bool,
    seed: int,
    as_json: bool,
) -> None:
    """Export an architecture (FILE, `-`, --arch STRING), a trained DIR or a search DIR's
    best (with its kept weights) to ONNX."""
    import torch

    from ..memory import check_fits
    from ..onnx_export import EXAMPLE_BATCH, export_model
    from .train import parse_model_args

    overrides = parse_model_args(model_args)
    torch.manual_seed(seed)
    preprocessing = None
    if source is not None and arch is None and Path(source).is_dir():
        folder = Path(source)
        if _is_search_folder(folder):
            ir, module, recorded, kept = _load_search_folder(folder)
            preprocessing = _recorded_preprocessing(folder / SUMMARY, ("best", "preprocessing"))
        else:
            ir, module = _load_folder(folder)
            recorded, kept = _recorded_overrides(folder, METRICS, ()), folder / WEIGHTS
            preprocessing = _module_preprocessing(folder / MODEL, module)
        overrides = {**recorded, **overrides}
        weights = weights or kept
        if not weights.is_file():
            raise Failure(f"{folder} has no {kept.name}; give --weights W")
    else:
        from nasforge.codegen import load

        ir = read_arch(source, arch)
        module = load(ir)
    # The model, the exported file's copy and onnxruntime's session: three sets of weights.
    check_fits(ir, overrides, device="cpu", batch=EXAMPLE_BATCH, copies=3, purpose="an ONNX export")
    try:
        model = module.build_model(**overrides)
    except (TypeError, ValueError) as err:
        raise Failure(f"cannot build the model with {overrides}: {err}") from None
    if weights is not None:
        _load_weights(model, weights)
    report = export_model(
        model,
        ir,
        out,
        tolerance=tolerance,
        rtol=rtol,
        checks=checks,
        state=state,
        preprocessing=preprocessing,
    )
    if as_json:
        payload = asdict(report) | {"path": str(report.path), "dynamic_axes": report.dynamic_axes}
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(report.summary())


def _load_folder(folder: Path) -> tuple[object, object]:
    """(IR, module) of a `nasforge train` folder's model.py."""
    from nasforge.codegen import load_file
    from nasforge.grammar import parse

    path = folder / MODEL
    if not path.is_file():
        raise Failure(f"{folder} is not a `nasforge train` folder: it has no {MODEL}")
    try:
        module = load_file(path)
    except Exception as err:  # a broken or foreign file: say so, no traceback
        raise Failure(f"cannot load {path}: {type(err).__name__}: {err}") from None
    text = getattr(module, "ARCH", None)
    if not isinstance(text, str):
        raise Failure(f"{path} defines no ARCH string; was it generated by nasforge?")
    return parse(text, f"{path}:ARCH"), module


def _is_search_folder(folder: Path) -> bool:
    return not (folder / MODEL).exists() and (
        (folder / BEST_ARCH).is_file() or (folder / STORE).is_file()
    )


def _load_search_folder(folder: Path) -> tuple[object, object, dict[str, object], Path]:
    """(IR, module, build overrides, weights path) of a `nasforge search` folder's best."""
    from nasforge.codegen import load
    from nasforge.grammar import parse

    path = folder / BEST_ARCH
    if not path.is_file():
        raise Failure(
            f"the search in {folder} has no {BEST_ARCH} yet (it is running, or it was stopped "
            "before its end: continue it with `nasforge search ... --resume`)"
        )
    ir = parse(path.read_text(encoding="utf-8"), str(path))
    kept = folder / BEST_WEIGHTS
    if not kept.is_file():
        raise Failure(
            f"{folder} has no {BEST_WEIGHTS} (a table search trains nothing); give --weights W, "
            f"or export {path} with random weights"
        )
    return ir, load(ir), _recorded_overrides(folder, SUMMARY, ("best",)), kept


def _recorded_overrides(folder: Path, name: str, within: tuple[str, ...]) -> dict[str, object]:
    """The build_model overrides recorded in DIR/NAME (under the keys `within`), if any:
    metrics.json of `nasforge train`, summary.json's best of `nasforge search`."""
    path = folder / name
    if not path.is_file():
        return {}
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        for key in within:
            recorded = recorded.get(key) or {}
        recorded = recorded.get("build_kwargs") or {}
    except (OSError, ValueError, AttributeError) as err:
        raise Failure(f"cannot read {path}: {err}") from None
    if not isinstance(recorded, dict):
        raise Failure(f"{path}: build_kwargs is not an object")
    return recorded


def _module_preprocessing(path: Path, module: object) -> object | None:
    """The MEAN, STD and CLASS_NAMES a trained folder's model.py defines, if it does."""
    from nasforge.codegen.preprocessing import Preprocessing

    if not hasattr(module, "MEAN"):
        return None
    try:
        return Preprocessing(module.MEAN, module.STD, module.CLASS_NAMES)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError) as err:
        raise Failure(f"{path}: MEAN, STD and CLASS_NAMES do not fit together: {err}") from None


def _recorded_preprocessing(path: Path, keys: tuple[str, ...]) -> object | None:
    """The preprocessing recorded in the JSON file at `path` under `keys`, if any."""
    from nasforge.codegen.preprocessing import Preprocessing

    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        for key in keys:
            record = record.get(key) or {}
        if not record:
            return None
        return Preprocessing(record["mean"], record["std"], record["class_names"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as err:
        raise Failure(f"cannot read the preprocessing in {path}: {err}") from None


def _load_weights(model: object, path: Path) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise Failure(f"cannot read {path}: no such file") from None
    except Exception as err:
        raise Failure(f"cannot load weights from {path}: {_first_line(err)}") from None
    if not isinstance(state, dict):
        raise Failure(f"{path} holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)  # type: ignore[attr-defined]
    except RuntimeError as err:
        raise Failure(
            f"the weights in {path} do not fit this model ({_first_line(err)}); "
            "was it built with other --model-arg values?"
        ) from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] or type(err).__name__
