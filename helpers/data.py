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
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such image file; check the path.")
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


# ---------------------------------------------------------------- faces preloaded as tensors (lesson 04)
# Decoding every JPEG once and augmenting whole batches of tensors is far faster than PIL per image:
# the full FER2013 (35,887 faces) decodes in seconds and then costs no decoding at all per epoch.

class TensorFaces(Dataset):
    """Faces held in memory as one uint8 tensor (N x 1 x H x W) with their labels; items are (image, label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...],
                 paths: list[str] | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"expected uint8 images N x C x H x W and N labels, got {images.dtype} "
                             f"{tuple(images.shape)} and {len(labels)} labels")
        self.images, self.labels, self.classes = images, labels.long(), tuple(classes)
        self.paths = paths or [""] * len(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    @property
    def targets(self) -> list[int]:
        """Return every label as a list of ints (like ImageFolder.targets)."""
        return self.labels.tolist()

    def subset(self, indices: torch.Tensor | list[int]) -> "TensorFaces":
        """Return a new TensorFaces holding only the examples at `indices` (in that order)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return TensorFaces(self.images[indices], self.labels[indices], self.classes,
                           [self.paths[i] for i in indices.tolist()])


def preload_faces(root: str | Path, class_names: tuple[str, ...] = FER_CLASSES,
                  max_per_class: int | None = None) -> TensorFaces:
    """Decode the images under ``root/<class>/`` once into a TensorFaces (the first `max_per_class` of each class).

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
    images = torch.stack(tensors)
    labels = torch.tensor([label for _, label in samples])
    return TensorFaces(images, labels, tuple(folder.classes), [path for path, _ in samples])


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (train, val) index tensors: a random split of range(n), the same for the same `seed`."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction}; use a fraction between 0 and 1, e.g. 0.1")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * val_fraction))
    return order[n_val:], order[:n_val]


class FaceBatchTransform(torch.nn.Module):
    """Turn a batch of uint8 faces (B x 1 x h x w) into normalised float images of `size` x `size`.

    With ``train=True`` each face gets its own random zoom (crop), small rotation, shift, horizontal
    flip and brightness/contrast change, all in one ``grid_sample`` call on the batch's device.
    Never a vertical flip: no test face is upside down. Random numbers come from torch's global RNG
    (on the CPU), so seeding and checkpointed RNG states make the augmentation repeatable.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], train: bool = False,
                 max_rotation: float = 10.0, min_scale: float = 0.85, jitter: float = 0.2):
        super().__init__()
        self.size, self.train_mode = size, train
        self.max_rotation, self.min_scale, self.jitter = max_rotation, min_scale, jitter
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if self.train_mode:
            x = self._augment(x)
        elif x.shape[-2:] != (self.size, self.size):
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                                align_corners=False, antialias=x.shape[-1] > self.size)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        r = torch.rand(n, 6)  # drawn on the CPU: the same numbers on every device
        angle = (r[:, 0] * 2 - 1) * self.max_rotation * torch.pi / 180
        scale = self.min_scale + (1 - self.min_scale) * r[:, 1]
        flip = torch.where(r[:, 2] < 0.5, -1.0, 1.0)
        shift = (r[:, 3:5] * 2 - 1) * (1 - scale).unsqueeze(1)  # keep the zoomed window inside the face
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                             torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1).to(x.device)
        grid = torch.nn.functional.affine_grid(theta, [n, x.shape[1], self.size, self.size], align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        contrast = (1 + (r[:, 5] * 2 - 1) * self.jitter).view(-1, 1, 1, 1).to(x.device)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * contrast + mean).clamp(0, 1)

    def extra_repr(self) -> str:
        return f"size={self.size}, train={self.train_mode}"


class DeviceLoader:
    """Wrap a DataLoader: move each batch to `device` and apply a batch `transform` to the images there."""

    def __init__(self, loader: DataLoader, device: torch.device, transform=None):
        self.loader, self.device, self.transform = loader, device, transform

    def __iter__(self):
        for images, labels in self.loader:
            images = images.to(self.device, non_blocking=True)
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
