"""NASNet-A for CIFAR-10 written by hand, for comparison with the generated model.

Written from the description of TensorFlow slim's nets/nasnet (nasnet.py and
nasnet_utils.py): the cell tables below are slim's own (`operations`,
`hiddenstate_indices`, `used_hiddenstates`), where hidden state 0 is the previous
cell's output and 1 the one before. Only what NASNet-A CIFAR needs is here:
square kernels, add combines, the CIFAR stem, no auxiliary head, no drop-path.
"""

from __future__ import annotations

import torch
from torch import nn

NORMAL = (
    ["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3",
     "none", "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"],
    [0, 1, 1, 1, 0, 1, 1, 1, 0, 0],
    [1, 0, 0, 0, 0, 0, 0],
)  # fmt: skip
REDUCTION = (
    ["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3",
     "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"],
    [0, 1, 0, 1, 0, 1, 3, 2, 2, 0],
    [1, 1, 1, 0, 0, 0, 0],
)  # fmt: skip


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
    )


class FactorizedReduction(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.path1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.path2 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out // 2 * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(
            torch.cat([self.path1(x[:, :, ::2, ::2]), self.path2(shifted[:, :, ::2, ::2])], 1)
        )


def separable_stack(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for repeat in range(2):
        width = c_in if repeat == 0 else c_out
        layers += [
            nn.ReLU(),
            nn.Conv2d(
                width,
                width,
                kernel,
                stride if repeat == 0 else 1,
                kernel // 2,
                groups=width,
                bias=False,
            ),
            nn.Conv2d(width, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
    return nn.Sequential(*layers)


def make_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if name.startswith("separable"):
        return separable_stack(c_in, c_out, int(name.split("_")[1][0]), stride)
    if name == "none":
        return conv_bn(c_in, c_out, stride) if stride > 1 or c_in != c_out else nn.Identity()
    pool = nn.AvgPool2d if name.startswith("avg") else nn.MaxPool2d
    kwargs = {"count_include_pad": False} if pool is nn.AvgPool2d else {}
    if c_in == c_out:
        return pool(3, stride, 1, **kwargs)
    return nn.Sequential(
        pool(3, stride, 1, **kwargs), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
    )


class Cell(nn.Module):
    def __init__(
        self,
        table,
        prev_channels: int | None,
        in_channels: int,
        channels: int,
        reduce_prev: bool,
        stride: int,
    ) -> None:
        super().__init__()
        self.operations, self.indices, used = table
        self.unused = [i for i, u in enumerate(used) if not u]
        self.base = conv_bn(in_channels, channels)
        # slim: with no earlier output the cell reads its own raw input as hidden state 1.
        state_channels = [channels, channels if prev_channels is not None else in_channels]
        if prev_channels is None or (prev_channels == channels and not reduce_prev):
            self.prev = nn.Identity()
        elif reduce_prev:
            self.prev = nn.Sequential(nn.ReLU(), FactorizedReduction(prev_channels, channels))
        else:
            self.prev = conv_bn(prev_channels, channels)
        self.ops = nn.ModuleList(
            make_op(
                name,
                state_channels[index] if index < 2 else channels,
                channels,
                stride if index < 2 else 1,
            )
            for name, index in zip(self.operations, self.indices, strict=True)
        )
        # Unused states of another width pass a 1x1 conv (slim: factorized reduction, stride 1).
        self.fit = nn.ModuleList(
            nn.Identity()
            if index >= 2 or state_channels[index] == channels
            else nn.Sequential(
                nn.Conv2d(state_channels[index], channels, 1, bias=False), nn.BatchNorm2d(channels)
            )
            for index in self.unused
        )

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        states = [self.base(x), self.prev(prev)]
        for i in range(0, len(self.ops), 2):
            left = self.ops[i](states[self.indices[i]])
            right = self.ops[i + 1](states[self.indices[i + 1]])
            states.append(left + right)
        return torch.cat([fit(states[i]) for fit, i in zip(self.fit, self.unused, strict=True)], 1)


class NASNetACifar(nn.Module):
    def __init__(self, cells_per_stack: int = 6, filters: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        stem = filters * 3
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem)
        )
        self.cells = nn.ModuleList()
        self.prev_index: list[int] = []  # which earlier output each cell reads as its second input
        outputs: list[int | None] = [None, stem]  # channels of slim's cell_outputs: [None, stem]
        sizes = [32, 32]
        size, width = 32, filters
        for cell_num in range(3 * cells_per_stack):
            if cell_num in (cells_per_stack, 2 * cells_per_stack):
                width *= 2
                self._add(REDUCTION, outputs, sizes, width, 2, size)
                size = (size + 1) // 2
            self._add(NORMAL, outputs, sizes, width, 1, size)
        self.classifier = nn.Linear(outputs[-1], num_classes)

    def _add(
        self, table, outputs: list[int | None], sizes: list[int], width: int, stride: int, size: int
    ) -> None:
        unused = sum(1 for u in table[2] if not u)
        self.cells.append(Cell(table, outputs[-2], outputs[-1], width, sizes[-2] != size, stride))  # type: ignore[arg-type]
        outputs.append(unused * width)
        sizes.append((size + 1) // 2 if stride == 2 else size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [None, self.stem(x)]
        for cell in self.cells:
            prev = outputs[-2] if outputs[-2] is not None else outputs[-1]
            outputs.append(cell(outputs[-1], prev))  # type: ignore[arg-type]
        return self.classifier(torch.relu(outputs[-1]).mean((2, 3)))


if __name__ == "__main__":
    model = NASNetACifar()
    print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")
    print(tuple(model(torch.randn(2, 3, 32, 32)).shape))
