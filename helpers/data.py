"""Datasets and loaders: images on disk (``FaceFolder``, torchvision's FashionMNIST), images held in
memory (``TensorImages``), one seeded split (``split_indices``), and the DataLoaders the lessons use.

Dataset classes live here (not in notebook cells) so DataLoader worker processes can import
them on every OS, including Windows and macOS, which start workers with "spawn".
Every dataset here has ``classes`` (a list of class names) and ``targets`` (a list of class
indices, one per item), read without decoding any image, as torchvision's ImageFolder has.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler
from torchvision import datasets
from torchvision.transforms import v2

from helpers import env

FER_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# Per-channel statistics, measured in lesson 02 on the full training splits (pixels scaled to 0-1).
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
FER_MEAN, FER_STD = (0.5077,), (0.2551,)
# The same gray statistics, once for each of the three channels of an RGB network such as EfficientNet
# (its gray faces are copied into all three channels).
FER_MEAN_RGB, FER_STD_RGB = (0.5077, 0.5077, 0.5077), (0.2551, 0.2551, 0.2551)
# The statistics of ImageNet: the right choice only for a network pretrained on ImageNet.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BadImageError(ValueError):
    """An image file could not be decoded; the message names the file."""


def load_image(path: str | Path, mode: str = "L", background: int = 0) -> Image.Image:
    """Return the image at `path` decoded and converted to `mode`, or raise BadImageError naming it.

    Transparent pixels (PNG alpha, a palette's transparent colour) are laid over a plain `background`
    grey level (0-255) first, so they come out as the background the model was trained on instead of
    whatever colour the transparent pixels happen to hold.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not an image file; pass the image files inside it "
                                f"(e.g. {path}/*.png).")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file; check the path.")
    try:
        with Image.open(path) as image:
            image.load()  # the full decode, inside the try
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                plain = Image.new("RGBA", rgba.size, (background, background, background, 255))
                image = Image.alpha_composite(plain, rgba)
            return image.convert(mode)
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


# ---------------------------------------------------------------- images held in memory

class TensorImages(Dataset):
    """Images held in memory as one uint8 tensor (N x C x H x W) with int64 labels and class names.

    Decoding every file once and indexing a tensor afterwards is far faster than decoding per item:
    Fashion-MNIST from its CSV (``fashion_csv.load_fashion_csv``) and FER2013 from its JPEGs
    (``preload_faces``) both end up here. ``dataset[i]`` is (image C x H x W, int label);
    ``dataset[list_of_indices]`` is a whole batch (B x C x H x W images, B labels) in one indexing
    operation, which ``batch_loader`` uses. `transform`, if given, is applied to what is returned.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str],
                 transform: Callable | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images N x C x H x W, got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels; give one label per image")
        self.images, self.labels, self.classes = images, torch.as_tensor(labels).long(), list(classes)
        if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(self.classes):
            raise ValueError(f"labels run from {int(self.labels.min())} to {int(self.labels.max())}, but there "
                             f"are {len(self.classes)} classes; labels must be class indices 0-{len(self.classes) - 1}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        image, label = self.images[index], self.labels[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, (int(label) if label.ndim == 0 else label)

    @property
    def targets(self) -> list[int]:
        """Return every label as a list of ints (like ImageFolder.targets), without touching any image."""
        return self.labels.tolist()

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "TensorImages":
        """Return a new TensorImages holding only the examples at `indices`, in that order (same transform)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return TensorImages(self.images[indices], self.labels[indices], self.classes, self.transform)


def preload_faces(root: str | Path, class_names: tuple[str, ...] = FER_CLASSES,
                  max_per_class: int | None = None) -> TensorImages:
    """Decode the images under ``root/<class>/`` once into a TensorImages (the first `max_per_class` of each class).

    The class folders are checked as in FaceFolder; an unreadable file raises BadImageError naming it.
    """
    folder = FaceFolder(root, class_names=class_names)
    samples, taken = [], [0] * len(folder.classes)
    for path, label in folder.samples:  # sorted by class, then by file name: the same on every machine
        if max_per_class is None or taken[label] < max_per_class:
            samples.append((path, label))
            taken[label] += 1
    tensors = [v2.functional.pil_to_tensor(load_image(path)) for path, _ in samples]  # 1 x H x W uint8
    first = tensors[0].shape
    for (path, _), image in zip(samples, tensors):
        if image.shape != first:
            raise ValueError(f"{path} is {image.shape[2]}x{image.shape[1]} pixels, but the first image is "
                             f"{first[2]}x{first[1]}; resize all images to one size first.")
    return TensorImages(torch.stack(tensors), torch.tensor([label for _, label in samples]), folder.classes)


# ---------------------------------------------------------------- splitting

def split_indices(targets: Sequence[int], generator: torch.Generator, fractions: Sequence[float],
                  stratify: bool = True) -> list[list[int]]:
    """Return disjoint, sorted index lists (e.g. train, val, test) covering every example, cut in `fractions`.

    The same generator seed gives the same split on every run. With `stratify` (the default) each
    class is cut in the same fractions, so a rare class is present in every part in its true proportion
    (as long as it has at least one example per part).
    """
    if abs(sum(fractions) - 1) > 1e-6 or any(f <= 0 for f in fractions):
        raise ValueError(f"fractions={tuple(fractions)} must be positive and sum to 1, e.g. (0.9, 0.1).")
    targets = torch.as_tensor(targets, dtype=torch.long)
    groups = [torch.nonzero(targets == c).flatten() for c in targets.unique()] if stratify \
        else [torch.arange(len(targets))]
    parts: list[list[int]] = [[] for _ in fractions]
    for group in groups:
        group = group[torch.randperm(len(group), generator=generator)]
        bounds = np.round(np.cumsum([0, *fractions]) * len(group)).astype(int)
        for part, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
            part.extend(group[lo:hi].tolist())
    return [sorted(part) for part in parts]


def subsample(indices: Sequence[int], targets: Sequence[int], max_items: int | None,
              generator: torch.Generator) -> list[int]:
    """Return at most `max_items` of `indices`, drawn per class in proportion (None = all of them)."""
    if max_items is None or max_items >= len(indices):
        return list(indices)
    if max_items <= 0:
        raise ValueError(f"max_items={max_items}; give a positive number, or None for all.")
    keep = split_indices([targets[i] for i in indices], generator,
                         (max_items / len(indices), 1 - max_items / len(indices)))[0]
    if len(keep) > max_items:         # each class is rounded on its own; drop the extra ones at random
        keep = [keep[k] for k in torch.randperm(len(keep), generator=generator)[:max_items].tolist()]
    return sorted(indices[k] for k in keep)


class TransformSubset(Dataset):
    """The items `indices` of `dataset`, passed through this subset's own `transform`.

    ``torch.utils.data.Subset`` has no transform of its own: its items come out of the parent
    dataset's transform, so a random split of an augmented dataset augments validation and test too.
    Build the parent without a transform and give each part the pipeline it needs.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int], transform: Callable | None = None):
        if getattr(dataset, "transform", None) is not None:
            raise ValueError(f"{type(dataset).__name__} already has a transform, which every subset would "
                             f"inherit; build it with transform=None and pass each subset its own.")
        if len(indices) and not 0 <= min(indices) <= max(indices) < len(dataset):
            raise IndexError(f"indices must lie in 0..{len(dataset) - 1}; got {min(indices)}..{max(indices)}.")
        self.dataset, self.indices, self.transform = dataset, list(indices), transform
        self.classes = getattr(dataset, "classes", None)

    @property
    def targets(self) -> list[int]:
        """Return the labels of this subset, read from the parent's targets (no image is decoded)."""
        return [self.dataset.targets[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.dataset[self.indices[i]]
        return (self.transform(image) if self.transform is not None else image), label


# ---------------------------------------------------------------- loaders

def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False,
                generator: torch.Generator | None = None, num_workers: int = 0, **kwargs) -> DataLoader:
    """Return a DataLoader with seeded shuffling and seeded workers (see ``env.seed_worker``)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, worker_init_fn=env.seed_worker,
                      persistent_workers=num_workers > 0, **kwargs)


def mean_std(loader: DataLoader) -> tuple[list[float], list[float]]:
    """Return the per-channel mean and std over every pixel the loader yields (give it images already scaled to 0-1)."""
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


def batch_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False,
                 generator: torch.Generator | None = None, drop_last: bool = False) -> DataLoader:
    """Return a DataLoader that fetches each batch with one tensor index (``dataset[indices]``), not item by item.

    ``batch_size=None`` turns off the DataLoader's own batching; the BatchSampler hands the Dataset a
    whole list of indices at once, so there is nothing left to collate.
    """
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    # the DataLoader also draws its workers' base seed from the generator each epoch; passing it lets fit
    # find it, and save and restore its state for an exact resume
    return DataLoader(dataset, batch_size=None, sampler=BatchSampler(order, batch_size, drop_last),
                      generator=generator)


class DeviceLoader:
    """Wrap a DataLoader: move each batch to `device` and apply a batch `transform` to the images there."""

    def __init__(self, loader: DataLoader, device: torch.device, transform=None):
        self.loader, self.device, self.transform = loader, torch.device(device), transform

    def __iter__(self):
        # non_blocking only to CUDA, where a copy can overlap with the GPU's work; elsewhere it buys nothing
        # (and a copy to MPS that does not wait has given wrong numbers in some PyTorch versions)
        non_blocking = self.device.type == "cuda"
        for images, labels in self.loader:
            images = images.to(self.device, non_blocking=non_blocking)
            yield (self.transform(images) if self.transform is not None else images), labels.to(self.device)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def generator(self) -> torch.Generator | None:
        """Return the wrapped loader's shuffling generator (fit saves its state in checkpoints)."""
        return self.loader.generator

    @property
    def dataset(self) -> Dataset:
        """Return the wrapped loader's dataset."""
        return self.loader.dataset
