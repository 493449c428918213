"""Typed errors: every error nasforge raises on purpose derives from NasforgeError.

An ArchError knows where it happened (line and column in the architecture
text) and prints itself the way compilers do:

    model.arch:3:18: error: unexpected layer name 'L1'; expected ...
      L2: conv 3x3 n48 L1
                       ^
      hint: anchors come after '<-' ...
"""

from __future__ import annotations

from .ir import NOWHERE, Pos

CONTEXT_WIDTH = 100  # characters of a long source line shown around the error's column


class NasforgeError(Exception):
    """Base class of every error nasforge raises on purpose."""


class ArchError(NasforgeError):
    """A problem with an architecture text, at a line and column of it."""

    def __init__(self, message: str, pos: Pos = NOWHERE, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint
        self.source: str | None = None
        self.filename = "<arch>"

    @property
    def line(self) -> int:
        return self.pos.line

    @property
    def column(self) -> int:
        return self.pos.col

    def attach(self, source: str, filename: str) -> ArchError:
        """Record the text and file name the position refers to; returns self."""
        self.source = source
        self.filename = filename
        return self

    def context(self) -> str:
        """The offending source line with a caret under the column ('' if unknown)."""
        if self.source is None or self.pos.line < 1:
            return ""
        lines = self.source.split("\n")
        if self.pos.line > len(lines):
            return ""
        text = lines[self.pos.line - 1].rstrip("\r")
        before = max(self.pos.col - 1, 0)
        if len(text) > CONTEXT_WIDTH:  # a long line shows a window around the column
            start = max(0, min(before - CONTEXT_WIDTH // 2, len(text) - CONTEXT_WIDTH))
            end = start + CONTEXT_WIDTH
            head = "..." if start > 0 else ""
            text = head + text[start:end] + ("..." if end < len(text) else "")
            before = len(head) + before - start
        # Tabs keep their width so the caret lines up under the character.
        pad = "".join("\t" if ch == "\t" else " " for ch in text[:before])
        return f"  {_printable(text)}\n  {pad}^"

    def __str__(self) -> str:
        where = self.filename
        if self.pos.line > 0:
            where += f":{self.pos.line}:{self.pos.col}"
        parts = [f"{where}: error: {self.message}"]
        context = self.context()
        if context:
            parts.append(context)
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


class ArchSyntaxError(ArchError):
    """The text does not follow the grammar.

    `expected` lists what could have come at that place, in plain words;
    `label` names a common mistake when the error matches one.
    """

    def __init__(
        self,
        message: str,
        pos: Pos,
        *,
        expected: tuple[str, ...] = (),
        label: str | None = None,
    ) -> None:
        super().__init__(message, pos, hint=label)
        self.expected = expected
        self.label = label


class ArchValidationError(ArchError):
    """The text parses but does not describe a valid architecture.

    `choices` lists the valid values where the problem is a bad choice.
    """

    def __init__(
        self,
        message: str,
        pos: Pos = NOWHERE,
        *,
        choices: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, pos, hint=hint)
        self.choices = choices


def _printable(text: str) -> str:
    """The line as shown to a person: control characters (NUL, escapes) made visible."""
    return "".join(
        ch if ch == "\t" or ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in text
    )
