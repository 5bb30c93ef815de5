"""Cut the small real samples in helpers/samples/ from the full datasets (run once, by a maintainer).

    python scripts/make_samples.py /path/to/data      # the folder COURSE_DATA would point at

FER2013: SAMPLE_FER_TRAIN / SAMPLE_FER_TEST images per class, picked with a fixed seed, copied
byte for byte. Fashion-MNIST: SAMPLE_FASHION_TRAIN / SAMPLE_FASHION_TEST rows per class, written
both as Kaggle CSVs (.csv.gz) and as idx files (.gz) holding the same images in the same order.
"""
from __future__ import annotations

import argparse
import gzip
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import finder

SEED = 0
SAMPLE_FER_TRAIN, SAMPLE_FER_TEST = 40, 12
SAMPLE_FASHION_TRAIN, SAMPLE_FASHION_TEST = 200, 50


def cut_fer(found: finder.Found, out: Path) -> None:
    rng = random.Random(SEED)
    for split, src_root, per_class in (("train", found.train, SAMPLE_FER_TRAIN), ("test", found.test, SAMPLE_FER_TEST)):
        for class_dir in sorted(p for p in src_root.iterdir() if p.is_dir()):
            files = sorted(class_dir.glob("*.jpg"))
            dst = out / "fer2013" / split / class_dir.name
            dst.mkdir(parents=True, exist_ok=True)
            for f in rng.sample(files, per_class):
                shutil.copy2(f, dst / f.name)


def balanced_rows(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    rows = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(rows))


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x00000803 if array.ndim == 3 else 0x00000801
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def cut_fashion(found: finder.Found, out: Path) -> None:
    rng = np.random.default_rng(SEED)
    dst = out / "fashion-mnist"
    dst.mkdir(parents=True, exist_ok=True)
    for (split, csv), per_class, prefix in zip((("train", found.train), ("test", found.test)),
                                                (SAMPLE_FASHION_TRAIN, SAMPLE_FASHION_TEST), ("train", "t10k")):
        frame = pd.read_csv(csv)
        rows = balanced_rows(frame["label"].to_numpy(), per_class, rng)
        part = frame.iloc[rows]
        with gzip.GzipFile(dst / f"fashion-mnist_{split}.csv.gz", "wb", mtime=0) as f:
            f.write(part.to_csv(index=False).encode())
        pixels = part.drop(columns="label").to_numpy().reshape(-1, 28, 28)
        write_idx(dst / f"{prefix}-images-idx3-ubyte.gz", pixels)
        write_idx(dst / f"{prefix}-labels-idx1-ubyte.gz", part["label"].to_numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder holding the full datasets (as COURSE_DATA would)")
    args = parser.parse_args()
    out = finder.SAMPLES_DIR
    shutil.rmtree(out, ignore_errors=True)
    cut_fer(finder.find_fer2013(args.data), out)
    cut_fashion(finder.find_fashion_mnist_csv(args.data), out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
