"""What a search leaves in its folder besides the store: the best architecture as a file,
its generated model, its ONNX export, and the kept weights of the best trial.

On an image data set, best_model.py carries the data's MEAN, STD, CLASS_NAMES and
preprocess(x), summary.json's best records them (`preprocessing`), and best_model.onnx
takes raw pixels in [0, 1] and normalises them in its graph, as `nasforge train` does.

The train evaluator saves every trained child's weights under DIR/weights/;
`WeightsKeeper` deletes each as soon as it is not the best so far, so the folder
holds one set of weights however long the search runs. A failed ONNX export is
reported and recorded (summary.json, report.md), never raised: the search itself
succeeded.

A search replaces or removes only files it wrote itself: each output is recorded in the
store (`TrialStore.record_outputs`) before it is written, and a child's weights are named
by its trial's metrics.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import traceback
from pathlib import Path
from typing import Any

from .pareto import cost_summary
from .report import best_summary, best_trial
from .store import TrialRecord, TrialStore

WEIGHTS_DIR = "weights"
SUMMARY_FILE = "summary.json"
BEST_ARCH = "best.arch"
BEST_MODEL = "best_model.py"
BEST_ONNX = "best_model.onnx"
BEST_WEIGHTS = "best_weights.pt"
# Every file write_outputs may write, as it names them in the store before writing.
OUTPUT_FILES = (BEST_ARCH, BEST_MODEL, BEST_ONNX, BEST_WEIGHTS, SUMMARY_FILE)


class WeightsKeeper:
    """Keeps the weights file of the best trial so far under DIR/weights, deletes the rest."""

    def __init__(self, folder: Path, trials: list[TrialRecord]) -> None:
        self.folder = folder
        self.best = best_trial(trials)

    def __call__(self, trial: TrialRecord) -> None:
        name = trial.metrics.get("weights") if trial.status == "ok" else None
        if not name:
            return
        # Strictly better: among equal rewards the earliest trial stays the best.
        if self.best is None or trial.reward > self.best.reward:
            previous, self.best = self.best, trial
            if previous is not None:
                self._delete(previous)
        else:
            self._delete(trial)

    def _delete(self, trial: TrialRecord) -> None:
        name = trial.metrics.get("weights")
        if name:
            (self.folder / str(name)).unlink(missing_ok=True)


def write_outputs(
    out_dir: Path, store: TrialStore, data: Any | None = None, *, onnx: bool = True
) -> dict[str, str]:
    """Write best.arch, best_model.py, best_weights.pt (when kept) and best_model.onnx for
    the best trial; what was written, as lines for the report (also in summary.json).

    `data` is the trained-on dataset, when there is one (a language model's vocabulary
    size is a build argument)."""
    from nasforge.codegen import generate, load_file
    from nasforge.grammar import parse, to_text

    trials = store.trials()
    best = best_trial(trials)
    outputs: dict[str, str] = {}
    store.record_outputs([SUMMARY_FILE, f"{SUMMARY_FILE}.part"])
    if best is None:
        outputs["best files"] = "none written: no trial succeeded"
        _write_summary(out_dir, None, outputs, cost_summary(trials))
        return outputs
    store.record_outputs([BEST_ARCH, BEST_MODEL])
    ir = parse(best.arch, f"trial {best.id}")
    header = f"# The best architecture of this search: trial {best.id}, reward {best.reward:.6f}\n"
    (out_dir / BEST_ARCH).write_text(header + to_text(ir) + "\n", encoding="utf-8")
    preprocessing = _preprocessing(data)
    model_path = out_dir / BEST_MODEL
    model_path.write_text(generate(ir, preprocessing=preprocessing), encoding="utf-8")
    outputs[BEST_ARCH] = f"trial {best.id} (canonical text)"
    outputs[BEST_MODEL] = "generated PyTorch file"
    weights = _keep_best_weights(out_dir, best, store)
    if weights is not None:
        outputs[BEST_WEIGHTS] = "the best trial's trained state_dict"
    kwargs: dict[str, Any] = {}
    if data is not None:
        from ..train import build_kwargs

        kwargs = build_kwargs(ir, data)
    if onnx:
        store.record_outputs([BEST_ONNX])
        module = load_file(model_path)
        outputs[BEST_ONNX] = _export(out_dir, ir, module, weights, kwargs, preprocessing)
    else:
        _remove_own(out_dir, BEST_ONNX, store)  # an earlier best's, if any
        outputs[BEST_ONNX] = "not exported (--no-onnx)"
    # build_kwargs: what `nasforge export DIR` builds best_model.py with; preprocessing:
    # the normalisation its graph then puts before the model.
    best_record = {**best_summary(best, store.config), "build_kwargs": kwargs}
    if preprocessing is not None:
        best_record["preprocessing"] = preprocessing.as_record()
    _write_summary(out_dir, best_record, outputs, cost_summary(trials))
    _remove_children_weights(out_dir / WEIGHTS_DIR, trials)  # the best's are kept
    return outputs


def _remove_own(out_dir: Path, name: str, store: TrialStore) -> None:
    """Remove DIR/name if this search wrote it (recorded in its store); else leave it."""
    if name in store.outputs():
        (out_dir / name).unlink(missing_ok=True)


# A child's weights file, and the partial file it renames (evaluators.py): a trial that
# was killed before it was stored leaves one, which no trial names.
_CHILD_WEIGHTS = re.compile(r"\.?[0-9a-f]{20}\.pt(\.[0-9]+\.part)?")


def _remove_children_weights(folder: Path, trials: list[TrialRecord]) -> None:
    """Remove the weights the search's children saved (named by their trials, or by the
    evaluator's own pattern), then the folder if that left it empty: anything else in it
    is not the search's."""
    names = {str(t.metrics.get("weights")) for t in trials if t.metrics.get("weights")}
    if folder.is_dir():
        names |= {p.name for p in folder.iterdir() if _CHILD_WEIGHTS.fullmatch(p.name)}
    for name in names:
        if Path(name).name == name:
            (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _keep_best_weights(out_dir: Path, best: TrialRecord, store: TrialStore) -> Path | None:
    """Copy the best trial's weights to DIR/best_weights.pt; its path, or None.

    A copy, not a move: DIR/weights/ is removed only after summary.json names the best
    trial, so a search killed in between finds either the source again or a summary
    that says whose weights best_weights.pt holds."""
    source = out_dir / WEIGHTS_DIR / str(best.metrics.get("weights") or "")
    kept = out_dir / BEST_WEIGHTS
    if best.metrics.get("weights") and source.is_file():
        partial = kept.with_suffix(".part")
        store.record_outputs([BEST_WEIGHTS, partial.name])
        shutil.copyfile(source, partial)
        partial.replace(kept)
        return kept
    if kept.is_file() and BEST_WEIGHTS in store.outputs():  # else not the search's
        if _recorded_best(out_dir) == best.id:
            return kept  # copied there by an earlier end of this search
        _remove_own(out_dir, BEST_WEIGHTS, store)  # an earlier best's: stale
    return None


def _preprocessing(data: Any | None) -> Any | None:
    """An image set's mean, std and class names (codegen's Preprocessing), else None."""
    if data is None or getattr(data, "kind", None) != "image":
        return None
    return data.preprocessing()


def _export(
    out_dir: Path,
    ir: Any,
    module: Any,
    weights: Path | None,
    build_kwargs: dict[str, Any],
    preprocessing: Any | None = None,
) -> str:
    """Export best_model.onnx; a line saying how, or why not."""
    path = out_dir / BEST_ONNX
    try:
        import torch

        from ..onnx_export import export_model

        torch.manual_seed(0)
        model = module.build_model(**build_kwargs)
        if weights is not None:
            # The folder may come from elsewhere: the weights-only loader runs no code.
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        report = export_model(model, ir, path, preprocessing=preprocessing)
    except Exception as err:  # any failure of the export: say so, keep the search's results
        path.unlink(missing_ok=True)
        where = traceback.extract_tb(err.__traceback__)[-1:]
        at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"FAILED: {type(err).__name__}: {first}{at}"
    trained = "trained weights" if weights is not None else "untrained (random) weights"
    return (
        f"exported with {trained}, onnxruntime max abs diff {report.max_abs_diff:.3g} "
        f"(opset {report.opset})"
    )


def _write_summary(
    out_dir: Path, best: dict[str, Any] | None, outputs: dict[str, str], costs: dict[str, Any]
) -> None:
    payload: dict[str, Any] = {"outputs": outputs}
    if best is not None:
        payload["best"] = best
    payload.update(costs)  # each trial's cost and the Pareto fronts (pareto.py)
    partial = out_dir / f"{SUMMARY_FILE}.part"
    partial.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    partial.replace(out_dir / SUMMARY_FILE)  # never half a summary


def _recorded_best(out_dir: Path) -> int | None:
    try:
        payload = json.loads((out_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
        return int(payload["best"]["trial"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_outputs(out_dir: Path) -> dict[str, str]:
    """The outputs recorded by the end of the search in DIR, if it got there."""
    try:
        payload = json.loads((out_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    return {str(k): str(v) for k, v in outputs.items()} if isinstance(outputs, dict) else {}
