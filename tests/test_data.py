"""helpers.data: datasets on disk and in memory, the seeded split, and the loaders, on the shipped real samples."""
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import FASHION_SAMPLE, FER_SAMPLE
from helpers import data, fashion_csv, transforms

FER_TRAIN = FER_SAMPLE / "train"
SAMPLE_TEST = FASHION_SAMPLE / "fashion-mnist_test.csv.gz"
FRACTIONS = (0.70, 0.15, 0.15)                                   # train, validation, test, as lesson 06 splits
TARGETS = [0] * 300 + [1] * 20 + [2] * 500 + [3] * 180          # imbalanced like FER: class 1 is rare


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def class_counts(targets, num_classes):
    return torch.bincount(torch.as_tensor(targets), minlength=num_classes)


def test_face_folder_reads_all_seven_classes():
    dataset = data.FaceFolder(FER_SAMPLE / "train", transform=transforms.eval_transforms(48, data.FER_MEAN, data.FER_STD))
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


def test_mean_std_matches_torch_on_a_batch():
    images = torch.rand(10, 1, 8, 8)
    loader = [(images[:6], None), (images[6:], None)]
    mean, std = data.mean_std(loader)
    assert mean[0] == pytest.approx(images.mean().item(), abs=1e-4)
    assert std[0] == pytest.approx(images.std(unbiased=False).item(), abs=1e-4)


def test_preload_faces_matches_face_folder():
    faces = data.preload_faces(FER_SAMPLE / "train")
    folder = data.FaceFolder(FER_SAMPLE / "train")
    assert faces.images.shape == (len(folder), 1, 48, 48) and faces.images.dtype == torch.uint8
    assert faces.targets == folder.targets and faces.classes == list(data.FER_CLASSES)
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


def test_device_loader_moves_transforms_and_exposes_the_generator():
    faces = data.preload_faces(FER_SAMPLE / "test", max_per_class=2)
    generator = torch.Generator().manual_seed(0)
    loader = data.DeviceLoader(data.make_loader(faces, 4, shuffle=True, generator=generator), torch.device("cpu"),
                               transforms.FaceBatchTransform(32, data.FER_MEAN, data.FER_STD))
    images, labels = next(iter(loader))
    assert images.shape == (4, 1, 32, 32) and images.dtype == torch.float32 and labels.shape == (4,)
    assert len(loader) == 4 and loader.generator is generator and loader.dataset is faces


def test_dataset_items_and_targets():
    dataset = fashion_csv.load_fashion_csv(SAMPLE_TEST)
    image, label = dataset[7]
    assert len(dataset) == 500 and dataset.classes == list(data.FASHION_CLASSES)
    assert image.shape == (1, 28, 28) and image.dtype == torch.uint8
    assert isinstance(label, int) and label == int(dataset.targets[7])


def test_dataset_applies_its_transform_and_reads_max_rows():
    dataset = fashion_csv.load_fashion_csv(SAMPLE_TEST, max_rows=30, transform=lambda x: x.float() / 255)
    image, _ = dataset[0]
    assert len(dataset) == 30 and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1


def test_batch_loader_yields_whole_batches_like_the_item_loader():
    dataset = fashion_csv.load_fashion_csv(SAMPLE_TEST)
    loader = data.batch_loader(dataset, 128, shuffle=True, generator=torch.Generator().manual_seed(0),
                                      drop_last=False)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [128, 128, 128, 116]
    images, labels = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    assert images.dtype == torch.uint8 and sorted(labels.tolist()) == sorted(dataset.labels.tolist())
    assert not torch.equal(labels, dataset.labels), "shuffle=True must change the order"


def test_split_is_disjoint_complete_and_70_15_15():
    train, val, test = data.split_indices(TARGETS, gen(), FRACTIONS)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert sorted(train + val + test) == list(range(len(TARGETS)))
    assert (len(train), len(val), len(test)) == (700, 150, 150)


def test_split_is_reproducible_with_the_same_seed_only():
    assert data.split_indices(TARGETS, gen(1), FRACTIONS) == data.split_indices(TARGETS, gen(1), FRACTIONS)
    assert data.split_indices(TARGETS, gen(1), FRACTIONS) != data.split_indices(TARGETS, gen(2), FRACTIONS)


def test_stratified_split_keeps_the_rare_class_in_every_part():
    for part, fraction in zip(data.split_indices(TARGETS, gen(), FRACTIONS), FRACTIONS):
        counts = class_counts([TARGETS[i] for i in part], 4)
        expected = fraction * class_counts(TARGETS, 4).float()
        assert torch.all((counts - expected).abs() <= 1), (counts, expected)


def test_split_rejects_fractions_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        data.split_indices(TARGETS, gen(), (0.7, 0.2, 0.2))


def test_subsample_keeps_class_proportions_and_is_seeded():
    indices = list(range(0, len(TARGETS), 2))
    small = data.subsample(indices, TARGETS, 100, gen(3))
    assert len(small) == 100 and set(small) <= set(indices)
    assert small == data.subsample(indices, TARGETS, 100, gen(3))
    counts = class_counts([TARGETS[i] for i in small], 4).tolist()
    assert counts == [30, 2, 50, 18]
    assert data.subsample(indices, TARGETS, None, gen()) == indices


def test_val_and_test_parts_get_the_eval_transform_not_the_augmentation():
    faces = data.FaceFolder(FER_TRAIN)
    train_idx, val_idx, test_idx = data.split_indices(faces.targets, gen(), FRACTIONS)
    train_tf = transforms.train_transforms(48, data.FER_MEAN, data.FER_STD)
    eval_tf = transforms.eval_transforms(48, data.FER_MEAN, data.FER_STD)
    train_set = data.TransformSubset(faces, train_idx, train_tf)
    val_set = data.TransformSubset(faces, val_idx, eval_tf)
    test_set = data.TransformSubset(faces, test_idx, eval_tf)
    assert val_set.transform is eval_tf and test_set.transform is eval_tf and train_set.transform is train_tf
    torch.manual_seed(0)
    assert torch.equal(val_set[0][0], val_set[0][0]) and torch.equal(test_set[3][0], test_set[3][0])
    assert not torch.equal(train_set[0][0], train_set[0][0]), "training items should be augmented"
    image, label = test_set[3]
    assert torch.equal(image, eval_tf(data.load_image(faces.samples[test_idx[3]][0])))
    assert label == faces.targets[test_idx[3]] and test_set.targets == [faces.targets[i] for i in test_idx]


def test_subset_refuses_a_parent_that_already_has_a_transform():
    faces = data.FaceFolder(FER_TRAIN, transform=transforms.train_transforms(48, data.FER_MEAN, data.FER_STD))
    with pytest.raises(ValueError, match="transform=None"):
        data.TransformSubset(faces, [0, 1], None)


def test_tensor_images_have_the_same_targets_and_classes_types_for_both_datasets():
    clothes = fashion_csv.load_fashion_csv(SAMPLE_TEST, max_rows=20)
    faces = data.preload_faces(FER_SAMPLE / "test", max_per_class=2)
    for dataset in (clothes, faces, data.FaceFolder(FER_SAMPLE / "test")):
        assert isinstance(dataset.classes, list) and all(isinstance(c, str) for c in dataset.classes)
        assert isinstance(dataset.targets, list) and all(isinstance(t, int) for t in dataset.targets)


def test_tensor_images_refuse_mismatched_input():
    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        data.TensorImages(images, torch.tensor([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="expected uint8 images"):
        data.TensorImages(images.float(), torch.tensor([0, 1, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="labels run from 0 to 2, but there are 2 classes"):
        data.TensorImages(images, torch.tensor([0, 1, 2]), ["a", "b"])


def test_the_csv_dataset_keeps_each_image_with_its_label_through_shuffling():
    dataset = fashion_csv.load_fashion_csv(SAMPLE_TEST)
    key = {bytes(image.numpy()): label for image, label in zip(dataset.images, dataset.targets)}
    assert len(key) == len(dataset), "the sample has no duplicate images"
    for loader in (DataLoader(dataset, 64, shuffle=True, generator=gen(3)),
                   data.batch_loader(dataset, 64, shuffle=True, generator=gen(3))):
        seen = 0
        for images, labels in loader:
            assert [key[bytes(image.numpy())] for image in images] == labels.tolist()
            seen += len(labels)
        assert seen == len(dataset)


def test_subsample_never_returns_more_than_asked():
    targets = [0, 1, 2]                              # three classes of one: each rounds 2/3 up to 1, 3 in all
    for seed in range(5):
        kept = data.subsample([0, 1, 2], targets, 2, gen(seed))
        assert len(kept) == 2 and set(kept) <= {0, 1, 2}


def test_split_indices_without_stratify_is_still_seeded_and_complete():
    first = data.split_indices(TARGETS, gen(4), (0.9, 0.1), stratify=False)
    assert first == data.split_indices(TARGETS, gen(4), (0.9, 0.1), stratify=False)
    assert sorted(first[0] + first[1]) == list(range(len(TARGETS))) and len(first[1]) == 100


def test_the_batch_loader_carries_its_generator_for_exact_resume():
    generator = gen(0)
    loader = data.batch_loader(fashion_csv.load_fashion_csv(SAMPLE_TEST, max_rows=40), 8, shuffle=True,
                               generator=generator)
    assert loader.generator is generator
    state = generator.get_state()
    first = [labels.tolist() for _, labels in loader]
    generator.set_state(state)
    assert [labels.tolist() for _, labels in loader] == first, "restoring the generator replays the order"


def test_load_image_names_a_folder_and_composites_transparency(tmp_path):
    from PIL import Image
    with pytest.raises(IsADirectoryError, match="is a folder, not an image file"):
        data.load_image(tmp_path)
    rgba = Image.new("RGBA", (4, 4), (255, 255, 255, 0))              # white but fully transparent
    rgba.putpixel((0, 0), (200, 200, 200, 255))
    rgba.save(tmp_path / "icon.png")
    on_black = np.asarray(data.load_image(tmp_path / "icon.png"))
    on_grey = np.asarray(data.load_image(tmp_path / "icon.png", background=128))
    assert on_black[0, 0] == on_grey[0, 0] == 200
    assert on_black[1, 1] == 0 and on_grey[1, 1] == 128


@pytest.mark.parametrize("device, non_blocking", [("cpu", False), ("mps", False), ("cuda", True), ("cuda:0", True)])
def test_device_loader_copies_without_waiting_only_to_cuda(monkeypatch, device, non_blocking):
    copies = []

    def to(tensor, target, non_blocking=False):          # record the copy instead of making it (no GPU here)
        copies.append((torch.device(target), non_blocking))
        return tensor

    images, labels = torch.zeros(6, 1, 4, 4, dtype=torch.uint8), torch.arange(6)
    loader = data.DeviceLoader(DataLoader(list(zip(images, labels)), batch_size=3), device)
    monkeypatch.setattr(torch.Tensor, "to", to)
    assert len(list(loader)) == 2
    assert [blocking for _, blocking in copies[::2]] == [non_blocking] * 2, copies   # the images of each batch
