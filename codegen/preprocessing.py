"""What a trained image model expects of its input, as data a template may print.

`nasforge train` writes these into the trained folder's model.py: the per-channel mean
and standard deviation the training normalised by, and the class names (label i is
CLASS_NAMES[i]). Class names come from the user's folder names, so they reach the
source only as Python literals: each value is printed with repr and parsed back with
ast.literal_eval before a template sees it (PythonLiteral); a name such as
`x"); import os; ("` becomes a string constant, never code.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass


class PythonLiteral(str):
    """The repr of a constant (numbers, strings, tuples of them), checked to parse back to
    that very constant: a template may print it as code."""

    @classmethod
    def of(cls, value: object) -> PythonLiteral:
        text = repr(value)
        try:
            plain = _constant(ast.parse(text, mode="eval").body)
        except SyntaxError:
            plain = False
        if not plain or ast.literal_eval(text) != value:
            raise ValueError(f"{text} is not a plain constant")
        return cls(text)


def _constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float, str))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant)
    return isinstance(node, ast.Tuple) and all(_constant(item) for item in node.elts)


@dataclass(frozen=True)
class Preprocessing:
    """Per-channel mean and std (the input is (x - mean) / std of pixels in [0, 1]) and
    the class names; ValueError for values a model file cannot carry."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        mean = tuple(float(m) for m in self.mean)
        std = tuple(float(s) for s in self.std)
        if not mean or len(mean) != len(std):
            raise ValueError(f"mean {mean} and std {std} need one value per channel each")
        if not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
            raise ValueError(f"mean {mean} and std {std} must be finite, std positive")
        names = tuple(self.class_names)
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"class names must be non-empty strings, not {names!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "class_names", names)

    def as_record(self) -> dict[str, list]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
        }

    def literals(self) -> dict[str, PythonLiteral]:
        """MEAN, STD and CLASS_NAMES as literals for a template."""
        return {
            "mean": PythonLiteral.of(self.mean),
            "std": PythonLiteral.of(self.std),
            "class_names": PythonLiteral.of(self.class_names),
        }


def class_indices(classes: int) -> tuple[str, ...]:
    """The names of classes that have none: their labels, '0', '1', ..."""
    return tuple(str(i) for i in range(classes))
