"""Faces preloaded as tensors with batch-level transforms (helpers.data, lesson 04), on the real samples."""
import shutil

import numpy as np
import pytest
import torch

from helpers import data, finder

FER_SAMPLE = finder.SAMPLES_DIR / "fer2013"


@pytest.fixture
def fer_copy(tmp_path):
    shutil.copytree(FER_SAMPLE, tmp_path / "fer")
    return tmp_path / "fer"


def test_preload_faces_matches_face_folder():
    faces = data.preload_faces(FER_SAMPLE / "train")
    folder = data.FaceFolder(FER_SAMPLE / "train")
    assert faces.images.shape == (len(folder), 1, 48, 48) and faces.images.dtype == torch.uint8
    assert faces.targets == folder.targets and faces.classes == data.FER_CLASSES
    image, label = folder[5]
    assert torch.equal(faces.images[5, 0], torch.from_numpy(np.array(image)))


def test_preload_faces_takes_the_first_n_of_each_class():
    faces = data.preload_faces(FER_SAMPLE / "test", max_per_class=3)
    assert torch.bincount(faces.labels).tolist() == [3] * 7
    assert faces.subset([0, 4]).labels.tolist() == [0, 1]


def test_a_corrupt_file_in_a_class_folder_is_named(fer_copy):
    (fer_copy / "train" / "fear" / "scan_0001.jpg").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(data.BadImageError, match=r"scan_0001\.jpg is not a readable image.*Delete or replace"):
        data.preload_faces(fer_copy / "train")


def test_a_class_folder_missing_from_one_split_is_named(fer_copy):
    shutil.rmtree(fer_copy / "test" / "surprise")
    with pytest.raises(ValueError, match=r"missing \['surprise'\]"):
        data.preload_faces(fer_copy / "test")


def test_images_of_another_size_are_named(fer_copy):
    from PIL import Image
    Image.new("L", (64, 64)).save(fer_copy / "train" / "sad" / "zz_big.png")
    with pytest.raises(ValueError, match=r"zz_big\.png is 64x64 pixels"):
        data.preload_faces(fer_copy / "train")


def test_split_indices_is_seeded_disjoint_and_complete():
    train, val = data.split_indices(100, 0.1, seed=3)
    again = data.split_indices(100, 0.1, seed=3)
    assert torch.equal(train, again[0]) and torch.equal(val, again[1])
    assert len(val) == 10 and sorted(torch.cat([train, val]).tolist()) == list(range(100))
    assert not torch.equal(val, data.split_indices(100, 0.1, seed=4)[1])
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        data.split_indices(100, 1.5, seed=0)


def test_eval_batch_transform_matches_the_pil_pipeline_closely():
    faces = data.preload_faces(FER_SAMPLE / "test", max_per_class=1)
    batch = data.FaceBatchTransform(64, data.FER_MEAN, data.FER_STD)(faces.images)
    pil = data.eval_transforms(64, data.FER_MEAN, data.FER_STD)
    one = pil(data.load_image(faces.paths[0]))
    assert batch.shape == (7, 1, 64, 64) and batch.dtype == torch.float32
    assert (batch[0] - one).abs().mean() < 0.05, "same resize and normalisation as eval_transforms"


def test_train_batch_transform_is_random_but_repeatable_under_a_seed():
    images = data.preload_faces(FER_SAMPLE / "train", max_per_class=2).images
    augment = data.FaceBatchTransform(64, data.FER_MEAN, data.FER_STD, train=True)
    torch.manual_seed(0)
    first, second = augment(images), augment(images)
    torch.manual_seed(0)
    assert not torch.equal(first, second) and torch.equal(first, augment(images))
    assert first.shape == (14, 1, 64, 64)


def test_device_loader_moves_transforms_and_exposes_the_generator():
    faces = data.preload_faces(FER_SAMPLE / "test", max_per_class=2)
    generator = torch.Generator().manual_seed(0)
    loader = data.DeviceLoader(data.make_loader(faces, 4, shuffle=True, generator=generator), torch.device("cpu"),
                               data.FaceBatchTransform(32, data.FER_MEAN, data.FER_STD))
    images, labels = next(iter(loader))
    assert images.shape == (4, 1, 32, 32) and images.dtype == torch.float32 and labels.shape == (4,)
    assert len(loader) == 4 and loader.generator is generator and loader.dataset is faces
