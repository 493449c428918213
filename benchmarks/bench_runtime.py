"""Runtime costs, measured in one run on this machine.

Training part:
1. Training throughput (images/s) of the generated 15-layer network
   (examples/nas_cifar15.arch) against the same network written by hand
   (benchmarks/handwritten_nas15.py): the child recipe's step (forward,
   cross-entropy, backward, SGD Nesterov with weight decay), the same random
   3x32x32 batch and labels, the same initial weights. Each figure is the best of
   interleaved repeats (generated, hand, generated, hand, ...), so load drift on a
   shared machine hits both alike. Target: generated at most 1.03x slower.
2. Wall time of one epoch of the default search child (examples/digits_cnn.arch) on
   the embedded digits set (1,497 training, 300 validation images), for planning the
   main job: the epoch itself (training + validation) and the whole call (compile,
   build, one epoch).

Run: .venv/bin/python benchmarks/bench_runtime.py [--json PATH] [--quick] [--device cpu|cuda]
     [--threads T] [--batch-size B]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from nasforge.codegen import generate, load_source
from nasforge.grammar import parse
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # handwritten_*.py

from handwritten_nas15 import HandNas15  # noqa: E402


def best_of(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Every repeat's time per function; the functions take turns so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int
) -> Callable[[], None]:
    """`steps` training steps of the child recipe on one fixed batch."""
    model.train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4
    )

    def run() -> None:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        _sync(x.device)

    return run


def bench_throughput(
    repeats: int, batch_size: int, steps: int, device: torch.device
) -> dict[str, float]:
    arch = parse((ROOT / "examples" / "nas_cifar15.arch").read_text())
    torch.manual_seed(0)
    generated = load_source(generate(arch)).build_model().to(device)
    hand = HandNas15().to(device)
    # Same initial weights: the two state_dicts hold the same tensors in the same order.
    hand_state = hand.state_dict()
    gen_state = generated.state_dict()
    assert [v.shape for v in hand_state.values()] == [v.shape for v in gen_state.values()]
    hand.load_state_dict(dict(zip(hand_state, gen_state.values(), strict=True)))
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch_size, 3, 32, 32, generator=generator).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    with torch.no_grad():
        generated.eval(), hand.eval()
        assert torch.allclose(generated(x), hand(x), atol=1e-4), "not the same network"
    runs = {
        "generated": train_steps(generated, x, y, steps),
        "hand": train_steps(hand, x, y, steps),
    }
    for fn in runs.values():
        fn()  # warm-up
    times = best_of(runs, repeats)
    best = {name: min(ts) for name, ts in times.items()}
    paired = sorted(g / h for g, h in zip(times["generated"], times["hand"], strict=True))
    images = batch_size * steps
    return {
        "batch_size": batch_size,
        "steps_per_repeat": steps,
        "repeats": repeats,
        "generated_images_per_s": images / best["generated"],
        "hand_images_per_s": images / best["hand"],
        "ratio": best["generated"] / best["hand"],  # time ratio: > 1 means generated is slower
        "paired_median_ratio": paired[len(paired) // 2],
    }


def bench_digits_epoch(repeats: int, device: torch.device) -> dict[str, float]:
    from nasforge.runtime.data import load_dataset
    from nasforge.runtime.train import train_arch

    arch = parse((ROOT / "examples" / "digits_cnn.arch").read_text())
    start = time.perf_counter()
    data = load_dataset("digits", seed=0)
    load_seconds = time.perf_counter() - start
    epochs, calls = [], []
    for seed in range(repeats):
        start = time.perf_counter()
        result = train_arch(arch, data, epochs=1, seed=seed, device=device)
        calls.append(time.perf_counter() - start)
        epochs.append(result.metrics[0]["seconds"])
    epochs.sort()
    return {
        "parameters": result.parameters,
        "train_images": len(data.train),  # type: ignore[arg-type]
        "val_images": len(data.val),  # type: ignore[arg-type]
        "load_seconds": load_seconds,
        "epoch_seconds_best": epochs[0],
        "epoch_seconds_median": epochs[len(epochs) // 2],
        "call_seconds_best": min(calls),
        "val_acc_after_one_epoch": result.metrics[0]["val_acc"],
    }


def table(results: dict[str, object]) -> str:
    t = results["nas15_training"]
    d = results["digits_epoch"]
    lines = [
        f"device: {results['device']}, torch {results['torch']}, "
        f"{results['torch_threads']} threads, load average {results['load_average']}",
        "",
        "| nas_cifar15 training | images/s |",
        "|---|---|",
        f"| generated | {t['generated_images_per_s']:.2f} |",  # type: ignore[index]
        f"| hand-written | {t['hand_images_per_s']:.2f} |",  # type: ignore[index]
        f"| generated / hand time (best of {t['repeats']}; paired median) | "  # type: ignore[index]
        f"{t['ratio']:.3f}x; {t['paired_median_ratio']:.3f}x |",  # type: ignore[index]
        "",
        "| digits_cnn, one epoch on digits | seconds |",
        "|---|---|",
        f"| epoch (train {d['train_images']:,} + validate {d['val_images']:,}), best | "  # type: ignore[index]
        f"{d['epoch_seconds_best']:.2f} |",  # type: ignore[index]
        f"| epoch, median | {d['epoch_seconds_median']:.2f} |",  # type: ignore[index]
        f"| compile + build + one epoch, best | {d['call_seconds_best']:.2f} |",  # type: ignore[index]
        f"| loading the data set (once) | {d['load_seconds']:.2f} |",  # type: ignore[index]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, help="default: 8 on cpu, 128 on cuda")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    from nasforge.runtime.devices import resolve_device, set_threads

    set_threads(args.threads)

    device = resolve_device(args.device)
    batch = args.batch_size or (128 if device.type == "cuda" else 8)
    repeats = 3 if args.quick else 7
    results: dict[str, object] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "load_average": " ".join(f"{v:.2f}" for v in _load()),
        "nas15_training": bench_throughput(
            repeats, batch, 2 if device.type == "cpu" else 10, device
        ),
        "digits_epoch": bench_digits_epoch(repeats, device),
    }
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _load() -> tuple[float, ...]:
    try:
        import os

        return os.getloadavg()
    except (OSError, AttributeError):
        return ()


if __name__ == "__main__":
    sys.exit(main())
