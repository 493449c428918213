"""The user's own data sets: `--dataset PATH` instead of a built-in name.

| form                       | read as                                                      |
|----------------------------|--------------------------------------------------------------|
| folder of class folders    | ImageFolder's layout: one sub-folder per class, sorted names |
| FILE.npz                   | x (N,C,H,W or N,H,W,C) and y; optional x_val and y_val       |
| folder with train.txt      | a corpus: train.txt, valid.txt, optional test.txt (rnn)      |

Images (read with PIL) are loaded into memory as float pixels in [0, 1] (8-bit / 255),
grey (1 channel) when every image is grey, else RGB (3 channels), unless `channels`
asks for the other; every image must have one size unless `resize` (bilinear). An
.npz's integer pixels are divided by 255, float pixels used as they are. Validation:
the folder's own train/ and val/ sub-folders, or x_val/y_val, else `val_fraction` of
the examples drawn by `numpy.random.default_rng(seed)`. Normalisation as the built-in
sets: per channel, the mean and standard deviation of the training split's pixels.
A text folder is tokenised as the Penn Treebank loader does (words, or `chars`), with
`<unk>` in the vocabulary for validation words the training file lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .choices import DEFAULT_VAL_FRACTION
from .data import Data, ImageData, _ptb, tensor_data
from .errors import DataError

TEXT_FILES = ("train.txt", "valid.txt", "test.txt")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass(frozen=True)
class UserDataOptions:
    val_fraction: float = DEFAULT_VAL_FRACTION
    chars: bool = False  # a text folder: character tokens instead of words
    resize: tuple[int, int] | None = None  # (height, width)
    channels: int | None = None  # convert grey <-> RGB to this many channels
    skip_bad_files: bool = False
    # Training-time augmentation (any image set, built-in or not; runtime/augment.py):
    # names from --augment, and --cutout's square side (None: the default, or no cutout).
    augment: tuple[str, ...] = ()
    cutout: int | None = None


def load_user_data(path: Path, *, seed: int, options: UserDataOptions) -> Data:
    """The data set at `path`; DataError naming what is wrong with it."""
    if not path.exists():
        raise DataError(
            f"--dataset {path}: no such file or folder (give a built-in name, a folder of "
            "images in class sub-folders, an .npz file, or a folder with train.txt)"
        )
    if not 0 < options.val_fraction < 1:
        raise DataError(f"--val-fraction must be between 0 and 1, not {options.val_fraction}")
    if path.is_file():
        if path.suffix != ".npz":
            raise DataError(f"--dataset {path}: a file must be a NumPy .npz (x and y)")
        return load_npz(path, seed, options)
    if (path / TEXT_FILES[0]).is_file():
        return _ptb(
            path.name or str(path),
            TEXT_FILES,
            path,
            how=f"a text folder holds {', '.join(TEXT_FILES)} (test.txt optional)",
            chars=options.chars,
            unk=True,
        )
    return load_image_folder(path, seed, options)


# --- NumPy .npz ------------------------------------------------------------------


def load_npz(path: Path, seed: int, options: UserDataOptions) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as err:
        raise DataError(f"--dataset {path}: not a readable .npz ({err})") from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DataError(
            f"--dataset {path}: the .npz has no {' or '.join(missing)} array (it holds "
            f"{', '.join(sorted(arrays)) or 'nothing'}); it needs x (images) and y (labels)"
        )
    x, layout = _channels_first(path, arrays["x"], "x")
    y = _labels(path, arrays["y"], len(x), "x", "y")
    has_val = "x_val" in arrays or "y_val" in arrays
    if has_val:
        if not ("x_val" in arrays and "y_val" in arrays):
            raise DataError(f"--dataset {path}: x_val and y_val come together (one is missing)")
        x_val, _ = _channels_first(path, arrays["x_val"], "x_val")
        y_val = _labels(path, arrays["y_val"], len(x_val), "x_val", "y_val")
        if x_val.shape[1:] != x.shape[1:]:
            raise DataError(
                f"--dataset {path}: x_val's images are {_shape(x_val.shape[1:])}, x's "
                f"{_shape(x.shape[1:])}"
            )
        images = np.concatenate([x, x_val])
        labels = np.concatenate([y, y_val])
    else:
        images, labels = x, y
    classes = _check_classes(path, labels)
    images = _as_float(images)
    if has_val:
        train, val = (images[: len(x)], y), (images[len(x) :], y_val)
        split = f"{len(x):,}/{len(x_val):,} (x_val)"
    else:
        train, val, split = _split(images, labels, seed, options.val_fraction)
    return tensor_data(
        path.name,
        train,
        val,
        classes,
        f"{path}: {_shape(images.shape[1:])} ({layout} assumed), {classes} classes, "
        f"{split}; normalised by the training split",
    )


def _channels_first(path: Path, x: np.ndarray, key: str) -> tuple[np.ndarray, str]:
    """x as (N, C, H, W), and the layout assumed: the channel axis is 1 or 3, of size 1 or 3."""
    if x.ndim != 4:
        raise DataError(
            f"--dataset {path}: {key} has shape {x.shape}; it must be 4-D, (N, C, H, W) or "
            "(N, H, W, C) with C 1 or 3"
        )
    if x.shape[1] in (1, 3):
        return x, "N,C,H,W"
    if x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2), "N,H,W,C"
    raise DataError(
        f"--dataset {path}: {key} has shape {x.shape}; neither axis 1 nor axis 3 has 1 or 3 "
        "channels"
    )


def _labels(path: Path, y: np.ndarray, n: int, xkey: str, ykey: str) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"--dataset {path}: {ykey} must be 1-D integer labels, not {y.dtype} of shape {y.shape}"
        )
    if len(y) != n:
        raise DataError(f"--dataset {path}: {xkey} holds {n} images but {ykey} {len(y)} labels")
    return y.astype(np.int64)


def _check_classes(path: Path, labels: np.ndarray) -> int:
    low, high = int(labels.min()), int(labels.max())
    classes = high + 1
    if low < 0 or len(np.unique(labels)) != classes:
        raise DataError(
            f"--dataset {path}: labels must be 0..classes-1, each present; found {low}..{high} "
            f"with {len(np.unique(labels))} distinct values"
        )
    if classes < 2:
        raise DataError(f"--dataset {path}: one class only; a classifier needs two or more")
    return classes


def _as_float(x: np.ndarray) -> np.ndarray:
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float64) / 255.0
    return x.astype(np.float64)


# --- a folder of images ----------------------------------------------------------


def load_image_folder(path: Path, seed: int, options: UserDataOptions) -> ImageData:
    own = (path / "train").is_dir() and (path / "val").is_dir()
    roots = (path / "train", path / "val") if own else (path,)
    classes = _class_folders(roots[0])
    found = [_image_files(root, classes) for root in roots]
    files = [f for group in found for f, _ in group]
    images, keep, skipped = _read_images(files, options)
    labels = np.array([label for group in found for _, label in group], dtype=np.int64)[keep]
    names = tuple(c for c in classes)
    if own:
        n_train = int(np.sum(keep[: len(found[0])]))
        train, val = (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])
        split = f"{n_train:,}/{len(images) - n_train:,} (train/ and val/)"
    else:
        train, val, split = _split(images, labels, seed, options.val_fraction)
    note = f", {skipped} unreadable file(s) skipped" if skipped else ""
    return tensor_data(
        path.resolve().name,
        train,
        val,
        len(classes),
        f"{path}: {len(images):,} images {_shape(images.shape[1:])}, {len(classes)} classes "
        f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}), {split}{note}; "
        "normalised by the training split",
        class_names=names,
    )


def _class_folders(root: Path) -> list[str]:
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if not classes:
        raise DataError(
            f"--dataset {root}: no class sub-folders; a folder of images holds one folder "
            "per class (CLASS/IMAGE.png), or train/ and val/ folders laid out so"
        )
    if len(classes) < 2:
        raise DataError(
            f"--dataset {root}: one class only ({classes[0]}/); a classifier needs two or "
            "more class folders"
        )
    return classes


def _image_files(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    found = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise DataError(f"--dataset {root}: class folder {name}/ is missing (it is in train/)")
        files = sorted(
            f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMG_EXTENSIONS
        )
        if not files:
            raise DataError(
                f"--dataset {root}: class folder {folder} holds no images "
                f"({', '.join(IMG_EXTENSIONS)})"
            )
        found.extend((f, label) for f in files)
    return found


def _read_images(
    files: list[Path], options: UserDataOptions
) -> tuple[np.ndarray, np.ndarray, int]:
    """(N, C, H, W) pixels in [0, 1], which files were read, how many were skipped."""
    from PIL import Image, UnidentifiedImageError

    opened: list[Image.Image | None] = []
    for f in files:
        try:
            with Image.open(f) as image:
                image.load()
                opened.append(image.copy())
        except (OSError, UnidentifiedImageError, ValueError) as err:
            if not options.skip_bad_files:
                raise DataError(
                    f"cannot read the image {f} ({err}); fix or remove it, or add "
                    "--skip-bad-files to go on without it"
                ) from None
            opened.append(None)
    keep = np.array([image is not None for image in opened])
    images = [image for image in opened if image is not None]
    if not images:
        raise DataError(f"no readable image among {len(files)} files")
    mode = _mode(images, options.channels)
    converted = [image.convert(mode) for image in images]
    if options.resize is not None:
        h, w = options.resize
        converted = [image.resize((w, h), Image.BILINEAR) for image in converted]
    _check_sizes(converted, [f for f, k in zip(files, keep, strict=True) if k])
    pixels = np.stack([np.asarray(image, dtype=np.float64) / 255.0 for image in converted])
    pixels = pixels[:, None] if mode == "L" else pixels.transpose(0, 3, 1, 2)
    return pixels, keep, int(np.sum(~keep))


def _mode(images: list, channels: int | None) -> str:
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    return "L" if all(image.mode in GREY_MODES for image in images) else "RGB"


def _check_sizes(images: list, files: list[Path]) -> None:
    first = images[0].size
    for image, f in zip(images, files, strict=True):
        if image.size != first:
            raise DataError(
                f"the images differ in size: {files[0]} is {first[1]}x{first[0]}, {f} is "
                f"{image.size[1]}x{image.size[0]} (height x width); add --resize HxW"
            )


def _split(
    images: np.ndarray, labels: np.ndarray, seed: int, fraction: float
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], str]:
    from .data import split_indices

    n = len(images)
    val_size = max(1, round(n * fraction))
    train_idx, val_idx = split_indices(n, val_size, seed)
    return (
        (images[train_idx], labels[train_idx]),
        (images[val_idx], labels[val_idx]),
        f"{len(train_idx):,}/{len(val_idx):,} (seeded split, --val-fraction {fraction:g})",
    )


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)
