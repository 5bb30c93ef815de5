"""The dataset registry: every dataset the course's programs train on, described once, as data.

``DATASETS`` holds one ``DatasetSpec`` per dataset the course ships a finder for (``fashion-csv``,
``fashion-idx``, ``fer2013``): its class names, its statistics (measured in lesson 02 on the full
training split), its native image side, its image mode and channels, the augmentation its training
uses, how the finder finds it and how its files are read into memory. ``course-train``, ``ddp_train``
and the finder's users ask this registry; adding a dataset is one entry.

A folder of one's own images is a dataset too (``FOLDER``, ``load_image_folder``): either
``train/<class>/`` and ``test/<class>/``, or one folder of ``<class>/`` folders, which is split into
training and test parts with the course's seeded stratified split (``data.split_indices``,
``TEST_FRACTION`` of each class for the test). Its spec is made from the folder:

- class names: the class folders' names, sorted (hidden entries such as ``.DS_Store`` are ignored);
- image mode: "L" (gray, 1 channel) when every training image is gray (its red, green and blue are
  equal), else "RGB"; ``image_mode=`` chooses;
- size: the longer side of the most common image size in the training part, at most
  ``MAX_INFERRED_SIZE``; ``size=`` chooses. Every image is resized so its shorter side is that size and
  its centre square is kept (what ``course-predict`` does to an image), so mixed sizes are fine;
- statistics: the mean and standard deviation per channel, measured on the training part;
- augmentation: random horizontal flips.

A folder that cannot work raises ``DatasetError`` naming what is wrong and how to fix it: one class
only, an empty class folder, a class in only one of train/ and test/, an image file that cannot be
read, a file that is no image, a file outside the class folders.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2

from helpers import data, fashion_csv, finder

FOLDER = "folder"                    # the name of a folder of one's own images (not an entry of DATASETS)
AUGMENTATIONS = ("none", "flip", "faces")
TEST_FRACTION = 0.2                  # the test share of each class when one folder of classes is split
SPLIT_SEED = 1234                    # the seed of that split: the same test part for train and test
MIN_IMAGES_TO_SPLIT = 5              # per class: 4 for training, 1 for the test
MAX_INFERRED_SIZE = 224
SHOWN_BAD_FILES = 5                  # how many bad files an error names


class DatasetError(ValueError):
    """A dataset folder that cannot be used as it is; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset, described as data.

    `name`: what ``--data`` calls it; `title`: what messages call it; `classes`: the class names in label
    order; `mean`, `std`: per-channel statistics of the training images scaled to 0-1; `size`: the native
    image side in pixels; `image_mode`: "L" or "RGB", how an image file is read (its channels follow);
    `augment`: the training augmentation ("none", "flip": mirror half the images, "faces": lesson 04's
    zoom, rotation, shift, flip, contrast and erasing); `lookup`: where the finder looks for its files;
    `find`: the finder's function (folder or None, smoke=) -> finder.Found; `read`: Found -> the
    (training file, test file) as TensorImages; `class_folders`: its files are ``<class>/`` folders.
    """
    name: str
    title: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int
    image_mode: str
    augment: str
    lookup: finder.Lookup | None = None
    find: Callable[..., finder.Found] | None = None
    read: Callable[[finder.Found], tuple[data.TensorImages, data.TensorImages]] | None = None
    class_folders: bool = False

    def __post_init__(self):
        if self.image_mode not in ("L", "RGB"):
            raise ValueError(f"{self.name}: image_mode={self.image_mode!r}; use 'L' or 'RGB'")
        if not len(self.mean) == len(self.std) == self.channels:
            raise ValueError(f"{self.name}: mean {self.mean} and std {self.std} need {self.channels} values each")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"{self.name}: augment={self.augment!r}; use one of {AUGMENTATIONS}")
        if len(self.classes) < 2:
            raise ValueError(f"{self.name}: {len(self.classes)} class(es); a classifier needs at least 2")

    @property
    def channels(self) -> int:
        """Return the image channels: 1 for "L", 3 for "RGB"."""
        return 1 if self.image_mode == "L" else 3

    def holds(self, folder: Path) -> bool:
        """Return True if `folder` holds this dataset's files (for class folders: with exactly its class names)."""
        if self.lookup is None or (found := self.lookup.look(folder)) is None:
            return False
        if not self.class_folders:
            return True
        return {p.name for p in found[0].iterdir() if p.is_dir()} == set(self.classes)


@dataclass
class DatasetFiles:
    """A dataset's training and test files held in memory, where they came from, and its spec."""
    train: data.TensorImages
    test: data.TensorImages
    source: str
    spec: DatasetSpec


# ---------------------------------------------------------------- the registered datasets

def _read_fashion_csv(found: finder.Found) -> tuple[data.TensorImages, data.TensorImages]:
    return fashion_csv.load_fashion_csv(found.train), fashion_csv.load_fashion_csv(found.test)


def _read_fashion_idx(found: finder.Found) -> tuple[data.TensorImages, data.TensorImages]:
    parts = [data.fashion_mnist(found.train if is_train else found.test, train=is_train) for is_train in (True, False)]
    return tuple(data.TensorImages(part.data.unsqueeze(1), part.targets, data.FASHION_CLASSES) for part in parts)


def _read_fer(found: finder.Found) -> tuple[data.TensorImages, data.TensorImages]:
    return data.preload_faces(found.train), data.preload_faces(found.test)


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("fashion-csv", finder.FASHION_CSV_LOOKUP.what, data.FASHION_CLASSES, data.FASHION_MEAN,
                data.FASHION_STD, 28, "L", "flip", finder.FASHION_CSV_LOOKUP, finder.find_fashion_mnist_csv,
                _read_fashion_csv),
    DatasetSpec("fashion-idx", finder.FASHION_IDX_LOOKUP.what, data.FASHION_CLASSES, data.FASHION_MEAN,
                data.FASHION_STD, 28, "L", "flip", finder.FASHION_IDX_LOOKUP, finder.find_fashion_mnist,
                _read_fashion_idx),
    DatasetSpec("fer2013", finder.FER_LOOKUP.what, data.FER_CLASSES, data.FER_MEAN, data.FER_STD, 48, "L", "faces",
                finder.FER_LOOKUP, finder.find_fer2013, _read_fer, class_folders=True),
)}
NAMES = (*DATASETS, FOLDER)          # what --data accepts


def identify(folder: Path) -> str:
    """Return the name of the dataset `folder` holds: the first registered one whose files are there
    (FER2013 only with its own seven class folders), else FOLDER (a folder of one's own images)."""
    for name, spec in DATASETS.items():
        if spec.holds(Path(folder)):
            return name
    return FOLDER


def load_dataset(name: str, data_dir: Path | None, smoke: bool, *, image_mode: str | None = None,
                 size: int | None = None) -> DatasetFiles:
    """Return dataset `name`'s training and test files in memory.

    A registered dataset is found by the finder (`data_dir`, else COURSE_DATA, the samples in smoke mode, the
    download); a `data_dir` that does not hold it raises DatasetError (no fallback to the samples).
    FOLDER reads `data_dir` as a folder of one's own images, with `image_mode` and `size` as given or inferred.
    """
    if name == FOLDER:
        if data_dir is None:
            raise DatasetError("a folder of your own images needs its path: give --data-dir PATH")
        return load_image_folder(data_dir, image_mode=image_mode, size=size)
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    spec = DATASETS[name]
    if data_dir is not None and spec.lookup.look(Path(data_dir)) is None:
        raise DatasetError(f"{data_dir} holds no {spec.title}: {spec.lookup.missing(Path(data_dir))}")
    found = spec.find(data_dir, smoke=smoke)
    train, test = spec.read(found)
    return DatasetFiles(train, test, found.source, spec)


# ---------------------------------------------------------------- a folder of one's own images

def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def scan_class_folders(root: Path) -> dict[str, list[Path]]:
    """Return {class name: its files, sorted} for ``root/<class>/<file>``; raise DatasetError for loose files,
    nested folders or an empty class folder."""
    classes: dict[str, list[Path]] = {}
    for entry in _visible(root):
        if not entry.is_dir():
            raise DatasetError(f"{entry} lies outside the class folders: every image belongs in a folder named "
                               f"after its class ({root}/<class>/); move it into one or delete it")
        inside = _visible(entry)
        if folders := [p for p in inside if p.is_dir()]:
            raise DatasetError(f"{folders[0]} is a folder inside the class folder {entry.name}/: a class folder "
                               f"holds image files only; move its images up into {entry} or out of the dataset")
        if not inside:
            raise DatasetError(f"the class folder {entry} holds no image files: put images of {entry.name!r} "
                               f"in it, or delete the folder to drop that class")
        classes[entry.name] = inside
    return classes


def _check_classes(train_part: dict[str, list[Path]], test: dict[str, list[Path]] | None, root: Path) -> None:
    if len(train_part) < 2:
        where = root / "train" if test is not None else root
        held = f"one class folder ({next(iter(train_part))})" if train_part else "no class folders"
        raise DatasetError(f"{where} holds {held}; a classifier needs at least two classes: add a folder of "
                           f"images for each other class")
    if test is None:
        if small := [name for name, paths in train_part.items() if len(paths) < MIN_IMAGES_TO_SPLIT]:
            raise DatasetError(f"class {small[0]!r} has {len(train_part[small[0]])} image(s) in {root}/{small[0]}; "
                               f"splitting off a test part needs at least {MIN_IMAGES_TO_SPLIT} per class: add "
                               f"images, or give train/ and test/ folders yourself")
        return
    if only_test := sorted(set(test) - set(train_part)):
        raise DatasetError(f"class {only_test[0]!r} is in {root}/test but not in {root}/train, so the model could "
                           f"never learn it: add training images in {root}/train/{only_test[0]}, or remove the test folder")
    if only_train := sorted(set(train_part) - set(test)):
        raise DatasetError(f"class {only_train[0]!r} is in {root}/train but not in {root}/test, so it could not be "
                           f"scored: add test images in {root}/test/{only_train[0]}, or remove the training folder")


def _open_all(paths: list[Path]) -> list[tuple[int, int]]:
    """Return each file's (width, height), read from its header; raise DatasetError naming the bad files."""
    sizes, bad = [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.append(image.size)
        except UnidentifiedImageError:
            bad.append(f"{path} (not an image: no format Pillow reads)")
        except OSError as err:           # no permission, a broken link, a read error
            bad.append(f"{path} (cannot be read: {type(err).__name__}: {err.strerror or err})")
    _raise_bad(bad)
    return sizes


def _raise_bad(bad: list[str]) -> None:
    if bad:
        more = f" and {len(bad) - SHOWN_BAD_FILES} more" if len(bad) > SHOWN_BAD_FILES else ""
        raise DatasetError(f"{len(bad)} file(s) in the image folder cannot be used: {'; '.join(bad[:SHOWN_BAD_FILES])}"
                           f"{more}. Delete or replace them (or fix their permissions), then run again")


def inferred_size(sizes: list[tuple[int, int]]) -> int:
    """Return the longer side of the most common (width, height) in `sizes` (the larger on a tie), at most
    MAX_INFERRED_SIZE."""
    counts = Counter(sizes)
    most = max(counts.values())
    return min(MAX_INFERRED_SIZE, max(max(wh) for wh, n in counts.items() if n == most))


def _decode(paths: list[Path], size: int, image_mode: str) -> torch.Tensor:
    """Return the images at `paths` read in `image_mode` as one uint8 N x C x size x size tensor: the shorter side
    resized to `size` and the centre square kept, as ``course-predict`` prepares an image. Raise DatasetError
    naming the files that fail to decode."""
    images, bad = [], []
    for path in paths:
        try:
            image = data.load_image(path, mode=image_mode)
        except (data.BadImageError, OSError) as err:
            bad.append(f"{path} (cannot be decoded: {type(err.__cause__ or err).__name__})")
            continue
        tensor = v2.functional.pil_to_tensor(image)
        images.append(v2.functional.center_crop(v2.functional.resize(tensor, size, antialias=True), size))
    _raise_bad(bad)
    return torch.stack(images)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return the per-channel mean and standard deviation of uint8 `images` (N x C x H x W) scaled to 0-1."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), 1024):
        chunk = images[start:start + 1024].double() / 255
        total += chunk.sum((0, 2, 3))
        squares += (chunk ** 2).sum((0, 2, 3))
    count = images.numel() / images.shape[1]
    mean = total / count
    std = (squares / count - mean ** 2).clamp_min(0).sqrt()
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(max(v, 1e-4), 4) for v in std.tolist())


def load_image_folder(path: str | Path, *, image_mode: str | None = None, size: int | None = None) -> DatasetFiles:
    """Return a folder of one's own images (see the module docstring for the layouts and the rules) as
    training and test files in memory, with the DatasetSpec made from it."""
    found = finder.find_image_folder(path)
    root = Path(path).expanduser()
    if image_mode not in (None, "L", "RGB"):
        raise DatasetError(f"image mode {image_mode!r}; use 'L' (gray) or 'RGB'")
    train_classes = scan_class_folders(found.train)
    test_classes = scan_class_folders(found.test) if found.test is not None else None
    _check_classes(train_classes, test_classes, root)
    names = sorted(train_classes)
    train_paths = [(p, k) for k, name in enumerate(names) for p in train_classes[name]]
    test_paths = [(p, k) for k, name in enumerate(names) for p in test_classes[name]] if test_classes else []
    sizes = _open_all([p for p, _ in train_paths + test_paths])
    if found.test is None:                 # one folder of classes: the seeded stratified split
        labels = [k for _, k in train_paths]
        train_idx, test_idx = data.split_indices(labels, torch.Generator().manual_seed(SPLIT_SEED),
                                                 (1 - TEST_FRACTION, TEST_FRACTION))
        train_paths, test_paths = [train_paths[i] for i in train_idx], [train_paths[i] for i in test_idx]
        sizes = [sizes[i] for i in train_idx]
    size = size or inferred_size(sizes[:len(train_paths)])
    train_files = [p for p, _ in train_paths]
    if image_mode is None:                 # gray when red, green and blue agree in every training image
        train_images = _decode(train_files, size, "RGB")
        image_mode = "L" if bool((train_images == train_images[:, :1]).all()) else "RGB"
        if image_mode == "L":              # a gray pixel (v, v, v) is v in Pillow's "L" too
            train_images = train_images[:, :1].contiguous()
    else:
        train_images = _decode(train_files, size, image_mode)
    test_images = _decode([p for p, _ in test_paths], size, image_mode)
    mean, std = channel_stats(train_images)
    spec = DatasetSpec(FOLDER, f"the image folder {root.name}", tuple(names), mean, std, size, image_mode, "flip")
    return DatasetFiles(data.TensorImages(train_images, torch.tensor([k for _, k in train_paths]), names),
                        data.TensorImages(test_images, torch.tensor([k for _, k in test_paths]), names),
                        found.source, spec)
