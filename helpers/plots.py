"""Every plot of the course: each takes data, returns its figure (or axes), and never calls ``plt.show()``.

Plots that draw a single panel (``plot_confusion_matrix``, ``plot_grouped_bars``, ``draw_predictions``)
take an optional ``ax`` to draw into; grids and multi-panel figures make their own figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from helpers import env, files

TRAIN_STYLE = {"color": "tab:blue", "linestyle": "-"}
VAL_STYLE = {"color": "tab:orange", "linestyle": "--"}


def to_display(image: torch.Tensor, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> np.ndarray:
    """Return a CxHxW tensor (float 0-1, uint8, or normalised with `mean`/`std`) as an HxW(xC) array in 0-1."""
    image = image.detach().cpu()
    image = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    if mean is not None and std is not None:
        image = image * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    image = image.clamp(0, 1).permute(1, 2, 0).numpy()
    return image[..., 0] if image.shape[-1] == 1 else image


def show_images(images: Sequence[torch.Tensor], titles: Sequence[str] | None = None, ncols: int = 8,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                size: float = 1.4, suptitle: str | None = None) -> plt.Figure:
    """Return a figure with `images` in a grid, un-normalised, each titled (e.g. with its class name)."""
    nrows = max(1, -(-len(images) // ncols))
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    # room above each image for its title's lines, so that a title never covers the image above it
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.17 * lines + 0.1)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(to_display(images[i], mean, std), cmap="gray", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_history(history, metric: str = "acc", title: str = "Learning curves",
                 train_loss_label: str = "train") -> plt.Figure:
    """Return a two-panel figure of loss and `metric` per epoch (train solid, validation dashed).

    `train_loss_label` names the training loss where it differs from the validation's plain
    cross-entropy, e.g. "train (label-smoothed)".
    """
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = range(1, len(history.train_loss) + 1)
    ax_loss.plot(epochs, history.train_loss, label=train_loss_label, **TRAIN_STYLE)
    ax_loss.plot(epochs, history.val_loss, label="validation", **VAL_STYLE)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss per image", title="Training and validation loss")
    train_metric, val_metric = getattr(history, f"train_{metric}"), getattr(history, f"val_{metric}")
    ax_metric.plot(epochs, train_metric, label="train", **TRAIN_STYLE)
    ax_metric.plot(epochs, val_metric, label="validation", **VAL_STYLE)
    name = {"acc": "accuracy"}.get(metric, metric)
    ax_metric.set(xlabel="epoch", ylabel=name, title=f"Training and validation {name}")
    for ax in (ax_loss, ax_metric):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(labels: Sequence[int], preds: Sequence[int], class_names: Sequence[str],
                          ax: plt.Axes | None = None, title: str = "Confusion matrix (rows: true class)") -> plt.Axes:
    """Return axes with the row-normalised confusion matrix of `labels` vs `preds` (counts in cells)."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * len(class_names) + 2, 0.6 * len(class_names) + 1.5))
    matrix = confusion_matrix(labels, preds, labels=range(len(class_names)), normalize="true")
    ConfusionMatrixDisplay(matrix, display_labels=class_names).plot(
        ax=ax, cmap="Blues", values_format=".2f", colorbar=False, xticks_rotation=45)
    ax.set_title(title)
    return ax


def save_figure(fig: plt.Figure, name: str) -> Path:
    """Save `fig` as ``figures/<name>.png`` (a scratch folder in smoke mode) and return the path."""
    return files.atomic_write(env.figures_dir() / f"{name}.png",
                              lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))


def show_augmentations(image, augmentations: dict, n: int = 6, size: float = 1.3) -> plt.Figure:
    """Return a grid with one row per named augmentation: the original, then `n` random draws of it."""
    from torchvision.transforms.v2 import functional as F
    original = F.to_image(image)
    fig, axes = plt.subplots(len(augmentations), n + 1, figsize=((n + 1) * size, len(augmentations) * (size + 0.1)),
                             squeeze=False)
    for r, (row, (name, augment)) in enumerate(zip(axes, augmentations.items())):
        for col, ax in enumerate(row):
            shown = original if col == 0 else F.to_image(augment(image))
            ax.imshow(to_display(shown), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        if r == 0:
            row[0].set_title("original", fontsize=8)
    fig.tight_layout()
    return fig


def show_prediction(image: torch.Tensor, ranked: Sequence[tuple[str, float]], title: str = "") -> plt.Figure:
    """Return a figure with `image` on the left and the (class, probability) pairs of `ranked` as bars."""
    fig, (ax_image, ax_bars) = plt.subplots(1, 2, figsize=(6, 2.4), gridspec_kw={"width_ratios": [1, 1.6]})
    ax_image.imshow(to_display(image), cmap="gray", vmin=0, vmax=1)
    ax_image.set_title(title, fontsize=9)
    ax_image.axis("off")
    names, probs = zip(*ranked)
    ax_bars.barh(range(len(names))[::-1], probs, color="tab:blue")
    ax_bars.set_yticks(range(len(names))[::-1], names)
    ax_bars.set(xlim=(0, 1), xlabel="probability", title="top predictions")
    fig.tight_layout()
    return fig


def plot_grouped_bars(groups: dict[str, Sequence[float]], class_names: Sequence[str], ylabel: str, title: str,
                      ranges: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None, ax=None):
    """Return axes with one bar per class for each named group side by side; `ranges` adds (min, max) whiskers."""
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
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)   # beside the bars, not on them
    ax.grid(axis="y", alpha=0.3)
    return ax


def draw_predictions(image: np.ndarray, boxes: np.ndarray, probs: torch.Tensor,
                     class_names: Sequence[str], ax: plt.Axes | None = None, title: str = "",
                     zoom: float | None = None) -> plt.Axes:
    """Return axes showing the BGR `image` (as ``faces.read_image`` reads it) with each face box labelled
    'class probability'.

    Labels alternate above and below the boxes (left to right), so neighbouring faces' labels do not
    overlap. With `zoom`, the view is cut to the boxes plus `zoom` box sides on every side, so that
    small faces in a large photo are big enough to see.
    """
    import cv2   # OpenCV comes with ultralytics; only this plot needs it
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 7 * image.shape[0] / image.shape[1]))
    ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    order = np.argsort(np.asarray(boxes).reshape(-1, 4)[:, 0]) if len(boxes) else []
    for rank, i in enumerate(order):
        (x, y, w, h), p = boxes[i], probs[i]
        best = int(p.argmax())
        ax.add_patch(Rectangle((x, y), w, h, fill=False, color="lime", linewidth=2))
        below = rank % 2 == 1
        ax.text(x, y + h + 4 if below else y - 4, f"{class_names[best]} {p[best]:.2f}", color="black",
                fontsize=9, va="top" if below else "bottom",
                bbox={"facecolor": "lime", "edgecolor": "none", "pad": 1.5})
    if zoom is not None and len(boxes):
        b = np.asarray(boxes).reshape(-1, 4)
        pad = zoom * b[:, 2:].max()
        ax.set_xlim(max(0, b[:, 0].min() - pad), min(image.shape[1], (b[:, 0] + b[:, 2]).max() + pad))
        ax.set_ylim(min(image.shape[0], (b[:, 1] + b[:, 3]).max() + pad), max(0, b[:, 1].min() - pad))
    ax.set_title(title or f"{len(boxes)} face(s) found")
    ax.axis("off")
    return ax


def plot_curves(curves: dict[str, Sequence[float]], ylabel: str, title: str, xlabel: str = "epoch", ax=None):
    """Return axes with one line per named curve, x counted from 1 (e.g. validation accuracy per epoch of several runs)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.grid(alpha=0.3)
    return ax
