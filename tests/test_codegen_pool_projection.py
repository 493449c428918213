"""A pooling layer with a filter count: ENAS's pool branch in the cnn family.

ENAS's reference code (src/cifar10/general_child.py, `_pool_branch`) projects a
pool branch's input to out_filters with a 1x1 conv, batch norm and ReLU, then
pools, so every op of its macro space outputs out_filters channels.
`maxpool 3x3 n6` is that branch; `maxpool 3x3` keeps its input's channels as before.
"""

from __future__ import annotations

import pytest
import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.cost import cost
from nasforge.grammar import parse, to_text
from torch import nn

TEXT = (
    "cnn input 3x8x8 classes 10; L1: conv 3x3 n4; L2: maxpool 3x3 n6 <- L1; "
    "L3: avgpool 2x2 s2x2 n5 <- L1 L2"
)


def _model(text: str) -> nn.Module:
    return load_source(generate(parse(text))).build_model()


def test_pooling_filters_parse_and_print() -> None:
    arch = parse(TEXT)
    assert [layer.filters for layer in arch.layers] == [4, 6, 5]
    assert "L2: maxpool 3x3 n6 <- L1" in to_text(arch)
    assert parse(to_text(arch)) == arch
    assert parse("cnn input 3x8x8 classes 10; L1: maxpool 3x3").layers[0].filters is None


def test_projection_cost_is_the_hand_count() -> None:
    # L1 (8x8, 3 -> 4): 3*3*3*4 = 108 weights + BN 8; multiply-adds 108 * 64 = 6,912.
    # L2 (8x8, 4 -> 6): 1x1 conv 4*6 = 24 + BN 12; multiply-adds 24 * 64 = 1,536 (the
    #   projection runs at the input's resolution; the pool is free).
    # L3 (reads 4 + 6 = 10 channels at 8x8, pools to 4x4): 10*5 = 50 + BN 10; multiply-adds
    #   50 * 64 = 3,200.  classifier: 5*10 + 10 = 60; multiply-adds 50.
    counted = cost(parse(TEXT))
    assert [(p.params, p.macs) for p in counted.parts] == [
        (116, 6912),
        (36, 1536),
        (60, 3200),
        (60, 50),
    ]
    assert sum(p.numel() for p in _model(TEXT).parameters()) == counted.params == 272


def test_projection_is_conv1x1_bn_relu_then_the_pool() -> None:
    model = _model(TEXT)
    conv, bn, relu, pool = model.l2
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (4, 6, (1, 1))
    assert conv.bias is None and isinstance(bn, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
    assert isinstance(pool, nn.MaxPool2d)
    conv, *_, pool = model.l3  # an even window: TensorFlow's SAME average pool
    assert conv.in_channels == 10 and type(pool).__name__ == "UnevenAvgPool2d"


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_projection_computes_enas_pool_branch(kind: str) -> None:
    text = f"cnn input 3x8x8 classes 10; L1: {kind} 3x3 n6"
    model = _model(text).eval()
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_()
    x = torch.randn(2, 3, 8, 8)
    conv, bn, _, _ = model.l1
    expected = torch.relu(bn(nn.functional.conv2d(x, conv.weight)))
    if kind == "maxpool":
        expected = nn.functional.max_pool2d(expected, 3, stride=1, padding=1)
    else:
        expected = nn.functional.avg_pool2d(
            expected, 3, stride=1, padding=1, count_include_pad=False
        )
    with torch.no_grad():
        assert torch.allclose(model.l1(x), expected, atol=1e-6)
    assert model(x).shape == (2, 10)


def test_pooling_without_filters_keeps_its_channels() -> None:
    source = generate(parse("cnn input 3x8x8 classes 10; L1: maxpool 3x3 s2x2"))
    assert "nn.Conv2d" not in source and "kernel_size=1" not in source
