"""Will a model fit? A lower bound on the memory that training or exporting it needs, from
the exact cost model (codegen/cost.py), checked against what the device has free before
anything is built.

The language accepts networks far beyond any machine (a trillion parameters and more);
building one would ask for the memory at once, or (with Linux's overcommit) be killed
half-way through initialising it. The bound counts only what is certain to be held at
once, in float32:

- the parameters, `copies` times: training holds the weights, their gradients and SGD's
  momentum (3; plain SGD for language models: 2); an ONNX export holds the model, the
  exported file's copy and onnxruntime's session (3);
- one float per value of every part's output for a batch (times the sequence length for
  language models): what the backward pass keeps at the least.

Free memory is CUDA's `mem_get_info` on a GPU, and on the CPU Linux's `MemAvailable`
(/proc/meminfo), else the free physical pages `os.sysconf` reports; where neither is
known nothing is refused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import TooLarge

BYTES_PER_VALUE = 4  # float32
GIB = 2**30


@dataclass(frozen=True)
class MemoryNeed:
    """A lower bound on the bytes a model needs, and what it is made of."""

    parameters: int
    copies: int
    batch_values: int  # output values of all parts for one batch (one step of a sequence)

    @property
    def weight_bytes(self) -> int:
        return self.parameters * self.copies * BYTES_PER_VALUE

    @property
    def activation_bytes(self) -> int:
        return self.batch_values * BYTES_PER_VALUE

    @property
    def total(self) -> int:
        return self.weight_bytes + self.activation_bytes


def memory_need(
    arch: Any, kwargs: dict[str, object], *, batch: int, copies: int
) -> MemoryNeed | None:
    """The need of `arch` built with `kwargs` for a batch of `batch` examples (or, for a
    language model, `batch` token positions); None when the cost model cannot count it
    (a build argument it does not know: building reports that better)."""
    from nasforge.codegen.cost import cost

    try:
        counted = cost(arch, **kwargs)
    except (TypeError, ValueError):
        return None
    values = sum(math.prod(part.out_shape) for part in counted.parts)
    return MemoryNeed(counted.params, copies, values * batch)


def available_bytes(device: Any) -> int | None:
    """Free memory on `device` (a torch.device or its name), or None when unknown."""
    name = str(device)
    if name.startswith("cuda"):
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(torch.device(name))
        except (RuntimeError, AssertionError, ValueError):  # no CUDA after all: say nothing
            return None
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(
    arch: Any,
    kwargs: dict[str, object],
    *,
    device: Any,
    batch: int,
    copies: int,
    purpose: str = "training",
) -> None:
    """TooLarge, before anything is built, when `arch` needs more than `device` has free."""
    need = memory_need(arch, kwargs, batch=batch, copies=copies)
    if need is None:
        return
    free = available_bytes(device)
    if free is None or need.total <= free:
        return
    raise TooLarge(
        f"the model is too large for {purpose} on {device}: it needs at least "
        f"{_gib(need.total)} ({need.parameters:,} parameters x {need.copies} copies = "
        f"{_gib(need.weight_bytes)}, plus {_gib(need.activation_bytes)} of outputs for a "
        f"batch) but {_gib(free)} is free; nothing was built"
    )


def _gib(size: int) -> str:
    return f"{size / GIB:,.1f} GiB"
