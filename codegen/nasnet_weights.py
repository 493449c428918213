"""Load published NASNet-A weights into a generated file: timm's key names -> ours.

timm's ``nasnetalarge`` (a port of the TensorFlow-slim checkpoint) names its
modules after slim's cell code (``comb_iter_{i}_{left,right}``, ``conv_prev_1x1``,
``path_1``); a generated NASNet-A Large (examples/nasnet_a_large.arch) names them
after the architecture text (``s{node}_{edge}``, ``preprocess0``). The cells of the
example file list the ops in slim's order, so slim's block i is node S{i+2}, its
left op edge 0 and its right op edge 1, in every normal and reduction cell.

    import timm
    from nasforge.codegen import load_file
    from nasforge.codegen.nasnet_weights import from_timm_nasnet

    model = load_file("nasnet_a_large.py").build_model()
    timm_model = timm.create_model("nasnetalarge", pretrained=True)
    model.load_state_dict(from_timm_nasnet(timm_model.state_dict()))

Both skeletons compute what slim computes: batch-norm epsilon 1e-3 and TensorFlow's
SAME padding at stride 2 (grammar/README.md, skeletons). timm's strided average pools
count their padding where slim does not, the one place the two differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")

# slim's separable branch -> the positions in a generated SepConv (nn.Sequential:
# ReLU, depthwise, pointwise, BN, ReLU, depthwise, pointwise, BN).
_SEPARABLE = {
    "separable_1.depthwise_conv2d": "1",
    "separable_1.pointwise_conv2d": "2",
    "bn_sep_1": "3",
    "separable_2.depthwise_conv2d": "5",
    "separable_2.pointwise_conv2d": "6",
    "bn_sep_2": "7",
}
# A cell's inputs: ReLU -> 1x1 conv -> BN (nn.Sequential) or a factorized reduction.
_INPUTS = {
    "conv_1x1.conv": "preprocess1.1",
    "conv_1x1.bn": "preprocess1.2",
    "conv_prev_1x1.conv": "preprocess0.1",
    "conv_prev_1x1.bn": "preprocess0.2",
    "path_1.conv": "preprocess0.conv_1",
    "path_2.conv": "preprocess0.conv_2",
    "final_path_bn": "preprocess0.bn",
}
_NETWORK = {"conv0.conv": "conv0.0", "conv0.bn": "conv0.1", "last_linear": "classifier"}

_CELL = re.compile(r"(?P<cell>cell_stem_\d+|cell_\d+|reduction_cell_\d+)\.(?P<rest>.+)")
_BRANCH = re.compile(r"comb_iter_(?P<block>\d+)_(?P<side>left|right)\.(?P<part>.+)\.(?P<leaf>\w+)")


def timm_nasnet_key(key: str) -> str:
    """The generated NASNet-A's state_dict key for one of timm's ``nasnetalarge`` keys."""
    owner, _, leaf = key.rpartition(".")
    if owner in _NETWORK:
        return f"{_NETWORK[owner]}.{leaf}"
    cell = _CELL.fullmatch(key)
    if cell is not None:
        rest = cell["rest"]
        owner, _, leaf = rest.rpartition(".")
        if owner in _INPUTS:
            return f"{cell['cell']}.{_INPUTS[owner]}.{leaf}"
        branch = _BRANCH.fullmatch(rest)
        if branch is not None and branch["part"] in _SEPARABLE:
            node = int(branch["block"]) + 2
            edge = 0 if branch["side"] == "left" else 1
            return f"{cell['cell']}.s{node}_{edge}.{_SEPARABLE[branch['part']]}.{branch['leaf']}"
    raise KeyError(f"no NASNet-A counterpart for timm's {key!r}")


def from_timm_nasnet(state_dict: Mapping[str, T]) -> dict[str, T]:
    """timm's ``nasnetalarge`` state_dict under the generated NASNet-A Large's keys."""
    return {timm_nasnet_key(key): value for key, value in state_dict.items()}
