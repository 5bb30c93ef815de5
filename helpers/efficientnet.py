"""torchvision's EfficientNet-B0 for the 7 FER classes: ImageNet weights when they can be had (and a
fast, plain fallback to random initialisation when they cannot), the new classifier head, freezing.
``efficientnet_b0_classifier`` builds it (with the ImageNet weights from ``fetch_imagenet_weights`` when
given them); ``models.build_model("efficientnet_b0", 7)`` calls it for random weights (as a checkpoint reloads it);
this module does not import ``helpers.models``, whose registry imports it only when asked for this network.

The weights API: ``efficientnet_b0(weights=EfficientNet_B0_Weights.IMAGENET1K_V1)``, or ``weights=None``
for random ones. The older boolean argument has been deprecated since torchvision 0.13 (0.29 still
accepts it, with a warning); the course never uses it.
"""
from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import EfficientNet_B0_Weights, efficientnet_b0

from helpers import env, finder

WEIGHTS = EfficientNet_B0_Weights.IMAGENET1K_V1
WEIGHTS_HOST = urlparse(WEIGHTS.url).hostname   # download.pytorch.org
DOWNLOAD_TIMEOUT_S = 30.0                   # a stalled download raises instead of waiting forever
HEAD_DROPOUT = 0.2                          # torchvision's own value for B0


def cached_weights_file(weights: EfficientNet_B0_Weights = WEIGHTS) -> Path:
    """Return where torch.hub keeps the downloaded weights file (it may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def fetch_imagenet_weights(weights: EfficientNet_B0_Weights = WEIGHTS) -> tuple[dict | None, str]:
    """Return (state_dict, "") with the ImageNet weights, or (None, why not) within seconds when offline.

    A file already in the torch.hub cache is used without any network access.
    """
    if not cached_weights_file(weights).is_file():
        if env.offline_forced():
            return None, "COURSE_OFFLINE is set"
        if not finder.is_online(host=WEIGHTS_HOST):
            return None, f"{WEIGHTS_HOST} cannot be reached (no internet)"
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return weights.get_state_dict(progress=False, check_hash=True), ""
    except (OSError, RuntimeError) as err:   # URLError, timeouts, a truncated or corrupt file
        return None, f"the download failed ({type(err).__name__}: {err})"


def replace_head(model: nn.Module, num_classes: int, dropout: float = HEAD_DROPOUT) -> nn.Module:
    """Replace the classifier of a torchvision EfficientNet with Dropout -> Linear(num_classes); return the model.

    Dropout goes *before* the Linear: it drops features the last layer reads. After the Linear it
    would zero logits at random during training.
    """
    if not (isinstance(getattr(model, "classifier", None), nn.Sequential)
            and isinstance(model.classifier[-1], nn.Linear)):
        raise TypeError(f"{type(model).__name__} has no classifier ending in nn.Linear; replace_head "
                        f"expects a torchvision EfficientNet.")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}; a classifier needs at least 2 classes.")
    in_features = model.classifier[-1].in_features
    model.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(in_features, num_classes))
    return model


def efficientnet_b0_classifier(num_classes: int, dropout: float = HEAD_DROPOUT,
                               imagenet_state: dict | None = None) -> nn.Module:
    """Return EfficientNet-B0 with a Dropout -> Linear(`num_classes`) head.

    The body has random weights, or the ImageNet ones when `imagenet_state` is given: the state_dict
    that ``fetch_imagenet_weights`` returns (None when they cannot be had, which means random weights
    here too). The registry's ``models.build_model("efficientnet_b0", ...)`` calls this without it.
    """
    model = efficientnet_b0(weights=None)
    if imagenet_state is not None:
        model.load_state_dict(imagenet_state)
    return replace_head(model, num_classes, dropout)


def freeze_features(model: nn.Module, num_blocks: int) -> int:
    """Freeze the first `num_blocks` of ``model.features`` (0 = train everything); return the trainable parameter count.

    Frozen blocks get no gradients, so backward stops before them: less compute per step.
    """
    blocks = len(model.features)
    if not 0 <= num_blocks <= blocks:
        raise ValueError(f"num_blocks={num_blocks}; EfficientNet-B0 has {blocks} feature blocks (0..{blocks}).")
    for i, block in enumerate(model.features):
        for param in block.parameters():
            param.requires_grad_(i >= num_blocks)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
