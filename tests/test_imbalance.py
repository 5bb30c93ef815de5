"""helpers.imbalance: class counts, sampler and loss weights from the labels alone, the balancing loader."""
import pytest
import torch

from helpers import imbalance

# an imbalanced label list like FER's: class 1 is rare
TARGETS = [0] * 300 + [1] * 20 + [2] * 500 + [3] * 180


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


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


def test_loss_class_weights_are_one_for_an_average_class_and_name_empty_classes():
    weights = imbalance.loss_class_weights([0, 0, 1, 1, 1, 1, 2, 2], 3)
    assert torch.allclose(weights, torch.tensor([8 / 6, 8 / 12, 8 / 6]))
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        imbalance.loss_class_weights([0, 1, 1], 3)


def test_class_prior_is_each_class_share():
    prior = imbalance.class_prior(TARGETS, 4)
    assert prior.tolist() == pytest.approx([0.3, 0.02, 0.5, 0.18]) and prior.sum() == pytest.approx(1)


def test_logit_adjustment_removes_the_training_prior():
    prior = imbalance.class_prior(TARGETS, 4)
    logits = torch.randn(5, 4)
    assert torch.equal(imbalance.logit_adjust(logits, prior, tau=0), logits), "tau=0 changes nothing"
    # a model that learned nothing but the prior outputs log(prior); adjusted, it no longer prefers any class
    flat = imbalance.logit_adjust(prior.log().expand(3, 4), prior)
    assert torch.allclose(flat.softmax(1), torch.full((3, 4), 0.25))
    # equal scores are decided for the rare class, by 1 / prior
    assert imbalance.logit_adjust(torch.zeros(1, 4), prior).argmax().item() == 1
    half = imbalance.logit_adjust(logits, prior, tau=0.5)
    assert torch.allclose(half - logits, -0.5 * prior.log().expand(5, 4))


def test_logit_adjustment_folded_into_the_bias_gives_the_same_logits():
    torch.manual_seed(0)
    prior = imbalance.class_prior(TARGETS, 4)
    linear, x = torch.nn.Linear(8, 4), torch.randn(6, 8)
    expected = imbalance.logit_adjust(linear(x), prior)
    with torch.no_grad():
        linear.bias -= prior.log()
    assert torch.allclose(linear(x), expected, atol=1e-6)
