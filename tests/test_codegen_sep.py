"""The cnn family's separable conv layer (ENAS's macro-space op): what it builds and costs.

ENAS's reference code (src/cifar10/general_child.py, _conv_branch with
separable=True) applies tf.nn.separable_conv2d (depthwise with channel multiplier
1, then pointwise, no bias), then batch norm, then ReLU; the hand counts below
follow that layer.
"""

from __future__ import annotations

import torch
from nasforge.codegen import generate, load_source
from nasforge.codegen.cost import cost
from nasforge.grammar import parse, to_text
from torch import nn

TEXT = "cnn input 3x8x8 classes 10; L1: sep 3x3 n4; L2: sep 5x5 s2x2 n6 nobn <- L1"


def _model(text: str) -> nn.Module:
    return load_source(generate(parse(text))).build_model()


def test_sep_layers_parse_print_and_take_flags() -> None:
    arch = parse(TEXT)
    assert [layer.kind for layer in arch.layers] == ["sep", "sep"]
    assert not arch.layers[1].batchnorm
    assert parse(to_text(arch)) == arch
    assert parse("cnn input 3x8x8 classes 10; L1: sep 3x3 n4 lrn").layers[0].lrn


def test_sep_cost_is_the_hand_count() -> None:
    # L1 (8x8 out, 3 -> 4): depthwise 3*3*3 = 27 weights, pointwise 3*4 = 12, BN 2*4 = 8;
    #   multiply-adds (27 + 12) * 64 = 2,496.
    # L2 (4x4 out, 4 -> 6, nobn): depthwise 5*5*4 = 100, pointwise 4*6 + 6 bias = 30;
    #   multiply-adds (100 + 24) * 16 = 1,984.
    # classifier: 6*10 + 10 = 70; multiply-adds 60.
    counted = cost(parse(TEXT))
    assert [(p.params, p.macs) for p in counted.parts] == [(47, 2496), (130, 1984), (70, 60)]
    assert (counted.params, counted.macs) == (247, 4540)
    assert sum(p.numel() for p in _model(TEXT).parameters()) == 247


def test_sep_layer_is_depthwise_pointwise_bn_relu() -> None:
    model = _model(TEXT)
    depthwise, pointwise, bn, relu = model.l1
    assert (depthwise.groups, depthwise.in_channels, depthwise.out_channels) == (3, 3, 3)
    assert depthwise.kernel_size == (3, 3) and depthwise.bias is None
    assert pointwise.kernel_size == (1, 1) and pointwise.bias is None
    assert isinstance(bn, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
    depthwise, pointwise, relu = model.l2  # nobn: the pointwise conv takes the bias
    assert depthwise.stride == (2, 2) and depthwise.groups == 4
    assert pointwise.bias is not None and isinstance(relu, nn.ReLU)


def test_sep_layer_computes_separable_conv_bn_relu() -> None:
    model = _model(TEXT).eval()
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_()
    x = torch.randn(2, 3, 8, 8)
    depthwise, pointwise, bn, _ = model.l1
    expected = nn.functional.conv2d(x, depthwise.weight, padding=1, groups=3)
    expected = nn.functional.conv2d(expected, pointwise.weight)
    expected = torch.relu(bn(expected))
    with torch.no_grad():
        assert torch.allclose(model.l1(x), expected, atol=1e-6)
