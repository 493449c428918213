"""The nasforge architecture language: parse, validate and print architectures."""

from __future__ import annotations

from .errors import ArchError, ArchSyntaxError, ArchValidationError, NasforgeError
from .parser import parse
from .printer import to_text
from .validate import validate

__all__ = [
    "ArchError",
    "ArchSyntaxError",
    "ArchValidationError",
    "NasforgeError",
    "parse",
    "to_text",
    "validate",
]
