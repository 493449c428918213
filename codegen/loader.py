"""Loading generated source as a module whose tracebacks show the generated lines."""

from __future__ import annotations

import hashlib
import importlib.util
import linecache
import sys
from pathlib import Path
from types import ModuleType


def load_source(source: str, name: str | None = None) -> ModuleType:
    """Execute generated `source` as a fresh module.

    The source is registered with linecache under a file-like name, so a
    traceback through the generated model shows its real lines.
    """
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    module_name = name or f"nasforge_generated_{digest}"
    filename = f"<nasforge:{module_name}.py>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = ModuleType(module_name)
    module.__file__ = filename
    code = compile(source, filename, "exec")
    # Registered before exec so dataclasses/pickle inside the file can find it.
    sys.modules[module_name] = module
    exec(code, module.__dict__)
    return module


def load_file(path: str | Path, name: str | None = None) -> ModuleType:
    """Import a generated file from disk (its tracebacks point at the file itself)."""
    path = Path(path)
    module_name = (
        name or f"nasforge_file_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
    )
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
