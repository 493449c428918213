"""The trained model carries its preprocessing: MEAN, STD and CLASS_NAMES in model.py
(printed as literals, never as code), in metrics.json, and inside model.onnx's graph,
which takes raw pixels in [0, 1] and answers exactly as the validation pipeline did."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import run
from nasforge.codegen import Preprocessing, generate, load_file
from nasforge.codegen.preprocessing import PythonLiteral
from nasforge.grammar import parse
from nasforge.runtime.data import load_dataset, split_indices
from nasforge.runtime.userdata import UserDataOptions
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DIGITS_ARCH = ROOT / "examples" / "digits_cnn.arch"
RGB_ARCH = "cnn input 3x8x8 classes 3\nL1: conv 3x3 n8\nL2: conv 3x3 n8 <- L1\n"
EVIL = 'x"); import os; ("'
CLASSES = ("cat", EVIL, 'zebra\'s "den"')  # sorted as ImageFolder sorts them


# --- model.py ----------------------------------------------------------------------


def test_class_names_reach_model_py_as_string_constants_only() -> None:
    names = (EVIL, "a\nb", "it's", 'say "hi"', "\\", "日本")
    source = generate(
        parse(RGB_ARCH.replace("classes 3", "classes 6")),
        preprocessing=Preprocessing((0.5, 0.25, 0.125), (0.2, 0.3, 0.4), names),
    )
    tree = ast.parse(source)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported == {"torch", "nn"}  # `import os` stayed inside a string
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert "os" not in calls and "__import__" not in calls
    namespace: dict[str, object] = {}
    exec(compile(source, "<model.py>", "exec"), namespace)
    assert namespace["CLASS_NAMES"] == names
    assert namespace["MEAN"] == (0.5, 0.25, 0.125) and namespace["STD"] == (0.2, 0.3, 0.4)
    pixels = torch.rand(2, 3, 8, 8)
    expected = (pixels - torch.tensor([0.5, 0.25, 0.125]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.3, 0.4]
    ).view(1, 3, 1, 1)
    assert torch.allclose(namespace["preprocess"](pixels), expected)  # type: ignore[operator]


def test_without_preprocessing_the_file_is_the_compiled_one() -> None:
    ir = parse(DIGITS_ARCH.read_text())
    assert generate(ir) == (ROOT / "tests" / "golden" / "digits_cnn.py").read_text()
    assert "MEAN" not in generate(ir)


def test_bad_preprocessing_is_refused() -> None:
    for mean, std, names in (
        ((0.5,), (0.0,), ("a",)),  # std 0 would divide by zero
        ((float("nan"),), (1.0,), ("a",)),
        ((0.5, 0.5), (1.0,), ("a",)),  # one mean per channel, one std per channel
        ((0.5,), (1.0,), ("",)),
    ):
        with pytest.raises(ValueError):
            Preprocessing(mean, std, names)
    with pytest.raises(ValueError):
        PythonLiteral.of(object())
    with pytest.raises(ValueError):
        generate(
            parse((ROOT / "examples" / "rnn_fig5_base2.arch").read_text()),
            preprocessing=Preprocessing((0.5,), (1.0,), ("a",)),
        )


# --- model.onnx from raw pixels == the validation pipeline ---------------------------


def write_rgb_folder(root: Path, per_class: dict[str, int]) -> list[tuple[Path, int]]:
    """Seeded random 8x8 RGB PNGs, each class a different mean colour; the files of
    `root` in ImageFolder's order (classes sorted, files sorted) with their labels."""
    rng = np.random.default_rng(0)
    files = []
    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class[root.name]):
            base = np.array([60, 120, 180])[(np.arange(3) + label) % 3]
            pixels = np.clip(base + rng.normal(0, 40, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / f"{i:02d}.png")
            files.append((folder / f"{i:02d}.png", label))
    return files


def raw_pixels(files: list[tuple[Path, int]]) -> np.ndarray:
    """The PNGs as a user would feed them: (N, 3, H, W) float32 in [0, 1]."""
    images = [np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255 for f, _ in files]
    return np.stack(images).transpose(0, 3, 1, 2)


def trained(folder: Path) -> torch.nn.Module:
    module = load_file(folder / "model.py")
    model = module.build_model()
    model.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return model.eval()


def onnx_logits(path: Path, pixels: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    return session.run(None, {"pixels": pixels})[0]


def assert_same_predictions(onnx_out: np.ndarray, torch_out: torch.Tensor) -> None:
    expected = torch_out.detach().numpy()
    assert np.max(np.abs(onnx_out - expected)) <= 1e-4
    assert (onnx_out.argmax(1) == expected.argmax(1)).all()


@pytest.mark.slow
def test_onnx_on_raw_pngs_answers_as_validation_did(tmp_path: Path) -> None:
    data_dir = tmp_path / "imgs"
    write_rgb_folder(data_dir / "train", {"train": 6})
    val_files = write_rgb_folder(data_dir / "val", {"val": 3})
    arch = tmp_path / "rgb.arch"
    arch.write_text(RGB_ARCH)
    out = tmp_path / "trained"
    result = run(
        "train", arch, "--dataset", data_dir, "--epochs", "1", "--out", out, "--onnx",
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = load_dataset(str(data_dir), seed=0, options=UserDataOptions(channels=3))
    model = trained(out)
    with torch.no_grad():
        validation = model(data.val.tensors[0])  # the validation pipeline's own tensors
    pixels = raw_pixels(val_files)
    assert_same_predictions(onnx_logits(out / "model.onnx", pixels), validation)
    module = load_file(out / "model.py")
    names, mean = module.CLASS_NAMES, module.MEAN
    assert names == CLASSES and mean == tuple(data.mean)
    with torch.no_grad():
        assert_same_predictions(
            model(module.preprocess(torch.from_numpy(pixels))).numpy(), validation
        )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == list(CLASSES)
    assert metrics["mean"] == list(data.mean) and metrics["std"] == list(data.std)
    assert metrics["onnx"]["input"] == "pixels"
    import onnx

    props = {p.key: json.loads(p.value) for p in onnx.load(out / "model.onnx").metadata_props}
    assert props["class_names"] == list(CLASSES) and props["std"] == list(data.std)
    # `nasforge export DIR` of the trained folder gives the same graph contract.
    exported = tmp_path / "again.onnx"
    result = run("export", out, "--out", exported)
    assert result.exit_code == 0, result.output
    assert_same_predictions(onnx_logits(exported, pixels), validation)


@pytest.mark.slow
def test_onnx_on_raw_digits_answers_as_validation_did(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    out = tmp_path / "digits"
    result = run(
        "train", DIGITS_ARCH, "--dataset", "digits", "--epochs", "1", "--out", out, "--onnx",
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = load_dataset("digits", seed=0)
    model = trained(out)
    with torch.no_grad():
        validation = model(data.val.tensors[0])
    images = load_digits().images
    _, val_idx = split_indices(len(images), 300, 0)
    pixels = (images[val_idx] / 16.0).astype(np.float32)[:, None]  # raw, in [0, 1]
    assert_same_predictions(onnx_logits(out / "model.onnx", pixels), validation)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == [str(d) for d in range(10)]
