"""ONNX parity with numpy.allclose's combined tolerance, and no failed export left as a
model file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nasforge.grammar import parse
from torch import nn

onnx_export = pytest.importorskip("nasforge.runtime.onnx_export")
pytest.importorskip("onnxruntime")

TINY = parse("cnn input 1x4x4 classes 2; L1: conv 3x3 n4")


class Loud(nn.Module):
    """A faithful model whose outputs are about 3e5, as a valid NB201 cell's can be."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 2)
        with torch.no_grad():
            self.linear.weight.uniform_(2e4, 4e4)
            self.linear.bias.fill_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1).abs())


class Unfaithful(nn.Module):
    """Computes something else while being exported: parity must catch it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x.flatten(1))
        return out if torch.compiler.is_exporting() else out * 1.01


def test_large_outputs_pass_with_a_relative_tolerance(tmp_path: Path) -> None:
    report = onnx_export.export_model(Loud(), TINY, tmp_path / "m.onnx")
    assert report.rtol == onnx_export.DEFAULT_RTOL
    assert report.path == tmp_path / "m.onnx" and report.path.is_file()


def test_rtol_zero_is_the_absolute_tolerance_alone(tmp_path: Path) -> None:
    # The same model, judged by atol alone as before: float32 rounding at 3e5 exceeds 1e-4
    # (or, on a platform where both runtimes agree exactly, passes: then diff is 0).
    try:
        report = onnx_export.export_model(Loud(), TINY, tmp_path / "m.onnx", rtol=0.0)
    except onnx_export.ExportParityError as err:
        assert err.report.max_abs_diff > 1e-4
        assert "atol 0.0001 + rtol 0 x |PyTorch|" in str(err)
    else:
        assert report.max_abs_diff <= 1e-4


def test_a_parity_failure_keeps_no_model_file(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"an earlier, good export")
    with pytest.raises(onnx_export.ExportParityError) as caught:
        onnx_export.export_model(Unfaithful(), TINY, path)
    failed = tmp_path / "m.failed.onnx"
    assert path.read_bytes() == b"an earlier, good export"  # untouched
    assert failed.is_file()
    assert caught.value.report.path == failed
    message = str(caught.value)
    assert message.startswith("onnxruntime differs from PyTorch by ")
    assert "; allowed: atol 0.0001 + rtol 0.0001 x |PyTorch|, as numpy.allclose)" in message
    assert message.endswith(f"kept as {failed} for inspection")


def test_an_export_that_fails_leaves_nothing(tmp_path: Path) -> None:
    class DataDependent(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return x.flatten(1)[:, :2]
            return -x.flatten(1)[:, :2]

    with pytest.raises(onnx_export.ExportError):
        onnx_export.export_model(DataDependent(), TINY, tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
