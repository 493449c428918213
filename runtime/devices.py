"""Choosing the device, seeding every random generator, and the CPU thread count."""

from __future__ import annotations

import os
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


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a container or taskset
    narrows), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(processes: int = 1) -> int:
    """Torch threads for each of `processes` processes training at once: the usable cores
    shared out, never more (benchmarks/README.md, bench_threads.py: a thread more than its
    share of the cores made training several times slower under load)."""
    return max(1, usable_cores() // max(1, processes))


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU thread count (None: default_threads() of one process); the
    count."""
    if threads is None:
        threads = default_threads()
    if threads < 1:
        raise DeviceError(f"--threads must be at least 1, not {threads}")
    torch.set_num_threads(threads)
    return threads
