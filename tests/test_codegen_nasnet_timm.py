"""NASNet-A's ImageNet numerics against timm's TensorFlow-slim port, through the key map.

timm's `nasnetalarge` (random weights, nothing downloaded) is loaded into the generated
NASNet-A Large through nasforge's key map; in eval mode both give the same logits. The
ImageNet configurations match slim: batch-norm epsilon 1e-3 and TensorFlow's SAME padding
at stride 2. One reference difference is taken out first: timm's strided average pools
zero-pad and then count the padding (timm/layers/pool2d_same.py says as much), where
TensorFlow's SAME average pooling counts only the input pixels; those pools are swapped
for the TensorFlow computation below, so the comparison is with slim.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from nasforge.codegen import generate, load_source
from nasforge.codegen.nasnet_weights import from_timm_nasnet, timm_nasnet_key
from nasforge.grammar import parse

timm = pytest.importorskip("timm")
from timm.layers.pool2d_same import AvgPool2dSame  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SLOW = bool(os.environ.get("NASFORGE_SLOW"))
# conv0 (VALID, stride 2) gives 16x17, then the four reductions see 16x17, 8x9, 4x5 and
# 2x3: stride-2 windows over even and odd sizes, so SAME pads both evenly and unevenly.
HEIGHT, WIDTH = 33, 35


@pytest.fixture(autouse=True, scope="module")
def _two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def _model(name: str) -> torch.nn.Module:
    path = ROOT / "examples" / f"{name}.arch"
    return load_source(generate(parse(path.read_text(encoding="utf-8")), black=False)).build_model()


class _TfSameAvgPool(torch.nn.Module):
    """TensorFlow's SAME average pooling: the padding is left out of each count."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            out = -(-size // self.stride)
            total = max((out - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        ones = torch.ones_like(x[:1, :1])
        summed = F.avg_pool2d(F.pad(x, pads), self.kernel, self.stride)
        return summed / F.avg_pool2d(F.pad(ones, pads), self.kernel, self.stride)


def _slim_reference() -> torch.nn.Module:
    torch.manual_seed(0)
    reference = timm.create_model("nasnetalarge", pretrained=False).eval()
    with torch.no_grad():
        for module in reference.modules():
            # Statistics away from (0, 1), so a different epsilon changes the logits.
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    swapped = 0
    for parent in list(reference.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, AvgPool2dSame):
                setattr(parent, name, _TfSameAvgPool(child.kernel_size[0], child.stride[0]))
                swapped += 1
    assert swapped == 4  # the strided 3x3 average of each stem and reduction cell
    return reference


def test_nasnet_a_large_matches_slim_through_the_key_map():
    reference = _slim_reference()
    model = _model("nasnet_a_large").eval()
    model.load_state_dict(from_timm_nasnet(reference.state_dict()))  # strict: every key
    x = torch.randn(2, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = reference(x), model(x)
    assert got.shape == want.shape == (2, 1000)
    assert want.abs().max() > 1e-2  # logits large enough for 1e-5 to mean something
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_key_map_names_every_block_and_refuses_unknown_keys():
    assert timm_nasnet_key("cell_7.comb_iter_1_right.bn_sep_2.running_var") == (
        "cell_7.s3_1.7.running_var"
    )
    assert (
        timm_nasnet_key("cell_stem_1.path_2.conv.weight") == "cell_stem_1.preprocess0.conv_2.weight"
    )
    assert timm_nasnet_key("reduction_cell_1.conv_prev_1x1.bn.bias") == (
        "reduction_cell_1.preprocess0.2.bias"
    )
    assert timm_nasnet_key("last_linear.weight") == "classifier.weight"
    with pytest.raises(KeyError, match="no NASNet-A counterpart"):
        timm_nasnet_key("cell_0.comb_iter_9_middle.weight")


@pytest.mark.parametrize(
    ("name", "eps"),
    [("nasnet_a_cifar", 1e-5), ("nasnet_a_mobile", 1e-3), ("nasnet_a_large", 1e-3)],
)
def test_nasnet_batch_norm_epsilon_follows_slims_config(name, eps):
    with torch.device("meta"):
        model = _model(name)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and {m.eps for m in norms} == {eps}
