"""One place that owns the identifiers of a generated file.

Templates never make up names: every variable, attribute and class name in a
generated file comes from a Namespace, which keeps them unique and away from
Python keywords, builtins and the names the file itself imports.
"""

from __future__ import annotations

import builtins
import keyword
import re

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Names every generated file defines or imports at module level.
RESERVED = frozenset(
    {"torch", "nn", "F", "math", "ARCH", "INPUT_SHAPE", "NUM_CLASSES", "build_model", "self", "x"}
)


class Namespace:
    """Hands out unique, safe identifiers derived from a requested base name."""

    def __init__(self, reserved: frozenset[str] = RESERVED) -> None:
        self._taken: set[str] = set(reserved)

    def name(self, base: str) -> str:
        """A fresh identifier for `base`: `base` itself if free, else `base_1`, `base_2`, ..."""
        if not _IDENTIFIER.match(base):
            raise ValueError(f"not an identifier: {base!r}")
        if keyword.iskeyword(base) or keyword.issoftkeyword(base) or hasattr(builtins, base):
            base += "_"
        candidate, n = base, 0
        while candidate in self._taken:
            n += 1
            candidate = f"{base}_{n}"
        self._taken.add(candidate)
        return candidate
