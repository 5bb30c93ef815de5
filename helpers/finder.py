"""The data finder: where each dataset comes from, in one fixed order.

1. a folder the caller names, or else the ``COURSE_DATA`` folder;
2. smoke mode: the small real samples shipped in ``helpers/samples/`` (no download);
   full mode: the real download (kagglehub or torchvision) when the machine is online;
3. otherwise a ``DataNotFoundError``, within seconds, that says how to get the data.

Accepted on disk, as downloaded, nothing to convert by hand: the FER2013 Kaggle layout
(``train/train/<class>``, ``test/test/<class>``), a plain ``train/<class>`` layout, or the
Kaggle ``.tar.gz`` (unpacked once into the cache); Fashion-MNIST as the Kaggle CSVs
(``.csv`` or ``.csv.gz``) and as the four official idx files (raw or ``.gz``).
"""
from __future__ import annotations

import gzip
import shutil
import socket
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from helpers import env

FER_KAGGLE = "aadityasinghal/facial-expression-dataset"
FASHION_KAGGLE = "zalando-research/fashionmnist"
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
ONLINE_TIMEOUT_S = 3.0
FER_SUBDIRS = ("", "fer2013", "facial-expression-dataset")
FASHION_SUBDIRS = ("", "fashion-mnist", "fashionmnist", "FashionMNIST/raw")
FASHION_CSV = ("fashion-mnist_train.csv", "fashion-mnist_test.csv")
FASHION_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message says how to get it."""


@dataclass(frozen=True)
class Found:
    """Where a dataset was found: its `train` and `test` paths and a human `source` label."""
    train: Path
    test: Path
    source: str
    is_sample: bool = False


# ---------------------------------------------------------------- online check

def is_online(host: str = "www.kaggle.com", port: int = 443, timeout: float = ONLINE_TIMEOUT_S) -> bool:
    """Return True if a TCP connection to `host` opens within `timeout` seconds (DNS included)."""
    if env.offline_forced():
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore socket timeouts
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


# ---------------------------------------------------------------- FER2013

def _fer_layout(base: Path) -> tuple[Path, Path] | None:
    for train, test in ((base / "train" / "train", base / "test" / "test"), (base / "train", base / "test")):
        if train.is_dir() and test.is_dir() and any(p.is_dir() for p in train.iterdir()):
            return train, test
    return None


def _unpack_once(archive: Path, name: str) -> Path:
    """Unpack `archive` into the cache once (atomically: a temp folder renamed into place)."""
    target = env.cache_dir() / name
    if target.is_dir():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _fer_in(base: Path) -> tuple[Path, Path] | None:
    for sub in FER_SUBDIRS:
        folder = base / sub
        if not folder.is_dir():
            continue
        if (found := _fer_layout(folder)) is not None:
            return found
        for archive in sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.tgz")):
            if (found := _fer_layout(_unpack_once(archive, "fer2013"))) is not None:
                return found
    return None


def find_fer2013(path: str | Path | None = None, *, smoke: bool = False) -> Found:
    """Return the FER2013 train and test class folders (see the module docstring for the order)."""
    looked = _candidates(path)
    for base, source in looked:
        if (found := _fer_in(base)) is not None:
            return Found(*found, source=source)
    if smoke:
        return Found(SAMPLES_DIR / "fer2013" / "train", SAMPLES_DIR / "fer2013" / "test",
                     source="project sample (helpers/samples/fer2013)", is_sample=True)
    if is_online():
        import kagglehub
        base = Path(kagglehub.dataset_download(FER_KAGGLE))
        if (found := _fer_in(base)) is not None:
            return Found(*found, source=f"kagglehub download ({FER_KAGGLE})")
    raise DataNotFoundError(_not_found_message(
        "FER2013 (facial expressions)", looked,
        f"import kagglehub; kagglehub.dataset_download('{FER_KAGGLE}')",
        "a folder with train/<class>/ and test/<class>/ (the Kaggle layout train/train/<class>/ "
        "or its .tar.gz works too)"))


# ---------------------------------------------------------------- Fashion-MNIST

def _first_existing(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _fashion_csv_in(base: Path) -> tuple[Path, Path] | None:
    for sub in FASHION_SUBDIRS:
        files = [_first_existing(base / sub, name) for name in FASHION_CSV]
        if all(files):
            return files[0], files[1]
    return None


def find_fashion_mnist_csv(path: str | Path | None = None, *, smoke: bool = False) -> Found:
    """Return the Kaggle Fashion-MNIST train and test CSV files (plain or .gz)."""
    looked = _candidates(path)
    for base, source in looked:
        if (found := _fashion_csv_in(base)) is not None:
            return Found(*found, source=source)
    if smoke:
        sample = _fashion_csv_in(SAMPLES_DIR / "fashion-mnist")
        return Found(*sample, source="project sample (helpers/samples/fashion-mnist)", is_sample=True)
    if is_online():
        import kagglehub
        base = Path(kagglehub.dataset_download(FASHION_KAGGLE))
        if (found := _fashion_csv_in(base)) is not None:
            return Found(*found, source=f"kagglehub download ({FASHION_KAGGLE})")
    raise DataNotFoundError(_not_found_message(
        "Fashion-MNIST (Kaggle CSV)", looked,
        f"import kagglehub; kagglehub.dataset_download('{FASHION_KAGGLE}')",
        "fashion-mnist_train.csv and fashion-mnist_test.csv (.csv or .csv.gz)"))


def _idx_in(base: Path) -> list[Path] | None:
    for sub in FASHION_SUBDIRS:
        files = [_first_existing(base / sub, name) for name in FASHION_IDX]
        if all(files):
            return files
    return None


def _torchvision_root(files: list[Path], name: str) -> Path:
    """Return a root where ``FashionMNIST(root, download=False)`` finds `files` (decompressed once)."""
    if all(f.suffix != ".gz" and f.parent.parts[-2:] == ("FashionMNIST", "raw") for f in files):
        return files[0].parent.parent.parent
    root = env.cache_dir() / name
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        out = raw / f.name.removesuffix(".gz")
        if out.is_file():
            continue
        tmp = out.with_name(out.name + ".partial")
        with (gzip.open(f) if f.suffix == ".gz" else open(f, "rb")) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(out)
    return root


def find_fashion_mnist(path: str | Path | None = None, *, smoke: bool = False) -> Found:
    """Return a root for ``torchvision.datasets.FashionMNIST(root, download=False)`` (as train and test)."""
    looked = _candidates(path)
    for base, source in looked:
        if (files := _idx_in(base)) is not None:
            root = _torchvision_root(files, "fashion-mnist-idx")
            return Found(root, root, source=source)
    if smoke:
        root = _torchvision_root(_idx_in(SAMPLES_DIR / "fashion-mnist"), "fashion-mnist-sample-idx")
        return Found(root, root, source="project sample (helpers/samples/fashion-mnist)", is_sample=True)
    if is_online("ossci-datasets.s3.amazonaws.com"):
        from torchvision import datasets
        root = env.cache_dir() / "fashion-mnist-download"
        for train in (True, False):
            datasets.FashionMNIST(root, train=train, download=True)
        return Found(root, root, source="torchvision download")
    raise DataNotFoundError(_not_found_message(
        "Fashion-MNIST (idx files for torchvision)", looked,
        "from torchvision import datasets; datasets.FashionMNIST(root, download=True)",
        "the four files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (raw or .gz)"))


# ---------------------------------------------------------------- shared

def _candidates(path: str | Path | None) -> list[tuple[Path, str]]:
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"The data path {path} does not exist. Check the spelling, or pass "
                                    f"path=None to use COURSE_DATA or the download.")
        return [(path, f"the given path ({path.name})")]
    root = env.data_root()
    return [(root, "COURSE_DATA")] if root is not None and root.is_dir() else []


def _not_found_message(what: str, looked: list[tuple[Path, str]], download: str, layout: str) -> str:
    where = ", ".join(str(p) for p, _ in looked) or "nowhere: no path was given and COURSE_DATA is not set"
    why = "COURSE_OFFLINE is set" if env.offline_forced() else "this machine cannot reach the download site"
    return (f"{what} was not found. Looked in: {where}. No download was made: {why}.\n"
            f"To fix it, either\n"
            f"  - online: run  {download}  (the notebooks do this for you when they can connect), or\n"
            f"  - offline: put {layout} in a folder and set COURSE_DATA to that folder "
            f"(export COURSE_DATA=/path/to/data), then run again. See README, 'Getting the data'.")
