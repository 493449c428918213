"""The files of DIR that the page may serve, and the generated model file of a trial.

No part of a request's path becomes a file path: the page serves only names from
`OUTPUT_FILES` (what a search writes beside its store), a trial's kept weights under
the name the store recorded for it, and sources generated from the store's canonical
text by the compiler. Every file is also checked to be a regular file, not a link, and
to lie directly in DIR (or DIR/weights).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from nasforge.runtime.search.outputs import (
    BEST_ARCH,
    BEST_MODEL,
    BEST_ONNX,
    BEST_WEIGHTS,
    SUMMARY_FILE,
    WEIGHTS_DIR,
)
from nasforge.runtime.search.report import PLOT_FILE, REPORT_FILE

OUTPUT_FILES = {
    BEST_ARCH: "text/plain; charset=utf-8",
    BEST_MODEL: "text/x-python; charset=utf-8",
    BEST_ONNX: "application/octet-stream",
    BEST_WEIGHTS: "application/octet-stream",
    REPORT_FILE: "text/markdown; charset=utf-8",
    PLOT_FILE: "image/png",
    SUMMARY_FILE: "application/json",
}


def safe_file(folder: Path, name: str) -> Path | None:
    """folder/name when `name` is a plain file name of a regular file (no link) there."""
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        return None
    path = folder / name
    try:
        if path.is_symlink() or not path.is_file() or folder.is_symlink():
            return None
    except OSError:
        return None
    return path


def output_file(out_dir: Path, name: str) -> Path | None:
    """One of the files the search writes beside its store, if it is there."""
    return safe_file(out_dir, name) if name in OUTPUT_FILES else None


def recorded_best(out_dir: Path) -> int | None:
    """The trial whose files the end of the search wrote (summary.json), if any."""
    path = output_file(out_dir, SUMMARY_FILE)
    try:
        payload = json.loads(path.read_text(encoding="utf-8")) if path else None
        return int(payload["best"]["trial"])  # type: ignore[index]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def trial_weights(out_dir: Path, trial: dict[str, Any]) -> Path | None:
    """The trial's trained weights where the search kept them: DIR/weights/NAME while the
    search runs (the best so far), DIR/best_weights.pt after it ended."""
    name = trial.get("metrics", {}).get("weights")
    if isinstance(name, str):
        kept = safe_file(out_dir / WEIGHTS_DIR, name)
        if kept is not None:
            return kept
    if recorded_best(out_dir) == trial["id"]:
        return output_file(out_dir, BEST_WEIGHTS)
    return None


def trial_onnx(out_dir: Path, trial: dict[str, Any]) -> Path | None:
    """best_model.onnx when it was exported from this trial."""
    return output_file(out_dir, BEST_ONNX) if recorded_best(out_dir) == trial["id"] else None


@functools.lru_cache(maxsize=64)
def model_source(arch: str) -> str:
    """The file `nasforge compile` writes for `arch` (NasforgeError if it does not parse)."""
    from nasforge.codegen import generate
    from nasforge.grammar import parse

    return generate(parse(arch, "<trial>"))


@functools.lru_cache(maxsize=64)
def highlighted(source: str) -> str:
    """The source as HTML with Pygments' classes (styled by static/pygments.css)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(source, PythonLexer(), HtmlFormatter(cssclass="source", linenos="table"))
