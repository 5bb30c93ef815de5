"""Measuring: classification metrics, statistics over several runs, and images per second.

Speed is measured the one way every lesson and benchmark script shares: ``images_per_second``
runs a step a few times to warm up, then times it, waiting for the device (``synchronize``)
before each reading of the clock, since a GPU runs its work after the Python call has returned.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch


def synchronize(device: torch.device | str) -> None:
    """Wait until `device` has finished its queued work (CUDA and MPS run asynchronously; a CPU does not)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def images_per_second(step: Callable[[], int], device: torch.device | str = "cpu", *, warmup: int = 1,
                      min_steps: int = 3, min_seconds: float = 0.0) -> float:
    """Return images/s of `step`, a callable that processes some images and returns how many.

    `step` runs `warmup` times untimed (first calls allocate memory and pick kernels), then at least
    `min_steps` times and for at least `min_seconds`; the device is synchronised before each clock reading.
    """
    if min_steps < 1:
        raise ValueError(f"min_steps={min_steps}; time at least one step")
    for _ in range(warmup):
        step()
    synchronize(device)
    start, steps, images = time.perf_counter(), 0, 0
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        images += step()
        steps += 1
        if steps >= min_steps:
            synchronize(device)
    return images / (time.perf_counter() - start)


def loader_images_per_second(loader, device: torch.device | str = "cpu", passes: int = 2) -> float:
    """Return images/s over `passes` full passes through `loader` after one warm-up pass, each batch
    converted to float (uint8 scaled to 0-1) as training would, so every data path ends the same way."""
    def one_pass() -> int:
        seen = 0
        for images, labels in loader:
            images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
            seen += len(labels)
        return seen
    return images_per_second(one_pass, device, min_steps=passes)


def classification_metrics(labels: Sequence[int], preds: Sequence[int], class_names: Sequence[str]) -> dict:
    """Return accuracy, balanced accuracy, macro-F1, weighted F1, and each class's precision and recall
    (as ``precision_<class>`` and ``recall_<class>``; a class never predicted has precision 0)."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support
    labels, preds = np.asarray(labels), np.asarray(preds)
    classes = list(range(len(class_names)))
    precisions, recalls, _, _ = precision_recall_fscore_support(labels, preds, labels=classes, zero_division=0)
    present = np.isin(classes, labels)                   # balanced accuracy: mean recall of the classes present
    return {
        "acc": float((labels == preds).mean()),
        "balanced_acc": float(recalls[present].mean()),
        "macro_f1": float(f1_score(labels, preds, labels=classes, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, preds, labels=classes, average="weighted", zero_division=0)),
        **{f"precision_{name}": float(p) for name, p in zip(class_names, precisions)},
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


def paired_interval(differences: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Return (mean, low, high): the mean of paired `differences` (one per seed) and its t-interval.

    With n seeds the interval is mean +- t(n-1) * std / sqrt(n), Student's t for a small sample; it
    needs at least 2 differences. If it excludes 0, a difference of that sign is what the seeds show.
    """
    from scipy import stats
    values = np.asarray(differences, dtype=float)
    if len(values) < 2:
        raise ValueError(f"{len(values)} paired difference(s); an interval needs at least 2 seeds per arm")
    mean = float(values.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def compare_arms(runs: Sequence[dict], metric: str, baseline: str, group: str = "arm", confidence: float = 0.95):
    """Return, per arm, the mean and std of `metric`, and the difference to the `baseline` arm paired by seed:
    its mean, the low and high ends of its `confidence` t-interval (``paired_interval``), and whether
    that interval excludes 0 (``real``). Every arm must have run the same seeds as the baseline."""
    import pandas as pd
    frame = pd.DataFrame(list(runs))
    if baseline not in set(frame[group]):
        raise KeyError(f"baseline arm {baseline!r} is not among the runs' arms {sorted(set(frame[group]))}.")
    by_seed = frame.pivot(index="seed", columns=group, values=metric)
    rows = {}
    for arm in frame[group].unique():
        if by_seed[arm].isna().any() or by_seed[baseline].isna().any():
            raise ValueError(f"arms {arm!r} and {baseline!r} did not run the same seeds; pair them seed by seed")
        row = {"mean": by_seed[arm].mean(), "std": by_seed[arm].std(ddof=1)}
        if arm != baseline:
            diff, low, high = paired_interval(by_seed[arm] - by_seed[baseline], confidence)
            row.update(diff=diff, low=low, high=high, real=bool(low > 0 or high < 0))
        rows[arm] = row
    return pd.DataFrame.from_dict(rows, orient="index")
