"""`nasforge train`: compile an architecture, train it on a dataset, save what a user ships.

Writes into --out: model.py (the black-formatted generated file, the very file trained;
an image model's carries MEAN, STD, CLASS_NAMES and preprocess(x)), weights.pt (the
state_dict, on the CPU), metrics.json (per-epoch metrics, reward, the dataset, its
mean/std/class_names, the canonical architecture, parameters, seconds, device, seed,
the build overrides), vocab.txt for language models, and with --onnx model.onnx (an
image model's takes raw pixels in [0, 1] and normalises them in the graph).

A folder that holds an earlier run's outputs is refused unless --overwrite, which
removes those files (only the ones train writes) before the new ones are written, so no
stale model.onnx stays beside new weights. Torch threads: --threads, else the usable
cores (one training process); metrics.json records the count.

Exit status: 0 trained; 1 the child failed to train (metrics.json records why, with
status "failed", or "diverged" when it trained to an infinite validation perplexity or
to chance accuracy); 2 bad input (architecture, dataset, device, options, an earlier
run in --out, a model too large for the free memory: checked before it is built), with
a one-line message.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from nasforge.grammar.errors import NasforgeError

from ..choices import DATASET_NAMES, DEVICE_CHOICES
from . import Failure
from .data_options import user_data_options, user_options
from .input import FiniteFloat, parse_pairs, read_arch

METRICS_VERSION = 1
# Everything train may write into --out; an earlier run's copies are removed by --overwrite.
OUTPUTS = ("metrics.json", "model.onnx", "model.py", "vocab.txt", "weights.pt")


class TrainingFailure(Failure):
    """The child failed while training: exit 1 (the input was fine)."""

    exit_code = 1


def parse_model_args(pairs: tuple[str, ...]) -> dict[str, object]:
    """--model-arg KEY=VALUE pairs -> build_model overrides (numbers, true/false)."""
    return parse_pairs(pairs, "--model-arg", "hidden_size=128")


def _epoch_line(row: dict[str, float], epochs: int) -> str:
    head = f"epoch {int(row['epoch'])}/{epochs}"
    if "val_acc" in row:
        return (
            f"{head}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%}  "
            f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2%}  {row['seconds']:.1f} s"
        )
    return (
        f"{head}  train ppl {row['train_ppl']:.2f}  val ppl {row['val_ppl']:.2f}  "
        f"lr {row['lr']:g}  {row['seconds']:.1f} s"
    )


def _write_json(path: Path, payload: dict[str, object]) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


@click.command(short_help="Train an architecture on a dataset; save model.py, weights, metrics.")
@click.argument("source", required=False, metavar="[FILE|-]")
@click.option("--arch", metavar="STRING", help="The architecture text itself.")
@click.option(
    "--dataset",
    required=True,
    metavar="NAME|PATH",
    help=f"What to train on: {', '.join(DATASET_NAMES)}, or a path to your own data "
    "(`nasforge datasets` lists the forms).",
)
@user_data_options
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the data (cifar10, ptb, ptb-char).",
)
@click.option("--download", is_flag=True, help="cifar10: download into --data-dir if missing.")
@click.option("--epochs", required=True, type=click.IntRange(min=1), help="Training epochs.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write model.py, weights.pt, metrics.json (created if missing).",
)
@click.option("--onnx", is_flag=True, help="Also export DIR/model.onnx (parity-checked).")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    metavar="|".join(DEVICE_CHOICES),
    help="auto picks cuda when available.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds torch, numpy, random.")
@click.option(
    "--overwrite", is_flag=True, help="Replace an earlier run's outputs in --out (removed first)."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for torch (default: the usable cores).",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Default: 64 images / 20 sequences.")
@click.option(
    "--lr", type=FiniteFloat(min=0, min_open=True), help="Override the recipe's lr (finite, > 0)."
)
@click.option("--workers", default=0, type=click.IntRange(min=0), help="DataLoader workers.")
@click.option(
    "--model-arg",
    "model_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="build_model override (repeatable), e.g. hidden_size=128.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar (none when not a terminal).")
def train_command(
    source: str | None,
    arch: str | None,
    dataset: str,
    data_dir: Path | None,
    download: bool,
    epochs: int,
    out_dir: Path,
    onnx: bool,
    overwrite: bool,
    device: str,
    seed: int,
    threads: int | None,
    batch_size: int | None,
    lr: float | None,
    workers: int,
    model_args: tuple[str, ...],
    no_progress: bool,
    val_fraction: float,
    char: bool,
    resize: tuple[int, int] | None,
    skip_bad_files: bool,
    augment: tuple[str, ...] | None,
    cutout: int | None,
) -> None:
    """Train an architecture (FILE, `-` for stdin, or --arch STRING) on --dataset."""

    from ..data import load_dataset
    from ..devices import resolve_device, set_threads
    from ..errors import TrainingFailed
    from ..memory import check_fits
    from ..train import build_kwargs, check_compatible, train_arch, training_batch

    began = time.perf_counter()
    earlier = _earlier_outputs(out_dir)
    if earlier and not overwrite:
        raise Failure(
            f"{out_dir} already holds a `nasforge train` run ({', '.join(earlier)}); add "
            "--overwrite to replace it, or choose another --out"
        )
    ir = read_arch(source, arch)
    overrides = parse_model_args(model_args)
    torch_device = resolve_device(device)
    set_threads(threads)
    channels = None if ir.family == "rnn" else ir.input_shape[0]  # type: ignore[union-attr]
    options = user_options(val_fraction, char, resize, skip_bad_files, channels, augment, cutout)
    data = load_dataset(dataset, data_dir=data_dir, download=download, seed=seed, options=options)
    if dataset not in DATASET_NAMES:  # the user's data: say how it was read
        click.echo(f"data: {data.description}", err=True)
    check_compatible(ir, data)
    fits = training_batch(data, batch_size)
    check_fits(ir, build_kwargs(ir, data, **overrides), device=torch_device, **fits)
    for name in earlier:  # only now: a refused input leaves the earlier run as it was
        (out_dir / name).unlink(missing_ok=True)
    model_path = _write_model(ir, data, out_dir)
    record = _record(ir, dataset, data, build_kwargs(ir, data, **overrides), torch_device, seed)

    try:
        result = train_arch(
            ir,
            data,
            epochs=epochs,
            device=torch_device,
            seed=seed,
            batch_size=batch_size,
            lr=lr,
            loader_workers=workers,
            overrides=overrides,
            build=_file_builder(model_path),
            progress=not no_progress,
            on_epoch=lambda row: click.echo(_epoch_line(row, epochs), err=True),
        )
    except TrainingFailed as err:
        record.update(
            status="diverged" if err.reason == "diverged" else "failed",
            failure=err.to_dict(),
            seconds=time.perf_counter() - began,
        )
        _write_json(out_dir / "metrics.json", record)
        raise TrainingFailure(f"{err} (recorded in {out_dir / 'metrics.json'})") from None
    written = _save(result, ir, data, out_dir, record, onnx)
    click.echo(
        f"reward {result.reward:.6f}  parameters {result.parameters:,}  "
        f"{result.seconds:.1f} s on {torch_device}; wrote "
        + ", ".join(str(out_dir / name) for name in written),
        err=True,
    )


def _earlier_outputs(out_dir: Path) -> list[str]:
    """The names of train's outputs that out_dir already holds."""
    return [name for name in OUTPUTS if (out_dir / name).exists()]


def _write_model(ir: Any, data: Any, out_dir: Path) -> Path:
    """Write DIR/model.py, the very file that is trained (an image model's with the
    data's MEAN, STD, CLASS_NAMES and preprocess); its path."""
    from nasforge.codegen import generate

    preprocessing = data.preprocessing() if getattr(data, "kind", None) == "image" else None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        model_path = out_dir / "model.py"
        model_path.write_text(generate(ir, preprocessing=preprocessing), encoding="utf-8")
    except OSError as err:
        raise Failure(f"cannot write to {out_dir}: {err.strerror or err}") from None
    return model_path


class BuildError(NasforgeError):
    """The generated file's build_model refused the arguments (exit 2: bad input)."""


def _file_builder(model_path: Path) -> Callable[..., Any]:
    """build_model of the written file; bad build arguments become a BuildError."""
    from nasforge.codegen import load_file

    build_model = load_file(model_path).build_model

    def build(**kwargs: object) -> Any:
        try:
            return build_model(**kwargs)
        except (TypeError, ValueError) as err:
            raise BuildError(f"cannot build the model with {kwargs}: {err}") from None

    return build


def _record(
    ir: Any, dataset: str, data: Any, kwargs: dict[str, object], device: object, seed: int
) -> dict[str, object]:
    """What metrics.json says about the run before training."""
    import torch
    from nasforge.grammar import to_text

    return {
        "version": METRICS_VERSION,
        "arch": to_text(ir),
        "family": ir.family,
        "dataset": dataset,
        "dataset_description": data.description,
        **_normalisation(data),
        "build_kwargs": kwargs,
        "device": str(device),
        "seed": seed,
        "threads": torch.get_num_threads(),  # as set_threads left it
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _normalisation(data: Any) -> dict[str, object]:
    """An image set's per-channel mean/std (applied inside training), class names and the
    training-time augmentation (each by name with its setting; {} for none)."""
    if getattr(data, "kind", None) != "image":
        return {}
    augment = data.augment.record() if data.augment is not None else {}
    return {**data.preprocessing().as_record(), "augment": augment}


def _save(
    result: Any, ir: Any, data: Any, out_dir: Path, record: dict[str, object], onnx: bool
) -> list[str]:
    """Write weights.pt, vocab.txt (language models), metrics.json and with `onnx`
    model.onnx; the names written."""
    import torch

    from ..data import TextData

    model = result.model.cpu().eval()
    torch.save(model.state_dict(), out_dir / "weights.pt")
    written = ["model.py", "weights.pt", "metrics.json"]
    if isinstance(data, TextData):
        (out_dir / "vocab.txt").write_text("\n".join(data.vocab) + "\n", encoding="utf-8")
        written.append("vocab.txt")
    record.update(
        status="ok",
        reward=result.reward,
        parameters=result.parameters,
        seconds=result.seconds,
        epochs=result.metrics,
        config=result.config,
        onnx=None,
    )
    _write_json(out_dir / "metrics.json", record)
    if onnx:
        record["onnx"] = _export_onnx(model, ir, data, out_dir)
        _write_json(out_dir / "metrics.json", record)
        written.append("model.onnx")
    return written


def _export_onnx(model: object, ir: object, data: object, out_dir: Path) -> dict[str, object]:
    """Export DIR/model.onnx with the ONNX module; its report for metrics.json."""
    import torch

    from ..data import TextData

    try:
        from ..onnx_export import export_model
    except ImportError as err:
        raise Failure(f"--onnx: ONNX export is not available ({err})") from None
    preprocessing = None
    if isinstance(data, TextData):
        example = torch.randint(0, data.vocab_size, (35, 2))
    else:  # the graph takes raw pixels in [0, 1] and normalises them itself
        example = torch.rand(2, *data.input_shape)  # type: ignore[attr-defined]
        preprocessing = data.preprocessing()  # type: ignore[attr-defined]
    path = out_dir / "model.onnx"
    report = export_model(model, ir, path, example=example, preprocessing=preprocessing)
    return {
        "path": str(report.path),
        "input": next(iter(report.inputs)),  # pixels (raw, in [0, 1]) or tokens
        "max_abs_diff": float(report.max_abs_diff),
        "export_seconds": float(report.export_seconds),
    }
