"""Training-time augmentation from the papers' recipes (`--augment crop,flip,cutout`).

| name   | what it does to each training image                                          |
|--------|------------------------------------------------------------------------------|
| crop   | zero-pad by P pixels on every side, take a random crop of the original size  |
|        | (torchvision RandomCrop; P = 4 on 32x32 as in the NAS and DARTS recipes,      |
|        | else round(min(H, W) / 8), at least 1); the padding is black in raw pixels   |
| flip   | mirror left-right with probability 0.5 (torchvision RandomHorizontalFlip)    |
| cutout | zero an N x N square whose centre is uniform over the image, clipped at the  |
|        | border (DeVries & Taylor 2017; DARTS: 16 on CIFAR-10); N = --cutout, default |
|        | half the smaller side (16 on 32x32); zero is the mean pixel after            |
|        | normalisation, as in the paper's code, which cuts after normalising          |

None is applied unless asked, for every data set (cifar10 keeps its own recipe, see
data.py, and adds what is asked). Each image of a training batch gets its own random
draw from torch's global generator, which the trainer seeds: the same seed gives the
same augmented batches. Validation images are never augmented.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .choices import AUGMENTATIONS
from .errors import DataError


@dataclass(frozen=True)
class Augmentation:
    """What to do to training images: crop padding (0: no crop), flip, cutout side (0: none)."""

    crop: int = 0
    flip: bool = False
    cutout: int = 0

    def record(self) -> dict[str, object]:
        """metrics.json's `augment`: each augmentation by name, with its setting."""
        named: dict[str, object] = {}
        if self.crop:
            named["crop"] = {"padding": self.crop}
        if self.flip:
            named["flip"] = {"p": 0.5}
        if self.cutout:
            named["cutout"] = {"size": self.cutout}
        return named


def resolve(
    names: Sequence[str], cutout: int | None, input_shape: tuple[int, int, int]
) -> Augmentation | None:
    """The Augmentation `names` ask for on images of `input_shape`; None for none.
    DataError for an unknown name or a cutout larger than the images."""
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise DataError(
            f"--augment {','.join(names)}: unknown {', '.join(unknown)}; choose from "
            f"{', '.join(AUGMENTATIONS)}"
        )
    asked = set(names) | ({"cutout"} if cutout is not None else set())
    if not asked:
        return None
    _, height, width = input_shape
    side = min(height, width)
    if cutout is not None and not 1 <= cutout <= side:
        raise DataError(
            f"--cutout {cutout}: the square must be 1..{side} pixels, the images being "
            f"{height}x{width}"
        )
    return Augmentation(
        crop=max(1, round(side / 8)) if "crop" in asked else 0,
        flip="flip" in asked,
        cutout=(cutout or max(1, side // 2)) if "cutout" in asked else 0,
    )


class Cutout:
    """Zero a size x size square centred at a uniform pixel, clipped at the border."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        y = int(torch.randint(height, ()))
        x = int(torch.randint(width, ()))
        top, left = max(0, y - self.size // 2), max(0, x - self.size // 2)
        bottom = min(height, y - self.size // 2 + self.size)
        right = min(width, x - self.size // 2 + self.size)
        image = image.clone()
        image[..., top:bottom, left:right] = 0
        return image


def batch_augmenter(
    augmentation: Augmentation,
    input_shape: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function of a normalised (N, C, H, W) batch that augments each image on its own."""
    from torchvision.transforms import v2

    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if augmentation.crop:
        black = [(0.0 - m) / s for m, s in zip(mean, std, strict=True)]
        steps.append(v2.RandomCrop(input_shape[1:], padding=augmentation.crop, fill=black))
    if augmentation.flip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if augmentation.cutout:
        steps.append(Cutout(augmentation.cutout))
    transform = v2.Compose(steps)

    def augment(batch: torch.Tensor) -> torch.Tensor:
        return torch.stack([transform(image) for image in batch])

    return augment
