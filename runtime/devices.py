"""Choosing the device, seeding every random generator, and the CPU thread count."""

from __future__ import annotations

import random

import numpy as np
import torch

from .choices import DEVICE_CHOICES
from .errors import DeviceError


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; `cuda` (or `cuda:N`) without CUDA -> DeviceError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "a CUDA build" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(
                f"--device {name}: CUDA is not available on this machine "
                f"(torch {torch.__version__} is {build}; no GPU is visible); "
                "use --device cpu or --device auto"
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {name}: there are {torch.cuda.device_count()} CUDA devices"
            )
        return torch.device("cuda", index)
    raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (CUDA included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op CPU thread count (None: leave torch's default)."""
    if threads is not None:
        if threads < 1:
            raise DeviceError(f"--threads must be at least 1, not {threads}")
        torch.set_num_threads(threads)
