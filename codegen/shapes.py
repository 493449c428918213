"""Padding and output sizes shared by every family's lowering and the cost model."""

from __future__ import annotations


def same_padding(kernel: int) -> tuple[int, int]:
    """Padding before and after for a 'same' window: out = ceil(in / stride) for any stride.

    Odd kernels pad evenly (k // 2 each side); an even kernel pads one more
    after than before, as TensorFlow's SAME padding does at stride 1.
    """
    return (kernel - 1) // 2, kernel // 2


def same_out(size: int, stride: int) -> int:
    return -(-size // stride)
