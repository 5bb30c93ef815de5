"""Class imbalance: a reproducible train/val/test split whose parts carry their own transforms,
sampler and loss weights computed from the labels alone, and the metrics that show what accuracy hides.

Everything here works on ``dataset.targets`` (a list of class indices that ImageFolder builds from the
folder names), so nothing decodes an image to learn its label.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from helpers import data

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)   # train, validation, test


def class_counts(targets: Sequence[int], num_classes: int) -> torch.Tensor:
    """Return the number of examples of each class (length `num_classes`, zeros included)."""
    targets = torch.as_tensor(targets, dtype=torch.long)
    if len(targets) and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(f"targets hold labels outside 0..{num_classes - 1} "
                         f"(min {targets.min().item()}, max {targets.max().item()}); check num_classes.")
    return torch.bincount(targets, minlength=num_classes)


def split_indices(targets: Sequence[int], generator: torch.Generator,
                  fractions: Sequence[float] = SPLIT_FRACTIONS, stratify: bool = True) -> list[list[int]]:
    """Return disjoint index lists (train, val, test, ...) covering every example, cut in `fractions`.

    The same generator seed gives the same split on every run. With `stratify`, each class is cut in
    the same fractions, so a rare class is present in every part in its true proportion.
    """
    if abs(sum(fractions) - 1) > 1e-6 or any(f <= 0 for f in fractions):
        raise ValueError(f"fractions={tuple(fractions)} must be positive and sum to 1, e.g. {SPLIT_FRACTIONS}.")
    targets = torch.as_tensor(targets, dtype=torch.long)
    groups = [torch.nonzero(targets == c).flatten() for c in targets.unique()] if stratify \
        else [torch.arange(len(targets))]
    parts: list[list[int]] = [[] for _ in fractions]
    for group in groups:
        group = group[torch.randperm(len(group), generator=generator)]
        bounds = np.round(np.cumsum([0, *fractions]) * len(group)).astype(int)
        for part, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
            part.extend(group[lo:hi].tolist())
    return [sorted(part) for part in parts]


def subsample(indices: Sequence[int], targets: Sequence[int], max_items: int | None,
              generator: torch.Generator) -> list[int]:
    """Return at most `max_items` of `indices`, drawn per class in proportion (None = all of them)."""
    if max_items is None or max_items >= len(indices):
        return list(indices)
    if max_items <= 0:
        raise ValueError(f"max_items={max_items}; give a positive number, or None for all.")
    keep = split_indices([targets[i] for i in indices], generator,
                         (max_items / len(indices), 1 - max_items / len(indices)))[0]
    return sorted(indices[k] for k in keep)


class TransformSubset(Dataset):
    """The items `indices` of `dataset`, passed through this subset's own `transform`.

    ``torch.utils.data.Subset`` has no transform of its own: its items come out of the parent
    dataset's transform, so a random split of an augmented dataset augments validation and test too.
    Build the parent without a transform and give each part the pipeline it needs.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int], transform: Callable | None = None):
        if getattr(dataset, "transform", None) is not None:
            raise ValueError(f"{type(dataset).__name__} already has a transform, which every subset would "
                             f"inherit; build it with transform=None and pass each subset its own.")
        if len(indices) and not 0 <= min(indices) <= max(indices) < len(dataset):
            raise IndexError(f"indices must lie in 0..{len(dataset) - 1}; got {min(indices)}..{max(indices)}.")
        self.dataset, self.indices, self.transform = dataset, list(indices), transform
        self.classes = getattr(dataset, "classes", None)

    @property
    def targets(self) -> list[int]:
        """Return the labels of this subset, read from the parent's targets (no image is decoded)."""
        return [self.dataset.targets[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.dataset[self.indices[i]]
        return (self.transform(image) if self.transform is not None else image), label


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


def weighted_cross_entropy(weight: torch.Tensor) -> Callable:
    """Return a loss_fn(logits, labels): cross-entropy with per-class `weight` (moved to the logits' device)."""
    def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, weight=weight.to(logits.device, logits.dtype))
    return loss_fn


def make_train_loader(train_set: Dataset, batch_size: int, generator: torch.Generator, use_sampler: bool,
                      num_classes: int, num_workers: int = 0) -> DataLoader:
    """Return the training loader: shuffled, or drawn by a class-balancing WeightedRandomSampler.

    A sampler decides the order itself, so ``shuffle`` must stay off (DataLoader refuses both).
    """
    if not use_sampler:
        return data.make_loader(train_set, batch_size, shuffle=True, generator=generator, num_workers=num_workers)
    sampler = make_weighted_sampler(train_set.targets, num_classes, generator)
    return data.make_loader(train_set, batch_size, sampler=sampler, num_workers=num_workers)


def sampled_class_counts(loader: DataLoader, targets: Sequence[int], num_classes: int,
                         num_batches: int) -> torch.Tensor:
    """Return the class counts over the first `num_batches` batches `loader` would yield.

    Reads only the indices its sampler draws (``loader.batch_sampler``), so no image is decoded.
    """
    targets = torch.as_tensor(targets, dtype=torch.long)
    counts = torch.zeros(num_classes, dtype=torch.long)
    for step, batch in enumerate(loader.batch_sampler):
        if step == num_batches:
            break
        counts += torch.bincount(targets[list(batch)], minlength=num_classes)
    return counts


def classification_metrics(labels: Sequence[int], preds: Sequence[int], class_names: Sequence[str]) -> dict:
    """Return accuracy, macro-F1, weighted F1 and each class's recall (as ``recall_<class>``)."""
    from sklearn.metrics import f1_score, recall_score
    labels, preds = np.asarray(labels), np.asarray(preds)
    classes = list(range(len(class_names)))
    recalls = recall_score(labels, preds, labels=classes, average=None, zero_division=0)
    return {
        "acc": float((labels == preds).mean()),
        "macro_f1": float(f1_score(labels, preds, labels=classes, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, preds, labels=classes, average="weighted", zero_division=0)),
        **{f"recall_{name}": float(r) for name, r in zip(class_names, recalls)},
    }


def summarise_runs(runs: Sequence[dict], group: str = "arm"):
    """Return a DataFrame with the mean, the std and the min-max range of each metric per `group` value.

    `runs` are dicts of metrics plus the `group` key (and a `seed`, which is not averaged).
    """
    import pandas as pd
    frame = pd.DataFrame(list(runs)).drop(columns=["seed"], errors="ignore")
    grouped = frame.groupby(group, sort=False)
    summary = grouped.agg(["mean", "std", "min", "max"])
    summary.insert(0, ("runs", ""), grouped.size())
    return summary


def compare_arms(runs: Sequence[dict], metric: str, baseline: str, group: str = "arm"):
    """Return, per arm, the mean of `metric`, its seed range, the difference to `baseline`'s mean, and
    whether the two arms' seed ranges are apart (a difference larger than the seed-to-seed spread)."""
    import pandas as pd
    frame = pd.DataFrame(list(runs))
    if baseline not in set(frame[group]):
        raise KeyError(f"baseline arm {baseline!r} is not among the runs' arms {sorted(set(frame[group]))}.")
    stats = frame.groupby(group, sort=False)[metric].agg(["mean", "min", "max"])
    base = stats.loc[baseline]
    stats[f"diff_vs_{baseline.replace(' ', '_')}"] = stats["mean"] - base["mean"]
    stats["apart_from_seed_spread"] = (stats["min"] > base["max"]) | (stats["max"] < base["min"])
    return stats


def plot_grouped_bars(groups: dict[str, Sequence[float]], class_names: Sequence[str], ylabel: str, title: str,
                      ranges: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None, ax=None):
    """Return axes with one bar per class for each named group side by side; `ranges` adds (min, max) whiskers."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(groups)
    x = np.arange(len(class_names))
    for k, (name, values) in enumerate(groups.items()):
        values = np.asarray(values, dtype=float)
        offset = x + (k - (len(groups) - 1) / 2) * width
        yerr = None
        if ranges is not None and name in ranges:
            low, high = (np.asarray(r, dtype=float) for r in ranges[name])
            yerr = np.vstack([values - low, high - values])
        ax.bar(offset, values, width, label=name, yerr=yerr, capsize=2)
    ax.set_xticks(x, class_names, rotation=30)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax
