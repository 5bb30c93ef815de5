"""helpers.transforms: item pipelines, whole-batch augmentation and normalisation, on the shipped real samples."""
import pytest
import torch

from conftest import FASHION_SAMPLE, FER_SAMPLE
from helpers import data, fashion_csv, transforms

SAMPLE_TEST = FASHION_SAMPLE / "fashion-mnist_test.csv.gz"


def test_train_transforms_are_random_and_eval_transforms_are_not():
    image = data.load_image(next((FER_SAMPLE / "train" / "fear").glob("*.jpg")))
    train, evaluate = transforms.train_transforms(48, data.FER_MEAN, data.FER_STD), transforms.eval_transforms(48, data.FER_MEAN, data.FER_STD)
    torch.manual_seed(0)
    assert not torch.equal(train(image), train(image))
    assert torch.equal(evaluate(image), evaluate(image))


def test_eval_batch_transform_matches_the_pil_pipeline_closely():
    faces = data.preload_faces(FER_SAMPLE / "test", max_per_class=1)
    batch = transforms.FaceBatchTransform(64, data.FER_MEAN, data.FER_STD)(faces.images)
    pil = transforms.eval_transforms(64, data.FER_MEAN, data.FER_STD)
    one = pil(data.load_image(sorted((FER_SAMPLE / "test" / "angry").iterdir())[0]))
    assert batch.shape == (7, 1, 64, 64) and batch.dtype == torch.float32
    assert (batch[0] - one).abs().mean() < 0.05, "same resize and normalisation as eval_transforms"


def test_train_batch_transform_is_random_but_repeatable_under_a_seed():
    images = data.preload_faces(FER_SAMPLE / "train", max_per_class=2).images
    augment = transforms.FaceBatchTransform(64, data.FER_MEAN, data.FER_STD, train=True)
    torch.manual_seed(0)
    first, second = augment(images), augment(images)
    torch.manual_seed(0)
    assert not torch.equal(first, second) and torch.equal(first, augment(images))
    assert first.shape == (14, 1, 64, 64)


def test_random_crop_flip_shifts_each_image_within_the_padding():
    images, _ = fashion_csv.read_fashion_csv(SAMPLE_TEST, max_rows=64)
    out = transforms.random_crop_flip(images, padding=2, flip=False, generator=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    assert out.shape == images.shape and out.dtype == torch.uint8
    for b in range(len(images)):
        assert any(torch.equal(out[b], padded[b, :, r:r + 28, c:c + 28]) for r in range(5) for c in range(5))
    assert not torch.equal(out, images), "with padding 2 most images move"


def test_random_crop_flip_mirrors_about_half_and_is_seeded():
    images, _ = fashion_csv.read_fashion_csv(SAMPLE_TEST, max_rows=200)
    out = transforms.random_crop_flip(images, padding=0, generator=torch.Generator().manual_seed(2))
    flipped = sum(torch.equal(o, i.flip(2)) and not torch.equal(o, i) for o, i in zip(out, images))
    assert 60 < flipped < 140, f"{flipped} of 200 images mirrored; expected about half"
    again = transforms.random_crop_flip(images, padding=0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out, again)


def test_to_float_normalises():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    out = transforms.to_float(images, (0.5,), (0.5,))
    assert out.dtype == torch.float32 and out.flatten().tolist() == [-1.0, 1.0]


def test_face_transforms_give_three_identical_channels():
    face = data.load_image(next((FER_SAMPLE / "train" / "happy").glob("*.jpg")))
    eval_tf = transforms.face_transforms(64, data.IMAGENET_MEAN, data.IMAGENET_STD, train=False)
    image = eval_tf(face)
    assert image.shape == (3, 64, 64)
    unnormalised = image * torch.tensor(data.IMAGENET_STD).view(3, 1, 1) + torch.tensor(data.IMAGENET_MEAN).view(3, 1, 1)
    assert torch.allclose(unnormalised[0], unnormalised[1], atol=1e-5)
    with pytest.raises(ValueError, match="3 channels"):
        transforms.face_transforms(64, data.FER_MEAN, data.FER_STD, train=True)



def test_the_batch_transform_changes_contrast_but_keeps_each_face_mean():
    faces = data.preload_faces(FER_SAMPLE / "train", max_per_class=4).images
    augment = transforms.FaceBatchTransform(48, (0.0,), (1.0,), train=True, max_rotation=0, min_scale=1.0, jitter=0.3)
    torch.manual_seed(0)
    out = augment(faces)                         # no zoom, shift or rotation: only flips, which keep mean and std
    plain = faces.float() / 255
    spread = out.std(dim=(1, 2, 3)) / plain.std(dim=(1, 2, 3))
    assert (spread < 0.95).any() and (spread > 1.05).any(), f"contrast should go both ways: {spread}"
    assert torch.allclose(out.mean(dim=(1, 2, 3)), plain.mean(dim=(1, 2, 3)), atol=0.02), "the mean stays"


def test_erase_sets_one_rectangle_per_chosen_face_to_the_mean():
    faces = torch.full((64, 1, 48, 48), 200, dtype=torch.uint8)
    augment = transforms.FaceBatchTransform(48, (0.5,), (0.25,), train=True, max_rotation=0, min_scale=1.0,
                                            jitter=0.0, erase=1.0)
    torch.manual_seed(0)
    out = augment(faces)
    erased = (out == 0).flatten(1)               # the mean 0.5 normalises to exactly 0
    share = erased.float().mean(1)
    assert erased.any(1).all(), "erase=1 must erase a patch in every face"
    assert ((share >= 0.01) & (share <= 0.21)).all(), f"patches must cover 2-20% of a face: {share}"
    rows, cols = erased.view(-1, 48, 48).any(2), erased.view(-1, 48, 48).any(1)
    assert torch.equal(erased.view(-1, 48, 48).sum((1, 2)), rows.sum(1) * cols.sum(1)), "each patch is one rectangle"
    half = transforms.FaceBatchTransform(48, (0.5,), (0.25,), train=True, erase=0.5)
    torch.manual_seed(0)
    chosen = (half(faces) == 0).flatten(1).any(1).float().mean()
    assert 0.25 < chosen < 0.75, f"erase=0.5 should erase about half the faces, got {chosen:.2f}"


def test_erase_out_of_range_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        transforms.FaceBatchTransform(48, (0.5,), (0.25,), train=True, erase=1.5)
