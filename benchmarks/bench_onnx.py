"""onnxruntime vs PyTorch eager inference latency, and ONNX export time per model.

For one architecture per family (default: the NAS paper's 15-layer CIFAR-10
network, the Penn Treebank NASCell language model, the best NAS-Bench-201 cell)
it exports the generated model with `nasforge.runtime.onnx_export.export_model`
(export + onnx.checker + parity), then times one inference call of PyTorch eager
(eval, no_grad) and of onnxruntime (CPUExecutionProvider) at batch 1 and a
larger batch. Language models run 35 time steps (the PTB BPTT length).

The machine is a noisy VM: each latency is the best over interleaved windows
(PyTorch and onnxruntime take turns window by window), each window the mean of a
few calls. Both use the same thread count (--threads; default torch's).

`--examples` instead exports every examples/*.arch at full size and reports
export time and the parity difference (what the unit suite checks on reduced
variants for the largest ones).

Run: .venv/bin/python benchmarks/bench_onnx.py [--json PATH] [--quick] [--examples]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime
import torch
from nasforge.codegen import load
from nasforge.grammar import parse
from nasforge.runtime.onnx_export import ExportReport, export_model
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHS = ("nas_cifar15", "rnn_nascell_ptb", "nb201_best")
SEQUENCE = 35
BATCHES = {"image": (1, 32), "rnn": (1, 20)}


def best_of(fns: dict[str, Callable[[], object]], windows: int, calls: int) -> dict[str, float]:
    """Best mean seconds per call of each function; windows interleaved."""
    for fn in fns.values():  # warm-up
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(windows):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return best


def session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def build(name: str) -> tuple[object, nn.Module]:
    arch = parse((ROOT / "examples" / f"{name}.arch").read_text(), f"{name}.arch")
    torch.manual_seed(0)
    return arch, load(arch).build_model().eval()


def latency_rows(
    name: str, report: ExportReport, model: nn.Module, threads: int, windows: int, calls: int
) -> list[dict[str, object]]:
    ort = session(report.path, threads)
    rows = []
    rnn = report.family == "rnn"
    for batch in BATCHES["rnn" if rnn else "image"]:
        if rnn:
            x = torch.randint(0, model.embedding.num_embeddings, (SEQUENCE, batch))
            feed = {"tokens": x.numpy()}
        else:
            x = torch.randn(batch, *report.inputs["x"][1:])  # type: ignore[misc]
            feed = {"x": x.numpy()}

        def eager(x: torch.Tensor = x) -> object:
            with torch.no_grad():
                return model(x)

        times = best_of(
            {"torch": eager, "ort": lambda feed=feed: ort.run(None, feed)}, windows, calls
        )
        rows.append(
            {
                "arch": name,
                "family": report.family,
                "input": "x".join(map(str, x.shape)),
                "torch_ms": times["torch"] * 1e3,
                "ort_ms": times["ort"] * 1e3,
                "ort_over_torch": times["ort"] / times["torch"],
                "export_s": report.export_seconds,
                "max_abs_diff": report.max_abs_diff,
            }
        )
    return rows


def bench_latency(
    names: list[str], threads: int, windows: int, calls: int
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            arch, model = build(name)
            report = export_model(model, arch, Path(folder) / f"{name}.onnx")  # type: ignore[arg-type]
            rows += latency_rows(name, report, model, threads, windows, calls)
    return rows


def bench_examples() -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for path in sorted((ROOT / "examples").glob("*.arch")):
            arch, model = build(path.stem)
            started = time.perf_counter()
            report = export_model(model, arch, Path(folder) / f"{path.stem}.onnx")  # type: ignore[arg-type]
            rows.append(
                {
                    "arch": path.stem,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "export_s": report.export_seconds,
                    "total_s": time.perf_counter() - started,
                    "onnx_mb": report.size_bytes / 1e6,
                    "max_abs_diff": report.max_abs_diff,
                }
            )
            print(f"{path.stem}: {rows[-1]['total_s']:.1f} s", flush=True)
    return rows


def table(rows: list[dict[str, object]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for value in row.values():
            if isinstance(value, float):
                cells.append(f"{value:.3g}" if value < 1e-2 else f"{value:.2f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS), metavar="NAME")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--windows", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5, help="calls per window")
    parser.add_argument("--quick", action="store_true", help="3 windows of 2 calls")
    parser.add_argument("--examples", action="store_true", help="full-size export of each")
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    windows, calls = (3, 2) if args.quick else (args.windows, args.calls)
    rows = (
        bench_examples()
        if args.examples
        else bench_latency(args.archs, args.threads, windows, calls)
    )
    print(table(rows))
    load1 = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(
        f"\ntorch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"{args.threads} threads, load {load1}, python {platform.python_version()}"
    )
    if args.json:
        meta = {"threads": args.threads, "torch": torch.__version__, "load": load1}
        args.json.write_text(json.dumps({"rows": rows, **meta}, indent=2) + "\n")


if __name__ == "__main__":
    main()
