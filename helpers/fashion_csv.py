"""Fashion-MNIST from the Kaggle CSVs (``label,pixel1,...,pixel784``), checked and decoded once.

Two ways to serve the same file, so lesson 03 can measure the difference:

- ``load_fashion_csv`` reads the CSV once with pandas, checks every value, and returns the whole
  split as a ``data.TensorImages`` (one uint8 tensor N x 1 x 28 x 28 plus int64 labels); an item is
  a tensor slice, nothing more.
- ``PILFashionCSV`` is the way the lesson's source does it: each item reshapes one NumPy row, turns
  it into a PIL image and back into a tensor. Correct, and many times slower.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision import transforms

from helpers.data import FASHION_CLASSES, TensorImages

IMAGE_SIZE = 28                                  # Fashion-MNIST images are 28 x 28, one channel
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE             # 784 pixel columns per row
PIXEL_MAX = 255                                  # pixel values are 0..255
EXPECTED_COLUMNS = ("label",) + tuple(f"pixel{i}" for i in range(1, NUM_PIXELS + 1))


class BadCSVError(ValueError):
    """A Fashion-MNIST CSV is malformed; the message names the file, the row or column, and what was expected."""


def _where(row: int) -> str:
    return f"data row {row} (line {row + 2} of the file, counting the header as line 1)"


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    columns = [str(c) for c in frame.columns]
    if columns == list(EXPECTED_COLUMNS):
        return
    missing = [c for c in EXPECTED_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in EXPECTED_COLUMNS]
    if not missing and not extra:
        raise BadCSVError(f"{path}: the columns are all there but out of order; expected "
                          f"'label', 'pixel1', ..., 'pixel{NUM_PIXELS}' in that order.")
    raise BadCSVError(f"{path}: expected the {len(EXPECTED_COLUMNS)} columns 'label', 'pixel1', ..., "
                      f"'pixel{NUM_PIXELS}' (the Kaggle Fashion-MNIST layout); missing {missing[:5]}"
                      f"{' ...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
                      f"{' ...' if len(extra) > 5 else ''}. Is this the right file?")


def _check_numeric(frame: pd.DataFrame, path: Path) -> None:
    """Raise BadCSVError at the first missing, non-numeric or fractional value (integer columns pass untouched)."""
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_integer_dtype(series):
            continue
        numbers = pd.to_numeric(series, errors="coerce")
        bad = numbers.isna() | (numbers != numbers.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = series.iloc[row]
            what = "is empty" if pd.isna(value) else f"holds {value!r}"
            raise BadCSVError(f"{path}: column '{column}', {_where(row)} {what}; expected a whole number "
                              f"({'a class index 0-9' if column == 'label' else 'a pixel value 0-255'}).")
        frame[column] = numbers.astype(np.int64)


def _check_range(values: np.ndarray, path: Path) -> None:
    labels, pixels = values[:, 0], values[:, 1:]
    bad_labels = np.flatnonzero((labels < 0) | (labels >= len(FASHION_CLASSES)))
    if bad_labels.size:
        row = int(bad_labels[0])
        raise BadCSVError(f"{path}: column 'label', {_where(row)} holds {labels[row]}; expected a class "
                          f"index 0-{len(FASHION_CLASSES) - 1} ({len(bad_labels)} out-of-range label(s) in the file).")
    bad_pixels = np.argwhere((pixels < 0) | (pixels > PIXEL_MAX))
    if bad_pixels.size:
        row, col = (int(i) for i in bad_pixels[0])
        raise BadCSVError(f"{path}: column 'pixel{col + 1}', {_where(row)} holds {pixels[row, col]}; "
                          f"expected a pixel value 0-{PIXEL_MAX} ({len(bad_pixels)} out-of-range pixel value(s) in the file).")


def read_fashion_csv(path: str | Path, max_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images uint8 N x 1 x 28 x 28, labels int64 N) from a Kaggle Fashion-MNIST CSV (.csv or .csv.gz).

    Every value is checked; a BadCSVError names the file, the row or column and what was expected.
    `max_rows` reads only the first rows (for quick runs).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; get the CSVs with finder.find_fashion_mnist_csv().")
    try:
        frame = pd.read_csv(path, nrows=max_rows, keep_default_na=False, na_values=[""])  # 'n/a' is an error, not a gap
    except pd.errors.EmptyDataError as err:
        raise BadCSVError(f"{path} is empty; expected a header 'label,pixel1,...' and one row per image.") from err
    except pd.errors.ParserError as err:
        raise BadCSVError(f"{path}: {err}. Every row must have {len(EXPECTED_COLUMNS)} comma-separated "
                          f"fields (a label and {NUM_PIXELS} pixels).") from err
    _check_columns(frame, path)
    if len(frame) == 0:
        raise BadCSVError(f"{path} has a header but no rows; expected one row per image.")
    _check_numeric(frame, path)
    values = frame.to_numpy(dtype=np.int64)
    _check_range(values, path)
    images = torch.from_numpy(values[:, 1:].astype(np.uint8)).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
    return images, torch.from_numpy(values[:, 0].copy())


def load_fashion_csv(path: str | Path, max_rows: int | None = None, transform=None) -> TensorImages:
    """Return a Kaggle Fashion-MNIST CSV as a TensorImages, read and checked once (see ``read_fashion_csv``)."""
    images, labels = read_fashion_csv(path, max_rows)
    return TensorImages(images, labels, FASHION_CLASSES, transform)


def pil_transform() -> transforms.Compose:
    """Return the source's per-item pipeline: HxWx1 uint8 array -> PIL image -> Resize(28) -> float tensor 0-1."""
    return transforms.Compose([transforms.ToPILImage(), transforms.Resize(IMAGE_SIZE), transforms.ToTensor()])


class PILFashionCSV(Dataset):
    """The slow way (the lesson's source): keep NumPy rows, build a PIL image per item, convert it back to a tensor."""

    def __init__(self, path: str | Path, transform=None, max_rows: int | None = None):
        images, labels = read_fashion_csv(path, max_rows)       # same checks as FashionCSV
        self.images = images.reshape(len(labels), NUM_PIXELS).numpy()
        self.labels = labels.numpy()
        self.transform = transform if transform is not None else pil_transform()
        self.classes = list(FASHION_CLASSES)

    @property
    def targets(self) -> list[int]:
        """Return every label as a list of ints (like ImageFolder.targets)."""
        return self.labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].reshape(IMAGE_SIZE, IMAGE_SIZE, 1)
        return self.transform(image), int(self.labels[index])
