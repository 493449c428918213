"""`nasforge train`: exit codes, the files it writes, and weights that load without nasforge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_runner import run
from nasforge.codegen import generate, load_file
from nasforge.grammar import parse, to_text
from nasforge.runtime.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
DIGITS_ARCH = ROOT / "examples" / "digits_cnn.arch"
TINY_CNN = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8; L2: conv 3x3 n8 <- L1"
RNN = "rnn base 2; N0: add tanh; N1: mul relu; N2: mul sigmoid; inject N0: add relu; cell N1"
SMALL_LM = ("--model-arg", "embed_size=16", "--model-arg", "hidden_size=16")

# Runs in a subprocess whose imports cannot reach nasforge: the editable install's
# finder and path hook are removed, and `import nasforge` must fail.
STANDALONE = """
import importlib.util, json, sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if 'editable' not in type(f).__module__.lower() and '__editable__' not in repr(f)]
sys.path[:] = [p for p in sys.path if '__editable__' not in p and p not in ('', '.')]
sys.path_importer_cache.clear()
try:
    import nasforge
except ImportError:
    pass
else:
    raise SystemExit('nasforge is importable')
import torch
out = sys.argv[1]
spec = importlib.util.spec_from_file_location('model', out + '/model.py')
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
kwargs = json.load(open(out + '/metrics.json'))['build_kwargs']
model = module.build_model(**kwargs)
model.load_state_dict(torch.load(out + '/weights.pt', weights_only=True))
model.eval()
x = torch.load(out + '/input.pt')
with torch.no_grad():
    y = model(x)
y = y[0] if isinstance(y, tuple) else y
diff = (y - torch.load(out + '/expected.pt')).abs().max().item()
print('standalone max abs diff', diff)
assert diff == 0.0, diff
"""


def make_text(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    line = "the cat sat on the mat and the dog sat on the log"
    (root / "ptb.train.txt").write_text("\n".join([line] * 40) + "\n")
    (root / "ptb.valid.txt").write_text("\n".join([line] * 8) + "\n")
    return root


def check_standalone(out: Path, example: torch.Tensor) -> None:
    """The saved weights in DIR/model.py, loaded with plain torch, give our output."""
    metrics = json.loads((out / "metrics.json").read_text())
    model = load_file(out / "model.py").build_model(**metrics["build_kwargs"])
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    model.eval()
    with torch.no_grad():
        expected = model(example)
    expected = expected[0] if isinstance(expected, tuple) else expected
    torch.save(example, out / "input.pt")
    torch.save(expected, out / "expected.pt")
    done = subprocess.run(
        [sys.executable, "-I", "-c", STANDALONE, str(out)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "standalone max abs diff 0.0" in done.stdout


def test_train_digits_writes_model_weights_metrics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(
        "train", str(DIGITS_ARCH), "--dataset", "digits", "--epochs", "2", "--out", str(out),
        "--device", "cpu", "--seed", "3", "--threads", "1", "--batch-size", "32", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "epoch 2/2  train loss" in result.stderr and "reward 0." in result.stderr
    arch = parse(DIGITS_ARCH.read_text())
    # black-formatted, with the data's normalisation and class names (seed 3's split)
    preprocessing = load_dataset("digits", seed=3).preprocessing()
    assert (out / "model.py").read_text() == generate(arch, preprocessing=preprocessing)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["arch"] == to_text(arch)
    assert (metrics["dataset"], metrics["device"], metrics["seed"]) == ("digits", "cpu", 3)
    assert metrics["threads"] == 1 and metrics["parameters"] == 37562
    assert metrics["config"]["batch_size"] == 32 and len(metrics["epochs"]) == 2
    assert metrics["reward"] == pytest.approx(max(e["val_acc"] for e in metrics["epochs"]) ** 3)
    assert metrics["seconds"] > 0 and metrics["onnx"] is None
    check_standalone(out, torch.randn(4, 1, 8, 8))


def test_train_language_model_from_stdin(tmp_path: Path) -> None:
    out = tmp_path / "lm"
    data_dir = make_text(tmp_path / "text")
    result = run(
        "train", "-", "--dataset", "ptb", "--data-dir", str(data_dir), "--epochs", "1",
        "--out", str(out), "--batch-size", "4", *SMALL_LM, stdin=RNN.replace("; ", "\n"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["build_kwargs"] == {"embed_size": 16, "hidden_size": 16, "vocab_size": 9}
    assert "val_ppl" in metrics["epochs"][0] and metrics["family"] == "rnn"
    assert (out / "vocab.txt").read_text().split("\n")[:3] == ["the", "cat", "sat"]
    check_standalone(out, torch.randint(0, 9, (7, 3)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--arch", "cnn input 3x32x32 classes 10; L1: conv 3x3 n8", "--dataset", "digits"],
            "nasforge: error: the architecture's input is 3x32x32 but digits's images are 1x8x8; "
            "write `input 1x8x8` in the architecture\n",
        ),
        (
            ["--arch", RNN, "--dataset", "ptb"],
            "nasforge: error: ptb needs --data-dir; --data-dir must point to a folder holding "
            "ptb.train.txt, ptb.valid.txt, ptb.test.txt (Mikolov's Penn Treebank language-model "
            "files; the test file is optional)\n",
        ),
        (
            ["--arch", TINY_CNN, "--dataset", "digits", "--model-arg", "width"],
            "nasforge: error: --model-arg 'width': expected KEY=VALUE, such as hidden_size=128\n",
        ),
        (
            ["--arch", TINY_CNN, "--dataset", "digits", "--device", "tpu"],
            "nasforge: error: unknown device 'tpu'; choose one of auto, cpu, cuda\n",
        ),
        (
            ["--arch", TINY_CNN, "--dataset", "digits", "--model-arg", "width=3"],
            "nasforge: error: cannot build the model with {'width': 3}: ",
        ),
    ],
)
def test_bad_input_exits_2_without_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("train", *args, "--epochs", "1", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_cifar10_missing_folder_exits_2(tmp_path: Path) -> None:
    arch = "cnn input 3x32x32 classes 10; L1: conv 3x3 n8"
    result = run(
        "train", "--arch", arch, "--dataset", "cifar10", "--data-dir", str(tmp_path / "none"),
        "--epochs", "1", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        f"nasforge: error: cifar10: data folder {tmp_path / 'none'} does not exist; --data-dir "
        "must point to a folder holding cifar-10-batches-py/, or add --download to fetch "
        "CIFAR-10 into it\n"
    )


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("train", "--arch", TINY_CNN, "--dataset", "imagenet", "--epochs", "1",
               "--out", str(tmp_path)).exit_code == 2  # fmt: skip
    assert (
        run("train", "--arch", TINY_CNN, "--dataset", "digits", "--out", str(tmp_path)).exit_code
        == 2
    )
    neither = run("train", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path))
    assert neither.exit_code == 2 and "give one architecture" in neither.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_exits_2(tmp_path: Path) -> None:
    result = run("train", "--arch", TINY_CNN, "--dataset", "digits", "--epochs", "1",
                 "--out", str(tmp_path), "--device", "cuda")  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith("nasforge: error: --device cuda: CUDA is not available")


def test_failed_child_exits_1_and_records_why(tmp_path: Path) -> None:
    out = tmp_path / "nan"
    result = run("train", "--arch", TINY_CNN, "--dataset", "digits", "--epochs", "2",
                 "--out", str(out), "--lr", "1e8", "--threads", "1")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("nasforge: error: training failed (nan_loss) in epoch 1: ")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["failure"]["reason"] == "nan_loss"
    assert not (out / "weights.pt").exists()


def test_onnx_export(tmp_path: Path) -> None:
    pytest.importorskip("nasforge.runtime.onnx_export")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx"
    result = run("train", "--arch", TINY_CNN, "--dataset", "digits", "--epochs", "1",
                 "--out", str(out), "--onnx", "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (out / "model.onnx").stat().st_size > 0
    report = json.loads((out / "metrics.json").read_text())["onnx"]
    assert report["max_abs_diff"] <= 1e-4 and report["export_seconds"] > 0
