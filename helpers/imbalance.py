"""Class imbalance: class counts, sampler and loss weights computed from the labels alone, and logit
adjustment (lesson 06, which writes each of them in its own cells first; ``tests/test_taught_code.py``
checks that the lesson's code and this module's agree). The metrics that show what accuracy hides are
in ``helpers.metrics``; the seeded stratified split is ``data.split_indices``.

Everything here works on ``dataset.targets`` (a list of class indices that ImageFolder builds from the
folder names), so nothing decodes an image to learn its label.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import WeightedRandomSampler


def class_counts(targets: Sequence[int], num_classes: int) -> torch.Tensor:
    """Return the number of examples of each class (length `num_classes`, zeros included)."""
    targets = torch.as_tensor(targets, dtype=torch.long)
    if len(targets) and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(f"targets hold labels outside 0..{num_classes - 1} "
                         f"(min {targets.min().item()}, max {targets.max().item()}); check num_classes.")
    return torch.bincount(targets, minlength=num_classes)


def sample_weights(targets: Sequence[int], num_classes: int) -> torch.Tensor:
    """Return one weight per example, 1 / (count of its class): every class is then drawn equally often."""
    counts = class_counts(targets, num_classes)
    targets = torch.as_tensor(targets, dtype=torch.long)
    return 1.0 / counts.double()[targets]


def make_weighted_sampler(targets: Sequence[int], num_classes: int, generator: torch.Generator,
                          num_samples: int | None = None) -> WeightedRandomSampler:
    """Return a WeightedRandomSampler that draws `num_samples` (default: len(targets)) indices, classes balanced.

    It draws with replacement: rare images repeat within an epoch, common ones are partly left out.
    """
    return WeightedRandomSampler(sample_weights(targets, num_classes), num_samples or len(targets),
                                 replacement=True, generator=generator)


def loss_class_weights(targets: Sequence[int], num_classes: int) -> torch.Tensor:
    """Return per-class loss weights N / (K * count): 1 for a class of average size, more for rare ones."""
    counts = class_counts(targets, num_classes)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"classes {missing} have no examples; a class weight for them is undefined.")
    return (len(targets) / (num_classes * counts.float())).float()


def class_prior(targets: Sequence[int], num_classes: int) -> torch.Tensor:
    """Return each class's share of `targets` (sums to 1): the prior a model trained on them learns."""
    counts = class_counts(targets, num_classes).double()
    return (counts / counts.sum()).float()


def logit_adjust(logits: torch.Tensor, prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Return `logits` - `tau` * log(`prior`): a model's scores re-balanced after training (Menon et al., 2021).

    A model trained on imbalanced data learns p(class | image), which carries the training prior;
    subtracting log(prior) removes it, so that every class is treated as equally likely. `tau`
    sets how much: 0 changes nothing, 1 removes the prior fully. It costs no training.
    """
    return logits - tau * prior.log().to(logits)
