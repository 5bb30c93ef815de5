"""Datasets, transforms and loaders shared by the lessons.

Dataset classes live here (not in notebook cells) so DataLoader worker processes can import
them on every OS, including Windows and macOS, which start workers with "spawn".
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision.transforms import v2

from helpers import env

FER_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# Per-channel statistics, measured in lesson 02 on the full training splits (pixels scaled to 0-1).
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
FER_MEAN, FER_STD = (0.5077,), (0.2551,)
# The statistics of ImageNet: the right choice only for a network pretrained on ImageNet.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BadImageError(ValueError):
    """An image file could not be decoded; the message names the file."""


def load_image(path: str | Path, mode: str = "L") -> Image.Image:
    """Return the image at `path` decoded and converted to `mode`, or raise BadImageError naming it."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)  # convert() forces the full decode inside the try
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise BadImageError(f"{path} is not a readable image ({type(err).__name__}: {err}). "
                            f"Delete or replace this file, then run again.") from err


class FaceFolder(datasets.ImageFolder):
    """ImageFolder over ``root/<class>/<image>`` that checks the class folders and names bad files.

    Images are returned as 1-channel ("L") PIL images; a transform turns them into tensors.
    """

    def __init__(self, root: str | Path, transform=None, class_names: tuple[str, ...] = FER_CLASSES):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder; expected {root}/<class>/<image files>.")
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        missing, extra = sorted(set(class_names) - set(present)), sorted(set(present) - set(class_names))
        if missing or extra:
            raise ValueError(f"{root}: class folders do not match the expected {list(class_names)}: "
                             f"missing {missing}, unexpected {extra}. Restore or remove those folders "
                             f"so every split has the same classes.")
        super().__init__(str(root), transform=transform, loader=load_image)


def fashion_mnist(root: str | Path, train: bool, transform=None) -> datasets.FashionMNIST:
    """Return torchvision's FashionMNIST from `root` (as given by ``finder.find_fashion_mnist``), never downloading."""
    return datasets.FashionMNIST(str(root), train=train, transform=transform, download=False)


def train_transforms(size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> v2.Compose:
    """Return the training pipeline for faces: resize, mild crop/rotation, horizontal flip, normalise."""
    return v2.Compose([
        v2.ToImage(),
        v2.Resize(size, antialias=True),
        v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomRotation(10, interpolation=v2.InterpolationMode.BILINEAR),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def eval_transforms(size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> v2.Compose:
    """Return the evaluation pipeline: the same resize and normalisation, no randomness."""
    return v2.Compose([
        v2.ToImage(),
        v2.Resize(size, antialias=True),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None, num_workers: int = 0, **kwargs) -> DataLoader:
    """Return a DataLoader with seeded shuffling and seeded workers (see ``env.seed_worker``)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, worker_init_fn=env.seed_worker,
                      persistent_workers=num_workers > 0, **kwargs)


def mean_std(loader: DataLoader) -> tuple[list[float], list[float]]:
    """Return the per-channel mean and std over every pixel the loader yields (images scaled 0-1)."""
    total = total_sq = None
    count = 0
    for images, _ in loader:
        images = images.double()
        dims = [0, 2, 3]
        total = images.sum(dims) if total is None else total + images.sum(dims)
        total_sq = (images ** 2).sum(dims) if total_sq is None else total_sq + (images ** 2).sum(dims)
        count += images.numel() // images.shape[1]
    mean = total / count
    std = (total_sq / count - mean ** 2).sqrt()
    return [round(v, 4) for v in mean.tolist()], [round(v, 4) for v in std.tolist()]
