"""Features of a frozen network, computed once and kept on disk (lesson 06).

When the first layers of a network are frozen and the images are not augmented, those layers compute
the same output for an image in every epoch. Computing it once (``extract``) and training the
remaining layers on the stored output makes an epoch many times cheaper. ``cached`` keeps such
tensors in a file together with a *key* that says what they were computed from (the weights' checksum,
the images, the layer): a later run with the same key loads them in a second; any change in the key
computes them again, so a stale file is never used.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from helpers import checkpoint, emotionnet

CACHE_FORMAT = "course-feature-cache-1"


def split_layers(net: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Return (front, tail, head) of lesson 04's EmotionNet or torchvision's EfficientNet-B0;
    head(tail(front(x))) gives the network's logits, and the parts share the network's weights."""
    if isinstance(net, emotionnet.EmotionNet):
        c = net.classify
        return net.backbone[:7], nn.Sequential(net.backbone[7:], c.conv, c.pool, nn.Flatten()), nn.Sequential(c.drop, c.linear)
    return net.features[:7], nn.Sequential(net.features[7:], net.avgpool, nn.Flatten()), net.classifier


def extract(module: nn.Module, images: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor],
            device: torch.device | str = "cpu", batch_size: int = 512) -> torch.Tensor:
    """Return ``module(prepare(batch))`` for all `images` in batches, in eval mode, as one float32 CPU tensor.

    `prepare` turns a batch of stored images (e.g. uint8 N x 1 x H x W) into the network's input on
    `device`; eval mode and inference mode make the result the same on every call.
    """
    if len(images) == 0:
        raise ValueError("no images to extract features from")
    was_training = module.training
    module.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = prepare(images[start:start + batch_size].to(device))
            parts.append(module(batch).float().cpu())
    module.train(was_training)
    return torch.cat(parts)


def cached(path: str | Path, key: dict, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Return the tensors stored at `path` if they were made with the same `key`, else ``compute()`` them and store them.

    `key` holds plain values (str, int, float, lists of them) that identify the inputs. The file is
    written atomically (a crash never leaves half a file) with its tensors' checksums, and read with
    ``weights_only=True``; a file that is damaged, unreadable or has no checksum to verify is computed again.
    """
    path = Path(path)
    if path.is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("error", checkpoint.UnverifiedCheckpointWarning)
            try:
                stored = checkpoint.load_checkpoint(path)
            except (checkpoint.CheckpointError, checkpoint.UnverifiedCheckpointWarning):
                stored = None                             # compute again and overwrite it
        if stored and stored.get("format") == CACHE_FORMAT and stored.get("key") == key:
            return stored["tensors"]
    tensors = compute()
    if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise TypeError("compute() must return a dict of tensors, e.g. {'train': ..., 'test': ...}")
    checkpoint.save_checkpoint(path, {"format": CACHE_FORMAT, "key": key, "tensors": tensors})
    return tensors
