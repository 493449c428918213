"""The options of a user's own data set (`--dataset PATH`), shared by train and search.

Torch-free: the CLI's --help imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from ..choices import AUGMENTATIONS, DEFAULT_VAL_FRACTION


class ImageSize(click.ParamType):
    """HxW, e.g. 32x32 -> (32, 32)."""

    name = "HxW"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
        if not match or 0 in (int(match[1]), int(match[2])):
            self.fail(f"{value!r} is not HxW with positive numbers (e.g. 32x32)", param, ctx)
        return int(match[1]), int(match[2])


class AugmentList(click.ParamType):
    """crop,flip,cutout -> ("crop", "flip", "cutout"): known names, each once, in that order."""

    name = "LIST"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = [part.strip() for part in str(value).split(",") if part.strip()]
        unknown = [name for name in names if name not in AUGMENTATIONS]
        if not names or unknown:
            self.fail(
                f"{value!r}: {'unknown ' + ', '.join(unknown) if unknown else 'no names'}; "
                f"give a comma-separated list of {', '.join(AUGMENTATIONS)}",
                param,
                ctx,
            )
        return tuple(name for name in AUGMENTATIONS if name in names)


def user_data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --val-fraction, --char, --resize, --skip-bad-files, --augment and --cutout to
    `command`."""
    for option in reversed(
        [
            click.option(
                "--val-fraction",
                default=DEFAULT_VAL_FRACTION,
                show_default=True,
                type=click.FloatRange(0, 1, min_open=True, max_open=True),
                help="A path data set without its own validation split: the share held "
                "out (seeded by --seed).",
            ),
            click.option("--char", is_flag=True, help="A text folder: character tokens."),
            click.option(
                "--resize", type=ImageSize(), help="A folder of images: resize each to HxW."
            ),
            click.option(
                "--skip-bad-files",
                is_flag=True,
                help="A folder of images: skip unreadable files (counted) instead of stopping.",
            ),
            click.option(
                "--augment",
                type=AugmentList(),
                help="Training images: crop (pad, random crop), flip (left-right), cutout; "
                "comma-separated (default: none).",
            ),
            click.option(
                "--cutout",
                type=click.IntRange(min=1),
                help="Cutout's square side in pixels (default: half the image; implies cutout).",
            ),
        ]
    ):
        command = option(command)
    return command


def user_options(
    val_fraction: float,
    char: bool,
    resize: tuple[int, int] | None,
    skip_bad_files: bool,
    channels: int | None = None,
    augment: tuple[str, ...] | None = None,
    cutout: int | None = None,
) -> Any:
    """The loader's UserDataOptions (imported here, when a command runs)."""
    from ..userdata import UserDataOptions

    return UserDataOptions(
        val_fraction=val_fraction,
        chars=char,
        resize=resize,
        channels=channels,
        skip_bad_files=skip_bad_files,
        augment=augment or (),
        cutout=cutout,
    )


def pop_data_options(given: dict[str, Any]) -> dict[str, Any]:
    """Take the data options out of a command's values: those not at their defaults, as
    JSON (the search store records them; resize as "HxW", augment as a list of names)."""
    values = {
        "val_fraction": given.pop("val_fraction"),
        "chars": given.pop("char"),
        "resize": given.pop("resize"),
        "skip_bad_files": given.pop("skip_bad_files"),
        "augment": list(given.pop("augment") or ()),
        "cutout": given.pop("cutout"),
    }
    if values["resize"] is not None:
        values["resize"] = "x".join(str(n) for n in values["resize"])
    defaults = {
        "val_fraction": DEFAULT_VAL_FRACTION,
        "chars": False,
        "resize": None,
        "augment": [],
        "cutout": None,
    }
    return {k: v for k, v in values.items() if v != defaults.get(k, False)}
