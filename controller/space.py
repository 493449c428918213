"""Search spaces: a fixed sequence of decisions that always prints a valid architecture.

A space is a data file (`controller/spaces/*.toml`) naming its family and the
choices of every slot. The controller sees only the slot sequence; the space
turns a decision sequence into IR (validated by the grammar) and back, so any
string can be checked against a space and its decisions recovered from the
text alone (what lets a log-probability be recomputed from a string).

This module imports nothing heavy (no torch): `nasforge validate --space` uses it.
"""

from __future__ import annotations

import copy
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nasforge.grammar import limits, to_text
from nasforge.grammar.errors import ArchValidationError, NasforgeError
from nasforge.grammar.ir import NOWHERE, Arch, CellsArch, CnnArch, Pos

ANCHOR_CHOICES = ("no", "yes")  # an anchor slot's decision: 1 means layer `source` feeds `target`


@dataclass(frozen=True)
class Slot:
    """One decision of a space's sequence."""

    name: str  # unique in the sequence, e.g. "L3.kernel_h", "L3.anchor.L1", "normal.S2.op0"
    kind: str  # "choice" or "anchor" (anchor: does layer `source` feed layer `target`)
    choices: tuple[str, ...]  # printable labels; the decision value is the index
    source: int | None = None  # anchors only
    target: int | None = None  # anchors only


class SpaceError(NasforgeError):
    """A search space that cannot be loaded: unknown name, bad data file."""


class OutsideSpaceError(ArchValidationError):
    """A valid architecture that the space cannot produce.

    `slot` names the decision that is outside the space (None when the
    architecture's shape differs, e.g. another family); `value` is what the
    architecture has there and `choices` what the space allows.
    """

    def __init__(
        self,
        message: str,
        pos: Pos = NOWHERE,
        *,
        slot: str | None = None,
        value: str | None = None,
        choices: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, pos, choices=choices)
        self.slot = slot
        self.value = value


class Space(ABC):
    """A search space: the decision sequence of one family and its mapping to architectures.

    cnn spaces grow with a depth schedule (NAS paper: start at 6 layers, +2
    every 1,600 samples, up to the maximum); `slots(depth)` of a smaller depth
    is a prefix of a larger depth's, so a controller shares its weights across
    depths. Other families have one depth (`None`).
    """

    name: str
    family: str
    doc: str
    default_depth: int | None = None  # where the depth schedule starts
    max_depth: int | None = None
    depth_step: int | None = None  # layers added ...
    depth_every: int | None = None  # ... every this many samples

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.doc = doc
        self._slots: dict[int | None, tuple[Slot, ...]] = {}

    # --- the sequence ----------------------------------------------------------------

    def slots(self, depth: int | None = None) -> tuple[Slot, ...]:
        """The decision sequence at `depth` (None: the space's full depth)."""
        depth = self.check_depth(depth)
        if depth not in self._slots:
            self._slots[depth] = tuple(self._build_slots(depth))
        return self._slots[depth]

    @abstractmethod
    def _build_slots(self, depth: int | None) -> list[Slot]: ...

    def layer_starts(self, depth: int | None = None) -> tuple[int, ...]:
        """The index in `slots(depth)` of each layer's first slot (cnn); () for other families.

        A controller takes one extra step at each layer start, the paper's
        anchor point, whose output is that layer's key for the anchor attention.
        """
        return ()

    def check_depth(self, depth: int | None) -> int | None:
        """The depth to use for `depth` (None: the full depth); ValueError if out of range."""
        if self.max_depth is None:
            if depth is not None:
                raise ValueError(f"the space {self.name!r} has no depth; pass depth=None")
            return None
        if depth is None:
            return self.max_depth
        if not 1 <= depth <= self.max_depth:
            raise ValueError(f"depth {depth} is outside 1..{self.max_depth} for {self.name!r}")
        return depth

    def depth_at(self, samples: int) -> int | None:
        """The depth schedule: how many layers to sample after `samples` samples."""
        if self.max_depth is None:
            return None
        start = self.default_depth or self.max_depth
        if not self.depth_step or not self.depth_every:
            return min(start, self.max_depth)
        return min(self.max_depth, start + self.depth_step * (samples // self.depth_every))

    def with_schedule(
        self,
        *,
        start: int | None = None,
        step: int | None = None,
        every: int | None = None,
        max_depth: int | None = None,
    ) -> Space:
        """A copy with the depth schedule overridden (cnn spaces only)."""
        if self.max_depth is None:
            raise ValueError(f"the space {self.name!r} has no depth schedule")
        other = copy.copy(self)
        other._slots = {}
        if max_depth is not None:
            other.max_depth = max_depth
        if start is not None:
            other.default_depth = start
        if step is not None:
            other.depth_step = step
        if every is not None:
            other.depth_every = every
        assert other.max_depth is not None
        if not 1 <= (other.default_depth or 1) <= other.max_depth:
            raise ValueError(
                f"the schedule starts at {other.default_depth} layers, outside 1..{other.max_depth}"
            )
        return other

    def with_data(self, input_shape: Sequence[int], classes: int) -> Space:
        """A copy whose architectures take `input_shape` ([C, H, W]) and `classes` classes.

        Image families only (cnn, cells): a built-in space follows the data set it
        searches on. The copy is checked by building its first architecture, so a
        space that cannot hold such an input raises the grammar's error here.
        """
        if not hasattr(self, "input_shape"):
            raise ValueError(f"the space {self.name!r} ({self.family}) takes no image input")
        other = copy.copy(self)
        other._slots = {}
        other.input_shape = tuple(int(n) for n in input_shape)  # type: ignore[attr-defined]
        other.classes = int(classes)  # type: ignore[attr-defined]
        depth = other.depth_at(0)
        other.to_arch([0] * len(other.slots(depth)), depth)
        return other

    def size(self, depth: int | None = None) -> int:
        """How many decision sequences there are at `depth`."""
        total = 1
        for slot in self.slots(depth):
            total *= len(slot.choices)
        return total

    # --- decisions <-> architectures ----------------------------------------------------

    def check_decisions(
        self, decisions: Sequence[int], depth: int | None = None
    ) -> tuple[Slot, ...]:
        """The slots at `depth`, after checking `decisions` fits them; ValueError if not."""
        slots = self.slots(depth)
        if len(decisions) != len(slots):
            raise ValueError(
                f"the space {self.name!r} takes {len(slots)} decisions at depth {depth}, "
                f"not {len(decisions)}"
            )
        for slot, value in zip(slots, decisions, strict=True):
            if not 0 <= int(value) < len(slot.choices):
                raise ValueError(
                    f"decision {value} for slot {slot.name} is outside 0..{len(slot.choices) - 1}"
                )
        return slots

    @abstractmethod
    def to_arch(self, decisions: Sequence[int], depth: int | None = None) -> Arch:
        """The validated IR that `decisions` describe."""

    def to_text(self, decisions: Sequence[int], depth: int | None = None) -> str:
        """The canonical one-line text of `decisions`' architecture."""
        return to_text(self.to_arch(decisions, depth), one_line=True)

    @abstractmethod
    def decisions_of(self, arch: Arch) -> tuple[tuple[int, ...], int | None]:
        """The decisions (and depth) that produce `arch`; OutsideSpaceError if none do."""

    # --- helpers for the families' decisions_of --------------------------------------

    def outside(
        self, slot: str, value: object, choices: Sequence[str], pos: Pos
    ) -> OutsideSpaceError:
        """The error for `value` at `slot`, naming what the space allows there."""
        allowed = tuple(choices)
        return OutsideSpaceError(
            f"{slot} is {value}, outside the space '{self.name}': it allows {', '.join(allowed)}",
            pos,
            slot=slot,
            value=str(value),
            choices=allowed,
        )

    def mismatch(self, message: str, pos: Pos, choices: Sequence[str] = ()) -> OutsideSpaceError:
        """An architecture whose shape (family, header, size) the space does not have."""
        return OutsideSpaceError(
            f"{message}, outside the space '{self.name}'", pos, choices=tuple(choices)
        )

    def check_image_header(
        self, arch: CnnArch | CellsArch, input_shape: tuple[int, ...], classes: int
    ) -> None:
        """The error for an image architecture whose input or class count is not the space's."""
        shape = "x".join(str(n) for n in input_shape)
        if arch.input_shape != input_shape:
            given = "x".join(str(n) for n in arch.input_shape)
            raise self.mismatch(f"input {given} is not {shape}", arch.pos, (shape,))
        if arch.classes != classes:
            raise self.mismatch(
                f"classes {arch.classes} is not {classes}", arch.pos, (str(classes),)
            )

    def pick(self, slot: Slot, label: str, pos: Pos) -> int:
        """The decision whose label is `label` at `slot`, or the error saying what is allowed."""
        try:
            return slot.choices.index(label)
        except ValueError:
            raise self.outside(slot.name, label, slot.choices, pos) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.family})>"


# --- loading ---------------------------------------------------------------------------

SPACES_PACKAGE = "nasforge.controller.spaces"
# The most of a space file that is read (the built-in ones are under 1 KB).
MAX_SPACE_CHARS = 65_536


def _builtin_dir() -> Path:
    return Path(str(resources.files("nasforge.controller").joinpath("spaces")))


def space_names() -> list[str]:
    """The built-in spaces' names, sorted."""
    return sorted(p.stem for p in _builtin_dir().glob("*.toml"))


def load_space(name_or_path: str) -> Space:
    """A built-in space by name, or a space data file by path (ending in .toml)."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise SpaceError(f"no such space file: {name_or_path}")
    else:
        path = _builtin_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            raise SpaceError(
                f"unknown space {name_or_path!r}; valid spaces: {', '.join(space_names())}"
                " (or the path of a .toml file)"
            )
    try:
        with path.open(encoding="utf-8-sig") as handle:  # a byte-order mark is ignored
            text = handle.read(MAX_SPACE_CHARS + 1)
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError(f"cannot read {path}: {err}") from None
    if len(text) > MAX_SPACE_CHARS:
        raise SpaceError(
            f"cannot read {path}: more than {MAX_SPACE_CHARS:,} characters; a space file has "
            f"at most {MAX_SPACE_CHARS:,}"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpaceError(f"{path}: not valid TOML: {err}") from None
    return space_from_data(data, default_name=path.stem, where=str(path))


def space_from_data(data: Mapping[str, Any], *, default_name: str, where: str) -> Space:
    """Build a space from parsed TOML data (`where` names it in errors)."""
    reader = Table(data, where)
    family = reader.text("family")
    name = reader.text("name", default_name)
    doc = reader.text("doc", "")
    if family == "cnn":
        from .space_cnn import CnnSpace

        space: Space = CnnSpace.read(name, doc, reader)
    elif family == "rnn":
        from .space_rnn import RnnSpace

        space = RnnSpace.read(name, doc, reader)
    elif family == "cells":
        from .space_cells import CellsSpace

        space = CellsSpace.read(name, doc, reader)
    else:
        raise SpaceError(f"{where}: family is {family!r}; valid families: cnn, rnn, cells")
    reader.finish()
    return space


class Table:
    """Typed access to a TOML table that remembers which keys were read.

    `finish` rejects keys nobody read, so a misspelt key in a space file is an
    error instead of a silently ignored setting.
    """

    def __init__(self, data: Mapping[str, Any], where: str, prefix: str = "") -> None:
        self.data = data
        self.where = where
        self.prefix = prefix
        self.read: set[str] = set()
        self.children: list[Table] = []

    def error(self, key: str, message: str) -> SpaceError:
        return SpaceError(f"{self.where}: {self.prefix}{key}: {message}")

    def value(self, key: str, default: Any) -> Any:
        self.read.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.error(key, "missing")
        return default

    def text(self, key: str, default: Any = None) -> str:
        value = self.value(key, _REQUIRED if default is None else default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {value!r}")
        return value

    def integer(self, key: str, default: Any = None, *, low: int = 1, high: int = 10**9) -> int:
        value = self.value(key, _REQUIRED if default is None else default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.error(key, f"must be a whole number from {low} to {high}, not {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def optional_integer(self, key: str, *, low: int = 1, high: int = 10**9) -> int | None:
        if key not in self.data:
            self.read.add(key)
            return None
        return self.integer(key, low=low, high=high)

    def integers(
        self, key: str, default: Any = None, *, low: int = 1, high: int = 10**9
    ) -> tuple[int, ...]:
        """A list of choices: distinct whole numbers in [low, high]."""
        value = self.value(key, _REQUIRED if default is None else default)
        if not _whole_numbers(value, low, high) or len(set(value)) != len(value):
            raise self.error(
                key, f"must be a non-empty list of distinct whole numbers from {low} to {high}"
            )
        return tuple(value)

    def shape(self, key: str) -> tuple[int, int, int]:
        """An input shape [channels, height, width] within the grammar's limits."""
        value = self.value(key, _REQUIRED)
        if (
            not _whole_numbers(value, 1, limits.MAX_INPUT_SIZE)
            or len(value) != 3
            or value[0] > limits.MAX_INPUT_CHANNELS
        ):
            raise self.error(key, f"must be [channels, height, width], not {value!r}")
        return (value[0], value[1], value[2])

    def names(
        self, key: str, table: Mapping[str, object], default: Any = None, *, empty: bool = False
    ) -> tuple[str, ...]:
        """A list of names, each a key of the op table `table` (errors list the valid ones)."""
        value = self.value(key, _REQUIRED if default is None else default)
        if (
            not isinstance(value, list)
            or (not value and not empty)
            or len(set(value)) != len(value)
        ):
            raise self.error(key, "must be a non-empty list of distinct names")
        for item in value:
            if item not in table:
                raise self.error(key, f"unknown name {item!r}; valid: {', '.join(table)}")
        return tuple(value)

    def table(self, key: str) -> Table:
        value = self.value(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        child = Table(value, self.where, f"{self.prefix}{key}.")
        self.children.append(child)
        return child

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise self.error(unknown[0], "unknown key")
        for child in self.children:
            child.finish()


_REQUIRED = object()


def _whole_numbers(value: object, low: int, high: int) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value)
    )
