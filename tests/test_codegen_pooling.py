"""cnn pooling against an independent computation of "same" windows, for every kind,
window parity and stride.

The language's rule (grammar/README.md, cnn): a window of size k is padded (k - 1) // 2
before and k // 2 after, at every stride, so out = ceil(in / stride); at stride 1 that
is TensorFlow's SAME padding. Padding never takes part in a result: max pooling ignores
it, average pooling divides by the number of input pixels in the window (TensorFlow's
SAME average pooling). The reference below loops over the windows clipped to the input.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from nasforge.codegen import generate, load_source
from nasforge.grammar import parse

KERNELS = [(1, 1), (2, 2), (3, 3), (4, 4), (2, 3), (5, 4)]  # odd, even and mixed parity
STRIDES = [(1, 1), (2, 2), (3, 2)]
HEIGHT, WIDTH = 7, 8


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one axis."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def reference_pool(x: np.ndarray, kind: str, kernel: tuple[int, int], stride: tuple[int, int]):
    """Pool (C, H, W) over windows starting (k - 1) // 2 before each strided position,
    clipped to the input."""
    _, height, width = x.shape
    rows, cols = math.ceil(height / stride[0]), math.ceil(width / stride[1])
    out = np.empty((x.shape[0], rows, cols), dtype=np.float64)
    for i, j in itertools.product(range(rows), range(cols)):
        top = i * stride[0] - (kernel[0] - 1) // 2
        left = j * stride[1] - (kernel[1] - 1) // 2
        window = x[:, max(top, 0) : top + kernel[0], max(left, 0) : left + kernel[1]]
        out[:, i, j] = window.max(axis=(1, 2)) if kind == "maxpool" else window.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_rule_is_tensorflow_same_at_stride_one(kernel):
    for k, size in zip(kernel, (HEIGHT, WIDTH), strict=True):
        assert tf_same_padding(size, k, 1) == ((k - 1) // 2, k // 2)


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("stride", STRIDES)
def test_pooling_matches_same_windows_without_their_padding(kind, kernel, stride):
    text = (
        f"cnn input 3x{HEIGHT}x{WIDTH} classes 2; "
        f"L1: {kind} {kernel[0]}x{kernel[1]} s{stride[0]}x{stride[1]}"
    )
    layer = load_source(generate(parse(text))).build_model().l1
    x = torch.randn(2, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = layer(x).double().numpy()
    want = np.stack([reference_pool(sample, kind, kernel, stride) for sample in x.double().numpy()])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_even_average_pooling_of_ones_is_one_everywhere():
    """The issue's case: a 2x2 average over all ones, edges and corner included."""
    text = "cnn input 1x4x4 classes 2; L1: avgpool 2x2 s1x1"
    layer = load_source(generate(parse(text))).build_model().l1
    with torch.no_grad():
        out = layer(torch.ones(1, 1, 4, 4))
    torch.testing.assert_close(out, torch.ones(1, 1, 4, 4), rtol=0, atol=1e-6)
