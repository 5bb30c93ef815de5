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


# ---------------------------------------------------------------- errors that say what happened

@pytest.mark.parametrize("find", [finder.find_fer2013, finder.find_fashion_mnist_csv, finder.find_fashion_mnist])
def test_smoke_mode_without_the_shipped_samples_raises_the_finders_own_error(isolated, monkeypatch, find):
    monkeypatch.setattr(finder, "SAMPLES_DIR", isolated / "partial-copy" / "samples")   # a copy without samples/
    with pytest.raises(finder.DataNotFoundError) as err:
        find(smoke=True)
    message = str(err.value)
    assert "COURSE_DATA" in message and ("kagglehub.dataset_download" in message or "download=True" in message)
    assert "partial-copy" in message and "smoke mode never downloads" in message
    assert "git checkout -- helpers/samples" in message


def test_a_course_data_folder_that_does_not_exist_is_named_as_set(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(isolated / "datta"))
    with pytest.raises(finder.DataNotFoundError) as err:
        finder.find_fashion_mnist_csv(smoke=False)
    message = str(err.value)
    assert f"COURSE_DATA is set to {isolated / 'datta'}, but that folder does not exist" in message
    assert "is not set" not in message


def test_smoke_mode_says_when_it_falls_back_because_course_data_is_missing(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(isolated / "datta"))
    found = finder.find_fer2013(smoke=True)
    assert found.is_sample and "COURSE_DATA is set to" in found.source and "does not exist" in found.source


def test_a_folder_with_half_the_csvs_names_the_missing_file(isolated, monkeypatch):
    data = isolated / "data" / "fashion-mnist"
    data.mkdir(parents=True)
    shutil.copy(SAMPLES / "fashion-mnist" / "fashion-mnist_train.csv.gz", data)
    monkeypatch.setenv("COURSE_DATA", str(isolated / "data"))
    with pytest.raises(finder.DataNotFoundError, match=r"fashion-mnist/ lacks fashion-mnist_test\.csv \(\.gz or not\)"):
        finder.find_fashion_mnist_csv(smoke=False)


def test_three_of_the_four_idx_files_names_the_fourth(isolated):
    data = isolated / "idx"
    data.mkdir()
    for name in finder.FASHION_IDX[:3]:
        shutil.copy(SAMPLES / "fashion-mnist" / f"{name}.gz", data)
    with pytest.raises(finder.DataNotFoundError, match=r"lacks t10k-labels-idx1-ubyte \(\.gz or not\)"):
        finder.find_fashion_mnist(data)


def test_fer_with_a_train_folder_but_no_test_folder_says_so(isolated):
    shutil.copytree(SAMPLES / "fer2013" / "train", isolated / "fer" / "train" / "train")
    with pytest.raises(finder.DataNotFoundError, match=r"it has train/train/ but no test/test/"):
        finder.find_fer2013(isolated / "fer")


def test_sample_and_full_idx_files_get_separate_cache_folders(isolated):
    full = isolated / "full"
    shutil.copytree(SAMPLES / "fashion-mnist", full)   # the same files in another folder: another source
    a = finder.find_fashion_mnist(SAMPLES)
    b = finder.find_fashion_mnist(full)
    assert a.train != b.train, "each source folder gets its own decompressed copy"


def test_the_unpacked_archive_appears_whole_or_not_at_all(isolated, monkeypatch):
    src = make_kaggle_fer(isolated / "kaggle")
    shutil.make_archive(str(isolated / "data" / "fer"), "gztar", src)
    real_extract = finder.tarfile.TarFile.extractall

    def killed(self, path, *args, **kwargs):
        real_extract(self, path, *args, **kwargs)
        raise KeyboardInterrupt("killed while unpacking")

    monkeypatch.setattr(finder.tarfile.TarFile, "extractall", killed)
    with pytest.raises(KeyboardInterrupt):
        finder.find_fer2013(isolated / "data")
    assert list((isolated / "cache").iterdir()) == [], "no half-unpacked folder is left"
    monkeypatch.setattr(finder.tarfile.TarFile, "extractall", real_extract)
    found = finder.find_fer2013(isolated / "data")
    assert found.train.relative_to(isolated / "cache").parts[0].startswith("fer2013-")


def test_a_replaced_archive_is_unpacked_afresh(isolated):
    src = make_kaggle_fer(isolated / "kaggle")
    archive = shutil.make_archive(str(isolated / "data" / "fer"), "gztar", src)
    first = finder.find_fer2013(isolated / "data").train
    shutil.rmtree(src / "train" / "train" / "happy" )
    (src / "train" / "train" / "happy").mkdir()
    shutil.copy(next((SAMPLES / "fer2013" / "train" / "sad").glob("*.jpg")), src / "train" / "train" / "happy")
    shutil.make_archive(archive.removesuffix(".tar.gz"), "gztar", src)     # the same name, other contents
    second = finder.find_fer2013(isolated / "data").train
    assert second != first and len(list((second / "happy").iterdir())) == 1


def test_a_course_data_that_is_a_file_is_named_as_a_file(isolated, monkeypatch):
    (isolated / "data.zip").write_bytes(b"PK")
    monkeypatch.setenv("COURSE_DATA", str(isolated / "data.zip"))
    with pytest.raises(finder.DataNotFoundError, match="which is a file, not a folder"):
        finder.find_fer2013(smoke=False)
