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
