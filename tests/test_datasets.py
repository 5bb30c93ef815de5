"""helpers.datasets: the registry's entries are complete and agree with the data; a folder of one's own images
is read with its size, mode and statistics inferred, split when it is one folder, and refused with a message
that names what is wrong and how to fix it."""
import os

import pytest
import torch
from PIL import Image

from conftest import FASHION_SAMPLE, FER_SAMPLE
from helpers import data, datasets, finder


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_each_entry_is_complete_and_agrees_with_its_data(name):
    spec = datasets.DATASETS[name]
    assert spec.name == name and spec.title and spec.augment in datasets.AUGMENTATIONS
    assert spec.lookup is not None and spec.find is not None and spec.read is not None
    assert len(spec.mean) == len(spec.std) == spec.channels
    sample = FER_SAMPLE if name == "fer2013" else FASHION_SAMPLE
    assert spec.holds(sample) and datasets.identify(sample) == ("fer2013" if name == "fer2013" else "fashion-csv")
    found = datasets.load_dataset(name, sample, smoke=True)
    for part in (found.train, found.test):
        assert part.classes == list(spec.classes) and part.images.dtype == torch.uint8
        assert part.images.shape[1:] == (spec.channels, spec.size, spec.size)
        assert set(part.targets) == set(range(len(spec.classes))), "the samples cover every class"
    mean, _ = datasets.channel_stats(found.train.images)
    assert mean == pytest.approx(spec.mean, abs=0.03), "the registry's mean should be close to the sample's"


def test_a_folder_that_lacks_the_named_dataset_is_refused(tmp_path):
    with pytest.raises(datasets.DatasetError, match=f"{tmp_path} holds no FER2013"):
        datasets.load_dataset("fer2013", tmp_path, smoke=True)
    with pytest.raises(datasets.DatasetError, match="needs its path"):
        datasets.load_dataset(datasets.FOLDER, None, smoke=True)


def faces(root, layout: dict[str, int], source: str = "train") -> None:
    """Copy `count` shipped faces of each class into root/<class>/."""
    for name, count in layout.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for path in sorted((FER_SAMPLE / source / name).glob("*.jpg"))[:count]:
            (root / name / path.name).write_bytes(path.read_bytes())


def test_a_folder_of_class_folders_is_split_stratified_and_the_same_every_time(tmp_path):
    faces(tmp_path, {"happy": 20, "sad": 10})
    assert datasets.identify(tmp_path) == datasets.FOLDER
    first, second = datasets.load_image_folder(tmp_path), datasets.load_image_folder(tmp_path)
    assert first.spec.classes == ("happy", "sad") and first.spec.image_mode == "L" and first.spec.size == 48
    assert sorted(first.test.targets) == [0] * 4 + [1] * 2 and len(first.train) == 24
    assert torch.equal(first.test.images, second.test.images)
    assert first.spec.mean == datasets.channel_stats(first.train.images)[0], "statistics of the training part"


def test_mixed_sizes_and_modes_are_converted(tmp_path):
    faces(tmp_path / "train", {"happy": 3, "sad": 3})
    faces(tmp_path / "test", {"happy": 1, "sad": 1}, source="test")
    colour = Image.new("RGB", (90, 60), (200, 30, 30))
    colour.save(tmp_path / "train" / "sad" / "red.png")
    Image.new("LA", (48, 48), (90, 128)).save(tmp_path / "test" / "sad" / "transparent.png")
    found = datasets.load_image_folder(tmp_path)
    assert found.spec.image_mode == "RGB" and found.spec.size == 48 and len(found.spec.mean) == 3
    assert found.train.images.shape == (7, 3, 48, 48) and found.test.images.shape == (3, 3, 48, 48)
    gray = datasets.load_image_folder(tmp_path, image_mode="L", size=32)
    assert gray.train.images.shape == (7, 1, 32, 32) and gray.spec.channels == 1


def test_inferred_size_is_the_most_common_longer_side_capped():
    assert datasets.inferred_size([(48, 48)] * 3 + [(60, 40)]) == 48
    assert datasets.inferred_size([(30, 40), (48, 48)]) == 48
    assert datasets.inferred_size([(640, 480)]) == datasets.MAX_INFERRED_SIZE


def broken(kind: str, root):
    """Lay out a folder with one fault of `kind`; return the words its error must contain."""
    if kind == "too few to split":
        faces(root, {"happy": 4, "sad": 6})
        return ["class 'happy' has 4 image(s)", f"at least {datasets.MIN_IMAGES_TO_SPLIT} per class"]
    faces(root / "train", {"happy": 3, "sad": 3})
    faces(root / "test", {"happy": 1, "sad": 1}, source="test")
    if kind == "one class":
        for split in ("train", "test"):
            for path in (root / split / "sad").iterdir():
                path.unlink()
            (root / split / "sad").rmdir()
        return ["one class folder (happy)", "at least two classes"]
    if kind == "empty class":
        (root / "train" / "fear").mkdir()
        return [f"{root / 'train' / 'fear'} holds no image files", "delete the folder"]
    if kind == "only in test":
        faces(root / "test", {"angry": 1}, source="test")
        return ["class 'angry' is in", "but not in", "add training images"]
    if kind == "only in train":
        faces(root / "train", {"angry": 1})
        return ["class 'angry' is in", "could not be scored"]
    if kind == "not an image":
        (root / "train" / "sad" / "notes.txt").write_text("my labels")
        return [f"{root / 'train' / 'sad' / 'notes.txt'} (not an image", "Delete or replace"]
    if kind == "truncated":
        good = next((root / "train" / "happy").glob("*.jpg"))
        (root / "train" / "happy" / "cut.jpg").write_bytes(good.read_bytes()[:300])
        return [f"{root / 'train' / 'happy' / 'cut.jpg'} (cannot be"]
    if kind == "unreadable":
        (root / "train" / "happy" / "gone.jpg").symlink_to(root / "nowhere.jpg")
        return [f"{root / 'train' / 'happy' / 'gone.jpg'} (cannot be read", "fix their permissions"]
    if kind == "loose file":
        (root / "train" / "stray.jpg").write_bytes(b"")
        return ["stray.jpg lies outside the class folders"]
    raise ValueError(kind)


KINDS = ["one class", "empty class", "only in test", "only in train", "not an image", "truncated", "unreadable",
         "loose file", "too few to split"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_bad_folder_gets_its_message(kind, tmp_path):
    root = tmp_path / "mine"
    words = broken(kind, root)
    with pytest.raises(datasets.DatasetError) as err:
        datasets.load_image_folder(root)
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_named(tmp_path):
    faces(tmp_path / "train", {"happy": 2, "sad": 2})
    faces(tmp_path / "test", {"happy": 1, "sad": 1}, source="test")
    locked = next((tmp_path / "train" / "sad").glob("*.jpg"))
    locked.chmod(0)
    with pytest.raises(datasets.DatasetError, match=f"{locked} \\(cannot be read"):
        datasets.load_image_folder(tmp_path)


def test_layouts_the_finder_refuses(tmp_path):
    with pytest.raises(finder.DataNotFoundError, match="has train/ but no test/"):
        (tmp_path / "train" / "a").mkdir(parents=True)
        finder.find_image_folder(tmp_path)
    with pytest.raises(finder.DataNotFoundError, match="holds no class folders"):
        finder.find_image_folder(tmp_path / "train" / "a")


def test_a_folder_with_the_fer_layout_but_other_classes_is_ones_own(tmp_path):
    faces(tmp_path / "train", {"happy": 5, "sad": 5})
    faces(tmp_path / "test", {"happy": 1, "sad": 1}, source="test")
    assert finder.FER_LOOKUP.look(tmp_path) is not None and datasets.identify(tmp_path) == datasets.FOLDER
    assert data.FER_CLASSES != datasets.load_image_folder(tmp_path).spec.classes
