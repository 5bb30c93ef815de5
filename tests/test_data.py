"""Datasets and transforms shared by the lessons, on the shipped real samples."""
import shutil

import pytest
import torch

from helpers import data, finder

FER_SAMPLE = finder.SAMPLES_DIR / "fer2013"


@pytest.fixture
def fer_copy(tmp_path):
    shutil.copytree(FER_SAMPLE, tmp_path / "fer")
    return tmp_path / "fer"


def test_face_folder_reads_all_seven_classes():
    dataset = data.FaceFolder(FER_SAMPLE / "train", transform=data.eval_transforms(48, data.FER_MEAN, data.FER_STD))
    assert tuple(dataset.classes) == data.FER_CLASSES
    image, label = dataset[0]
    assert image.shape == (1, 48, 48) and image.dtype == torch.float32
    assert 0 <= label < 7


def test_corrupt_image_is_reported_by_file_name(fer_copy):
    bad = fer_copy / "train" / "happy" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    dataset = data.FaceFolder(fer_copy / "train")
    index = [p for p, _ in dataset.samples].index(str(bad))
    with pytest.raises(data.BadImageError, match="broken.jpg"):
        dataset[index]


def test_truncated_image_is_reported_by_file_name(fer_copy):
    victim = next((fer_copy / "train" / "sad").glob("*.jpg"))
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(data.BadImageError, match=victim.name):
        data.load_image(victim)


def test_missing_class_folder_is_named(fer_copy):
    shutil.rmtree(fer_copy / "test" / "disgust")
    with pytest.raises(ValueError, match=r"missing \['disgust'\]"):
        data.FaceFolder(fer_copy / "test")


def test_train_transforms_are_random_and_eval_transforms_are_not():
    image = data.load_image(next((FER_SAMPLE / "train" / "fear").glob("*.jpg")))
    train, evaluate = data.train_transforms(48, data.FER_MEAN, data.FER_STD), data.eval_transforms(48, data.FER_MEAN, data.FER_STD)
    torch.manual_seed(0)
    assert not torch.equal(train(image), train(image))
    assert torch.equal(evaluate(image), evaluate(image))


def test_mean_std_matches_torch_on_a_batch():
    images = torch.rand(10, 1, 8, 8)
    loader = [(images[:6], None), (images[6:], None)]
    mean, std = data.mean_std(loader)
    assert mean[0] == pytest.approx(images.mean().item(), abs=1e-4)
    assert std[0] == pytest.approx(images.std(unbiased=False).item(), abs=1e-4)
