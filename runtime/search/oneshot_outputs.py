"""What a one-shot search leaves in its folder at its end, beside the store.

- best.arch: the derived architecture (the engine's `derive()`), canonical text;
- best_model.py: its generated file (nasforge.codegen.generate), with the data's MEAN,
  STD, CLASS_NAMES and preprocess() as a trained folder's model.py has them;
- best_weights.pt: that model's state_dict, trained with the runtime's recipe
  (runtime/train.py, `train_arch`) for --retrain-epochs from scratch, or with --inherit
  initialised from the supernet's weights (codegen.supernet.standalone_state_dict) and
  fine-tuned for --retrain-epochs (0: evaluated as inherited);
- best_model.onnx: exported from those weights and checked against onnxruntime; its
  graph takes raw pixels in [0, 1] and normalises them (the README's input contract);
- metrics.json: the final training's epochs, reward and parameters, mean, std and
  class names;
- supernet.py and supernet.pt: the generated supernet and its trained weights, so the
  supernet can be rebuilt and used again (docs/oneshot.md);
- summary.json: the outputs and the derived architecture (as for a multi-trial search,
  which `nasforge export DIR` reads).

As for a multi-trial search, each file is recorded in the store before it is written
(`TrialStore.record_outputs`), so a search replaces only what it wrote itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .outputs import (
    BEST_ARCH,
    BEST_MODEL,
    BEST_ONNX,
    BEST_WEIGHTS,
    SUMMARY_FILE,
    _export,
    _preprocessing,
)

METRICS_FILE = "metrics.json"
SUPERNET_FILE = "supernet.py"
SUPERNET_WEIGHTS = "supernet.pt"
ONESHOT_FILES = (
    BEST_ARCH,
    BEST_MODEL,
    BEST_WEIGHTS,
    BEST_ONNX,
    METRICS_FILE,
    SUPERNET_FILE,
    SUPERNET_WEIGHTS,
    SUMMARY_FILE,
)
EVAL_BATCH = 128  # the validation batch of an inherited model evaluated without training

EpochCallback = Callable[[dict[str, float]], None]


def write_oneshot_outputs(
    run: Any, arch: str, *, onnx: bool = True, on_epoch: EpochCallback | None = None
) -> dict[str, str]:
    """Write the files above for the derived architecture `arch` of the one-shot search
    `run` (a OneShotRun); what was written, as lines for the report and summary.json.
    `on_epoch` sees each epoch of the final training."""
    import torch
    from nasforge.codegen import generate, load_file
    from nasforge.grammar import parse, to_text

    out_dir, config, store = run.out_dir, run.config, run.store
    store.record_outputs([*ONESHOT_FILES, *(f"{name}.part" for name in ONESHOT_FILES)])
    ir = parse(arch, "the derived architecture")
    epochs = len(run.history)
    header = (
        f"# The architecture --strategy {config.strategy} derived on --space {config.space} "
        f"after {epochs} epoch(s) of one-shot search\n"
    )
    _write_text(out_dir / BEST_ARCH, header + to_text(ir) + "\n")
    model_path = out_dir / BEST_MODEL
    preprocessing = _preprocessing(run.data)  # the data's mean, std and class names
    _write_text(model_path, generate(ir, preprocessing=preprocessing))
    supernet_state = {k: v.detach().cpu() for k, v in run.search.supernet.state_dict().items()}
    _write_text(out_dir / SUPERNET_FILE, run.search.formatted_source())  # the code that trained
    _atomic(out_dir / SUPERNET_WEIGHTS, lambda path: torch.save(supernet_state, path))
    outputs = {
        BEST_ARCH: f"derived after {epochs} epoch(s) (canonical text)",
        BEST_MODEL: "generated PyTorch file",
        SUPERNET_FILE: "the generated supernet; supernet.pt holds its trained weights",
    }
    final = final_training(run, ir, load_file(model_path).build_model, supernet_state, on_epoch)
    weights = out_dir / BEST_WEIGHTS
    _atomic(weights, lambda path: torch.save(final.pop("model").state_dict(), path))
    outputs[BEST_WEIGHTS] = final["how"]
    metrics = {"arch": to_text(ir), **final, **_preprocessing_record(preprocessing), "onnx": None}
    _write_json(out_dir / METRICS_FILE, metrics)
    if onnx:
        module = load_file(model_path)
        outputs[BEST_ONNX] = _export(out_dir, ir, module, weights, {}, preprocessing)
        metrics["onnx"] = outputs[BEST_ONNX]
        _write_json(out_dir / METRICS_FILE, metrics)
    else:
        if BEST_ONNX in store.outputs():
            (out_dir / BEST_ONNX).unlink(missing_ok=True)  # an earlier end's, now stale
        outputs[BEST_ONNX] = "not exported (--no-onnx)"
    outputs[METRICS_FILE] = "the final training's epochs and reward"
    best = {
        "arch": to_text(ir, one_line=True),
        "val_acc": final["val_acc"],
        "reward": final["reward"],
        "parameters": final["parameters"],
        "search_epochs": epochs,
    }
    if preprocessing is not None:
        best["preprocessing"] = preprocessing.as_record()
    _write_json(out_dir / SUMMARY_FILE, {"outputs": outputs, "best": best, "build_kwargs": {}})
    return outputs


def _preprocessing_record(preprocessing: Any | None) -> dict[str, Any]:
    """metrics.json's mean, std and class_names, as `nasforge train` writes them."""
    return {} if preprocessing is None else preprocessing.as_record()


def final_training(
    run: Any,
    ir: Any,
    build_model: Callable[..., Any],
    supernet_state: dict[str, Any],
    on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train (or, inherited with 0 epochs, evaluate) the derived model; its record, with
    the trained module under "model"."""
    from ..devices import resolve_device, seed_everything
    from ..train import count_parameters, evaluate_image, train_arch

    config, data = run.config, run.data
    epochs = int(config.retrain_epochs or 0)
    device = resolve_device(config.device)
    inherited = inherited_state(run.search.spec, supernet_state, ir) if config.inherit else None

    def build(**kwargs: Any) -> Any:
        model = build_model(**kwargs)
        if inherited is not None:
            model.load_state_dict(inherited)
        return model

    began = time.perf_counter()
    if epochs > 0:
        result = train_arch(
            ir, data, epochs=epochs, device=device, seed=config.seed, build=build, on_epoch=on_epoch
        )
        model, rows, reward = result.model, result.metrics, result.reward
    else:
        seed_everything(config.seed)
        model = build().to(device)
        loss, accuracy = evaluate_image(model, data, device, EVAL_BATCH)
        rows, reward = [{"epoch": 0, "val_loss": loss, "val_acc": accuracy}], accuracy**3
    start = "the supernet's weights" if inherited is not None else "scratch"
    how = (
        f"trained {epochs} epoch(s) from {start} (the runtime's recipe)"
        if epochs
        else "the supernet's weights, inherited and evaluated (no training)"
    )
    return {
        "model": model.cpu().eval(),
        "how": how,
        "inherit": inherited is not None,
        "retrain_epochs": epochs,
        "epochs": rows,
        "val_acc": float(rows[-1]["val_acc"]),
        "reward": float(reward),
        "parameters": count_parameters(model),
        "seconds": time.perf_counter() - began,
        "device": str(device),
        "seed": config.seed,
        "dataset": config.dataset,
        "mean": list(data.mean),
        "std": list(data.std),
    }


def inherited_state(spec: Any, supernet_state: dict[str, Any], ir: Any) -> dict[str, Any]:
    """The state_dict of `ir`'s compiled file from the supernet's (names map one to one;
    the macro supernet's weights are sliced to the layers each layer reads)."""
    if type(spec).__name__ == "MacroSupernetSpec":
        from nasforge.codegen.supernet_macro import macro_standalone_state_dict

        return macro_standalone_state_dict(spec, supernet_state, ir)
    from nasforge.codegen.supernet import standalone_state_dict

    return standalone_state_dict(spec, supernet_state, ir)


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write `path` through a partial file: never half a file under its name."""
    partial = path.with_name(f"{path.name}.part")
    write(partial)
    partial.replace(path)


def _write_text(path: Path, text: str) -> None:
    _atomic(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    _write_text(path, json.dumps(payload, indent=2) + "\n")


def read_summary(out_dir: Path) -> dict[str, Any]:
    """summary.json of a finished one-shot search ({} before its end)."""
    try:
        payload = json.loads((out_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}
