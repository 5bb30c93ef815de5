"""The split, the subsets' own transforms, sampler and loss weights, and the metrics of lesson 06."""
import pytest
import torch
from torch.utils.data import DataLoader

from helpers import data, finder, imbalance

FER_TRAIN = finder.SAMPLES_DIR / "fer2013" / "train"
# an imbalanced label list like FER's: class 1 is rare
TARGETS = [0] * 300 + [1] * 20 + [2] * 500 + [3] * 180


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_split_is_disjoint_complete_and_70_15_15():
    train, val, test = imbalance.split_indices(TARGETS, gen())
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert sorted(train + val + test) == list(range(len(TARGETS)))
    assert (len(train), len(val), len(test)) == (700, 150, 150)


def test_split_is_reproducible_with_the_same_seed_only():
    assert imbalance.split_indices(TARGETS, gen(1)) == imbalance.split_indices(TARGETS, gen(1))
    assert imbalance.split_indices(TARGETS, gen(1)) != imbalance.split_indices(TARGETS, gen(2))


def test_stratified_split_keeps_the_rare_class_in_every_part():
    for part, fraction in zip(imbalance.split_indices(TARGETS, gen()), imbalance.SPLIT_FRACTIONS):
        counts = imbalance.class_counts([TARGETS[i] for i in part], 4)
        expected = fraction * imbalance.class_counts(TARGETS, 4).float()
        assert torch.all((counts - expected).abs() <= 1), (counts, expected)


def test_split_rejects_fractions_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        imbalance.split_indices(TARGETS, gen(), (0.7, 0.2, 0.2))


def test_subsample_keeps_class_proportions_and_is_seeded():
    indices = list(range(0, len(TARGETS), 2))
    small = imbalance.subsample(indices, TARGETS, 100, gen(3))
    assert len(small) == 100 and set(small) <= set(indices)
    assert small == imbalance.subsample(indices, TARGETS, 100, gen(3))
    counts = imbalance.class_counts([TARGETS[i] for i in small], 4).tolist()
    assert counts == [30, 2, 50, 18]
    assert imbalance.subsample(indices, TARGETS, None, gen()) == indices


def test_val_and_test_parts_get_the_eval_transform_not_the_augmentation():
    faces = data.FaceFolder(FER_TRAIN)
    train_idx, val_idx, test_idx = imbalance.split_indices(faces.targets, gen())
    train_tf = data.train_transforms(48, data.FER_MEAN, data.FER_STD)
    eval_tf = data.eval_transforms(48, data.FER_MEAN, data.FER_STD)
    train_set = imbalance.TransformSubset(faces, train_idx, train_tf)
    val_set = imbalance.TransformSubset(faces, val_idx, eval_tf)
    test_set = imbalance.TransformSubset(faces, test_idx, eval_tf)
    assert val_set.transform is eval_tf and test_set.transform is eval_tf and train_set.transform is train_tf
    torch.manual_seed(0)
    assert torch.equal(val_set[0][0], val_set[0][0]) and torch.equal(test_set[3][0], test_set[3][0])
    assert not torch.equal(train_set[0][0], train_set[0][0]), "training items should be augmented"
    image, label = test_set[3]
    assert torch.equal(image, eval_tf(data.load_image(faces.samples[test_idx[3]][0])))
    assert label == faces.targets[test_idx[3]] and test_set.targets == [faces.targets[i] for i in test_idx]


def test_subset_refuses_a_parent_that_already_has_a_transform():
    faces = data.FaceFolder(FER_TRAIN, transform=data.train_transforms(48, data.FER_MEAN, data.FER_STD))
    with pytest.raises(ValueError, match="transform=None"):
        imbalance.TransformSubset(faces, [0, 1], None)


class LabelsOnly(torch.utils.data.Dataset):
    """A dataset whose items are only labels: decoding an image here would be a bug."""

    def __init__(self, targets):
        self.targets = targets

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        raise AssertionError("sampler weights must come from .targets, not from loading items")


def test_sample_weights_come_from_targets_and_give_each_class_equal_mass():
    weights = imbalance.sample_weights(LabelsOnly(TARGETS).targets, 4)
    assert weights.shape == (len(TARGETS),)
    mass = torch.zeros(4, dtype=torch.float64).index_add_(0, torch.tensor(TARGETS), weights)
    assert torch.allclose(mass / mass.sum(), torch.full((4,), 0.25, dtype=torch.float64))
    assert weights[TARGETS.index(1)] == pytest.approx(1 / 20)


def test_weighted_sampler_balances_batches_in_expectation():
    dataset = LabelsOnly(TARGETS)
    sampler = imbalance.make_weighted_sampler(dataset.targets, 4, gen(5), num_samples=20_000)
    counts = imbalance.class_counts([TARGETS[i] for i in sampler], 4).float()
    assert torch.allclose(counts / counts.sum(), torch.full((4,), 0.25), atol=0.02), counts
    plain = imbalance.class_counts(TARGETS, 4).float()
    assert plain[1] / plain.sum() == pytest.approx(0.02)


def test_train_loader_uses_the_sampler_without_shuffle_and_counts_batches_without_decoding():
    dataset = LabelsOnly(TARGETS)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(dataset, shuffle=True, sampler=imbalance.make_weighted_sampler(TARGETS, 4, gen()))
    balanced = imbalance.make_train_loader(dataset, 50, gen(1), use_sampler=True, num_classes=4)
    plain = imbalance.make_train_loader(dataset, 50, gen(1), use_sampler=False, num_classes=4)
    assert isinstance(balanced.sampler, torch.utils.data.WeightedRandomSampler)
    with_sampler = imbalance.sampled_class_counts(balanced, TARGETS, 4, num_batches=20)
    without = imbalance.sampled_class_counts(plain, TARGETS, 4, num_batches=20)
    assert with_sampler.sum() == without.sum() == 1000
    assert without[1] < 40 < with_sampler[1], (without, with_sampler)


def test_loss_class_weights_are_one_for_an_average_class_and_name_empty_classes():
    weights = imbalance.loss_class_weights([0, 0, 1, 1, 1, 1, 2, 2], 3)
    assert torch.allclose(weights, torch.tensor([8 / 6, 8 / 12, 8 / 6]))
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        imbalance.loss_class_weights([0, 1, 1], 3)
    logits, labels = torch.randn(8, 3), torch.tensor([0, 0, 1, 1, 1, 1, 2, 2])
    expected = torch.nn.CrossEntropyLoss(weight=weights)(logits, labels)
    assert torch.allclose(imbalance.weighted_cross_entropy(weights)(logits, labels), expected)


def test_metrics_show_what_accuracy_hides():
    labels = [0] * 90 + [1] * 10
    always_zero = [0] * 100
    metrics = imbalance.classification_metrics(labels, always_zero, ["common", "rare"])
    assert metrics["acc"] == pytest.approx(0.9)
    assert metrics["recall_rare"] == 0 and metrics["recall_common"] == 1
    assert metrics["macro_f1"] == pytest.approx((2 * 0.9 / 1.9) / 2)
    assert metrics["weighted_f1"] == pytest.approx(0.9 * 2 * 0.9 / 1.9)


def test_summarise_runs_gives_mean_and_spread_per_arm():
    runs = [{"arm": "a", "seed": 0, "acc": 0.5}, {"arm": "a", "seed": 1, "acc": 0.7},
            {"arm": "b", "seed": 0, "acc": 0.6}]
    summary = imbalance.summarise_runs(runs)
    assert summary.loc["a", ("acc", "mean")] == pytest.approx(0.6)
    assert summary.loc["a", ("acc", "max")] - summary.loc["a", ("acc", "min")] == pytest.approx(0.2)
    assert summary.loc["a", ("runs", "")] == 2 and list(summary.index) == ["a", "b"]


def test_compare_arms_flags_only_differences_beyond_the_seed_spread():
    runs = [{"arm": "plain", "seed": 0, "f1": 0.30}, {"arm": "plain", "seed": 1, "f1": 0.34},
            {"arm": "sampler", "seed": 0, "f1": 0.40}, {"arm": "sampler", "seed": 1, "f1": 0.42},
            {"arm": "loss", "seed": 0, "f1": 0.33}, {"arm": "loss", "seed": 1, "f1": 0.37}]
    table = imbalance.compare_arms(runs, "f1", baseline="plain")
    assert table.loc["sampler", "diff_vs_plain"] == pytest.approx(0.09)
    assert table["apart_from_seed_spread"].to_dict() == {"plain": False, "sampler": True, "loss": False}
    with pytest.raises(KeyError, match="'none'"):
        imbalance.compare_arms(runs, "f1", baseline="none")


def test_plot_grouped_bars_draws_one_bar_per_class_and_group():
    ax = imbalance.plot_grouped_bars({"a": [1, 2, 3], "b": [2, 2, 2]}, ["x", "y", "z"], "count", "t",
                                     ranges={"a": ([0, 1, 2], [2, 3, 4])})
    assert len(ax.patches) == 6 and ax.get_title() == "t"
