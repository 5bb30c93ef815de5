"""The data finder: its search order, the formats it accepts, and its offline error."""
import shutil
import time

import pytest

from helpers import finder

SAMPLES = finder.SAMPLES_DIR


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No COURSE_DATA, a private cache, downloads forbidden."""
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    return tmp_path


def make_kaggle_fer(root):
    """Copy the FER sample into the Kaggle layout train/train/<class>, test/test/<class>."""
    shutil.copytree(SAMPLES / "fer2013" / "train", root / "train" / "train")
    shutil.copytree(SAMPLES / "fer2013" / "test", root / "test" / "test")
    return root


def test_missing_dataset_offline_fails_fast_with_instructions(isolated):
    start = time.monotonic()
    with pytest.raises(finder.DataNotFoundError) as err:
        finder.find_fer2013(smoke=False)
    assert time.monotonic() - start < 5, "the offline error must come within seconds"
    message = str(err.value)
    assert "COURSE_DATA" in message and "kagglehub.dataset_download" in message
    assert finder.FER_KAGGLE in message


@pytest.mark.parametrize("find", [finder.find_fashion_mnist_csv, finder.find_fashion_mnist])
def test_missing_fashion_mnist_offline_names_fix(isolated, find):
    with pytest.raises(finder.DataNotFoundError, match="COURSE_DATA"):
        find(smoke=False)


def test_offline_check_is_quick_and_false_when_forced(isolated):
    start = time.monotonic()
    assert finder.is_online() is False
    assert time.monotonic() - start < 1


def test_smoke_mode_falls_back_to_the_project_sample(isolated):
    found = finder.find_fer2013(smoke=True)
    assert found.is_sample and "project sample" in found.source
    assert sorted(p.name for p in found.train.iterdir()) == sorted(p.name for p in found.test.iterdir())


def test_course_data_comes_before_the_sample(isolated, monkeypatch):
    data = make_kaggle_fer(isolated / "data" / "fer2013")
    monkeypatch.setenv("COURSE_DATA", str(isolated / "data"))
    found = finder.find_fer2013(smoke=True)
    assert not found.is_sample and found.source == "COURSE_DATA"
    assert found.train == data / "train" / "train"


def test_explicit_path_comes_before_course_data(isolated, monkeypatch):
    make_kaggle_fer(isolated / "data")
    explicit = isolated / "mine"
    shutil.copytree(SAMPLES / "fer2013", explicit)  # plain layout: train/<class>, test/<class>
    monkeypatch.setenv("COURSE_DATA", str(isolated / "data"))
    found = finder.find_fer2013(explicit)
    assert found.train == explicit / "train" and "given path" in found.source


def test_explicit_path_that_does_not_exist_is_named(isolated):
    with pytest.raises(finder.DataNotFoundError, match="does not exist"):
        finder.find_fer2013(isolated / "nope")


def test_fer_tarball_is_unpacked_once_into_the_cache(isolated):
    src = make_kaggle_fer(isolated / "kaggle")
    folder = isolated / "data" / "fer2013"
    folder.mkdir(parents=True)
    shutil.make_archive(str(folder / "facial-expression-dataset"), "gztar", src)
    found = finder.find_fer2013(isolated / "data")
    assert found.train.is_relative_to(isolated / "cache")
    assert len(list(found.train.rglob("*.jpg"))) == len(list((SAMPLES / "fer2013" / "train").rglob("*.jpg")))
    assert finder.find_fer2013(isolated / "data").train == found.train  # second call reuses it


def test_fashion_csv_gz_and_idx_gz_are_accepted_as_shipped(isolated):
    csv = finder.find_fashion_mnist_csv(SAMPLES)
    assert csv.train.name == "fashion-mnist_train.csv.gz"
    idx = finder.find_fashion_mnist(SAMPLES)
    raw = idx.train / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(finder.FASHION_IDX)
