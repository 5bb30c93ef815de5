"""The data finder: where each dataset comes from, in one fixed order.

1. a folder the caller names, or else the ``COURSE_DATA`` folder;
2. smoke mode: the small real samples shipped in ``helpers/samples/`` (no download);
   full mode: the real download (kagglehub or torchvision) when the machine is online;
3. otherwise a ``DataNotFoundError``, within seconds, that says what was looked at, what is missing
   there, and how to get the data.

Accepted on disk, as downloaded, nothing to convert by hand: the FER2013 Kaggle layout
(``train/train/<class>``, ``test/test/<class>``), a plain ``train/<class>`` layout, or the
Kaggle ``.tar.gz`` (unpacked once into the cache); Fashion-MNIST as the Kaggle CSVs
(``.csv`` or ``.csv.gz``) and as the four official idx files (raw or ``.gz``).

Each dataset's ``Lookup`` (``FER_LOOKUP``, ``FASHION_CSV_LOOKUP``, ``FASHION_IDX_LOOKUP``) says where its
files sit in a folder; ``helpers.datasets`` names them in its registry. A folder of one's own images has
no finder order: ``find_image_folder`` reads the folder it is given (see its docstring for the layouts).
"""
from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from helpers import env, files

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
    """Where a dataset was found: its `train` and `test` paths (`test` None: one folder to be split) and a
    human `source` label."""
    train: Path
    test: Path | None
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


# ---------------------------------------------------------------- where to look

def _candidates(path: str | Path | None) -> tuple[list[tuple[Path, str]], str]:
    """Return the folders to look in (with a label for each) and a note on a COURSE_DATA that points nowhere."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"The data path {path} does not exist. Check the spelling, or pass "
                                    f"path=None to use COURSE_DATA or the download.")
        return [(path, f"the given path ({path.name})")], ""
    root = env.data_root()
    if root is None:
        return [], ""
    if root.exists() and not root.is_dir():
        return [], f"COURSE_DATA is set to {root}, which is a file, not a folder"
    if not root.is_dir():
        return [], f"COURSE_DATA is set to {root}, but that folder does not exist"
    return [(root, "COURSE_DATA")], ""


@dataclass(frozen=True)
class Lookup:
    """How to find one dataset: its name, where its files sit in a folder, its sample and its download."""
    what: str
    look: Callable[[Path], tuple[Path, Path] | None]      # a folder -> (train, test), or None
    missing: Callable[[Path], str]                          # a folder -> what of the dataset is missing there
    sample: str                                             # folder under helpers/samples
    download_hint: str
    layout: str
    host: str = "www.kaggle.com"                            # where the download comes from


def _find(spec: Lookup, path, smoke: bool, download: Callable[[], Found | None]) -> Found:
    looked, note = _candidates(path)
    for base, source in looked:
        if (found := spec.look(base)) is not None:
            return Found(*found, source=source)
    if smoke:
        sample = SAMPLES_DIR / spec.sample
        if sample.is_dir() and (found := spec.look(sample)) is not None:
            why = f"; {note}" if note else ""
            return Found(*found, source=f"project sample (helpers/samples/{spec.sample}){why}", is_sample=True)
        looked = looked + [(sample, "the project's samples")]
        why = "smoke mode never downloads"
    elif is_online(spec.host):
        if (found := download()) is not None:
            return Found(found.train, found.test, f"{found.source}; {note}" if note else found.source)
        why = "the download finished, but what it holds is not in a layout the finder knows"
    else:
        why = "COURSE_OFFLINE is set" if env.offline_forced() else f"this machine cannot reach {spec.host}"
    raise DataNotFoundError(_not_found_message(spec, looked, note, why, smoke))


def _not_found_message(spec: Lookup, looked: list[tuple[Path, str]], note: str, why: str, smoke: bool) -> str:
    where = "; ".join(f"{p} ({spec.missing(p)})" for p, _ in looked)
    if not where:
        where = note or "nowhere: no path was given and COURSE_DATA is not set"
    elif note:
        where = f"{note}; {where}"
    samples = ("\n  - or, for smoke mode, restore the samples that ship with the course in helpers/samples/ "
               "(this copy lacks them): git checkout -- helpers/samples, or a fresh clone." if smoke else "")
    return (f"{spec.what} was not found. Looked in: {where}. No download was made: {why}.\n"
            f"To fix it, either\n"
            f"  - online: run  {spec.download_hint}  (the notebooks do this for you when they can connect), or\n"
            f"  - offline: put {spec.layout} in a folder and set COURSE_DATA to that folder "
            f"(export COURSE_DATA=/path/to/data), then run again. See README, 'Getting the data'.{samples}")


def _unpack_once(archive: Path, name: str) -> Path:
    """Unpack `archive` into the cache once, atomically (a temporary folder renamed into place).

    The cache folder is named for the archive (its path, size and time), so another or a replaced
    archive is unpacked afresh.
    """
    stat = archive.stat()
    key = hashlib.sha1(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    target = env.cache_dir() / f"{name}-{key}"
    if not target.is_dir():
        def unpack(tmp: Path) -> None:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        try:
            files.atomic_write(target, unpack)
        except OSError:
            if not target.is_dir():      # another process unpacked the same archive first: use its copy
                raise
    return target


# ---------------------------------------------------------------- FER2013

def _fer_layout(base: Path) -> tuple[Path, Path] | None:
    for train, test in ((base / "train" / "train", base / "test" / "test"), (base / "train", base / "test")):
        if train.is_dir() and test.is_dir() and any(p.is_dir() for p in train.iterdir()):
            return train, test
    return None


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


def _fer_missing(base: Path) -> str:
    for sub in FER_SUBDIRS:
        folder = base / sub
        for train_name, test_name in (("train/train", "test/test"), ("train", "test")):
            train, test = folder / train_name, folder / test_name
            if train.is_dir() != test.is_dir():
                have, lack = (train_name, test_name) if train.is_dir() else (test_name, train_name)
                return f"it has {sub + '/' if sub else ''}{have}/ but no {sub + '/' if sub else ''}{lack}/"
            if train.is_dir() and not any(p.is_dir() for p in train.iterdir()):
                return f"{sub + '/' if sub else ''}{train_name}/ holds no class folders"
    return "no train/ and test/ class folders, and no .tar.gz"


FER_LOOKUP = Lookup("FER2013 (facial expressions)", _fer_in, _fer_missing, "fer2013",
               f"import kagglehub; kagglehub.dataset_download('{FER_KAGGLE}')",
               "a folder with train/<class>/ and test/<class>/ (the Kaggle layout train/train/<class>/ "
               "or its .tar.gz works too)")


def find_fer2013(path: str | Path | None = None, *, smoke: bool = False) -> Found:
    """Return the FER2013 train and test class folders (see the module docstring for the order)."""
    def download() -> Found | None:
        import kagglehub
        found = _fer_in(Path(kagglehub.dataset_download(FER_KAGGLE)))
        return Found(*found, source=f"kagglehub download ({FER_KAGGLE})") if found else None
    return _find(FER_LOOKUP, path, smoke, download)


# ---------------------------------------------------------------- Fashion-MNIST

def _first_existing(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _files_in(base: Path, names: tuple[str, ...]) -> list[Path] | None:
    for sub in FASHION_SUBDIRS:
        found = [_first_existing(base / sub, name) for name in names]
        if all(found):
            return found
    return None


def _files_missing(base: Path, names: tuple[str, ...]) -> str:
    """Say which of `names` are missing in the subfolder of `base` that holds the most of them."""
    best = max(FASHION_SUBDIRS, key=lambda sub: sum(_first_existing(base / sub, n) is not None for n in names))
    missing = [n for n in names if _first_existing(base / best, n) is None]
    if len(missing) == len(names):
        return f"none of {', '.join(names)}"
    return f"{best + '/' if best else 'it'} lacks {', '.join(missing)} (.gz or not)"


FASHION_CSV_LOOKUP = Lookup("Fashion-MNIST (Kaggle CSV)", lambda base: _files_in(base, FASHION_CSV),
                            lambda base: _files_missing(base, FASHION_CSV), "fashion-mnist",
                            f"import kagglehub; kagglehub.dataset_download('{FASHION_KAGGLE}')",
                            "fashion-mnist_train.csv and fashion-mnist_test.csv (.csv or .csv.gz)")


def find_fashion_mnist_csv(path: str | Path | None = None, *, smoke: bool = False) -> Found:
    """Return the Kaggle Fashion-MNIST train and test CSV files (plain or .gz)."""
    def download() -> Found | None:
        import kagglehub
        found = _files_in(Path(kagglehub.dataset_download(FASHION_KAGGLE)), FASHION_CSV)
        return Found(*found, source=f"kagglehub download ({FASHION_KAGGLE})") if found else None
    return _find(FASHION_CSV_LOOKUP, path, smoke, download)


def _decompress(source: Path, tmp: Path) -> None:
    with (gzip.open(source) if source.suffix == ".gz" else open(source, "rb")) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)


def _torchvision_root(idx_files: list[Path], name: str) -> Path:
    """Return a root where ``FashionMNIST(root, download=False)`` finds `idx_files` (decompressed once)."""
    if all(f.suffix != ".gz" and f.parent.parts[-2:] == ("FashionMNIST", "raw") for f in idx_files):
        return idx_files[0].parent.parent.parent
    root = env.cache_dir() / name
    for f in idx_files:
        out = root / "FashionMNIST" / "raw" / f.name.removesuffix(".gz")
        if not out.is_file():
            files.atomic_write(out, lambda tmp, source=f: _decompress(source, tmp))
    return root


def _idx_root(base: Path) -> tuple[Path, Path] | None:
    idx_files = _files_in(base, FASHION_IDX)
    if idx_files is None:
        return None
    folder_id = hashlib.sha1(str(idx_files[0].resolve().parent).encode()).hexdigest()[:10]
    root = _torchvision_root(idx_files, f"fashion-mnist-idx-{folder_id}")   # one cache folder per source folder
    return root, root


FASHION_IDX_LOOKUP = Lookup("Fashion-MNIST (idx files for torchvision)", _idx_root,
                            lambda base: _files_missing(base, FASHION_IDX), "fashion-mnist",
                            "from torchvision import datasets; datasets.FashionMNIST(root, download=True)",
                            "the four files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                            "t10k-labels-idx1-ubyte (raw or .gz)", host="ossci-datasets.s3.amazonaws.com")


def find_fashion_mnist(path: str | Path | None = None, *, smoke: bool = False) -> Found:
    """Return a root for ``torchvision.datasets.FashionMNIST(root, download=False)`` (as train and test)."""
    def download() -> Found | None:
        from torchvision import datasets
        root = env.cache_dir() / "fashion-mnist-download"
        for train in (True, False):
            datasets.FashionMNIST(root, train=train, download=True)
        return Found(root, root, source="torchvision download")
    return _find(FASHION_IDX_LOOKUP, path, smoke, download)


# ---------------------------------------------------------------- a folder of one's own images

def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def find_image_folder(path: str | Path) -> Found:
    """Return the class-folder roots of a folder of one's own images, in one of two layouts:

    - ``path/train/<class>/`` and ``path/test/<class>/``: Found(train, test);
    - ``path/<class>/`` (no train/ or test/): Found(path, None), to be split into training and test parts.

    Raise DataNotFoundError, saying what to change, for any other layout. Hidden entries (``.name``) are
    ignored. What the class folders hold is checked where the images are read (``helpers.datasets``).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"the image folder {root} does not exist; check the path")
    train, test = root / "train", root / "test"
    if train.is_dir() or test.is_dir():
        if not (train.is_dir() and test.is_dir()):
            have, lack = ("train", "test") if train.is_dir() else ("test", "train")
            raise DataNotFoundError(f"{root} has {have}/ but no {lack}/: give both train/<class>/ and "
                                    f"test/<class>/, or put the class folders directly in {root} to have them split")
        return Found(train, test, source=f"image folder {root.name} (train/ and test/)")
    if not _visible_dirs(root):
        raise DataNotFoundError(f"{root} holds no class folders: lay the images out as {root}/train/<class>/ "
                                f"and {root}/test/<class>/, or as {root}/<class>/ to have them split")
    return Found(root, None, source=f"image folder {root.name} (split into training and test parts)")
