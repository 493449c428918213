"""The NAS paper's 15-layer CIFAR-10 network written by hand, for the benchmarks.

The baseline the generated file (examples/nas_cifar15.arch) is measured against:
what one would write without a code generator, a loop over a layer table.
"""

from __future__ import annotations

import torch
from torch import nn

# (kernel height, kernel width, filters, inputs) from examples/nas_cifar15.arch.
NAS15 = [
    (3, 3, 36, []), (3, 3, 48, [1]), (3, 3, 36, [1, 2]), (5, 5, 36, [1, 2, 3]),
    (3, 7, 48, [3, 4]), (7, 7, 48, [2, 3, 4, 5]), (7, 7, 48, [2, 3, 4, 5, 6]),
    (7, 3, 36, [1, 6, 7]), (7, 1, 36, [1, 5, 6, 8]), (7, 7, 36, [1, 3, 4, 5, 6, 7, 8, 9]),
    (5, 7, 36, [1, 2, 5, 6, 7, 8, 9, 10]), (7, 7, 48, [1, 2, 3, 4, 6, 11]),
    (7, 5, 48, [1, 3, 6, 7, 8, 9, 10, 11, 12]), (7, 5, 48, [3, 7, 12, 13]),
    (7, 5, 48, [6, 7, 11, 12, 13, 14]),
]  # fmt: skip


class HandNas15(nn.Module):
    """How one would write the 15-layer network by hand: a loop over a layer table."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        channels = {0: 3}
        self.layers = nn.ModuleList()
        for i, (kh, kw, filters, inputs) in enumerate(NAS15, start=1):
            c_in = sum(channels[j] for j in inputs) if inputs else 3
            self.layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, filters, (kh, kw), padding=(kh // 2, kw // 2), bias=False),
                    nn.BatchNorm2d(filters),
                    nn.ReLU(inplace=True),
                )
            )
            channels[i] = filters
        self.classifier = nn.Linear(48, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for layer, (_, _, _, inputs) in zip(self.layers, NAS15, strict=True):
            source = torch.cat([outputs[j - 1] for j in inputs], 1) if inputs else x
            outputs.append(layer(source))
        return self.classifier(outputs[-1].mean((2, 3)))
