"""The course's networks, and one registry that builds any of them by name: ``build_model(name, num_classes)``.

Each entry of ``MODELS`` (a ``ModelEntry``) says how to build the network and what input it takes:
the input channels it is built for (None: any number, passed as ``in_channels``) and the constructor
arguments that follow from the input side. ``model_args(name, num_classes, channels, input_size)``
turns that into the arguments a checkpoint stores, so a program that trains any model on any dataset
needs no case per model; adding a model is one entry.

Registered names: ``source_cnn`` and ``fashion_cnn`` (lesson 03, defined here),
``emotionnet`` (lesson 04, ``helpers.emotionnet``) and ``efficientnet_b0`` (lesson 06,
``helpers.efficientnet``, randomly initialised; ``efficientnet.efficientnet_b0_classifier`` with
``imagenet_state=efficientnet.fetch_imagenet_weights()[0]`` loads ImageNet weights). A checkpoint stores the name and the constructor arguments, so
``checkpoint.load_model`` can rebuild whichever network wrote it.

- ``SourceCNN``: the network of lesson 03's source (two 5x5 convolutions, dropout, a 512-unit
  hidden layer), kept as the baseline. Its flatten size is measured, not typed in.
- ``FashionCNN``: the course's compact network. Batch normalisation after every convolution, a
  two-step stem that brings the image to a quarter of its side before the wide layers, and global
  pooling at the end, so it accepts any input size and has no hand-computed layer sizes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


def conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Return a 3x3 convolution (no bias: the BatchNorm has one) + BatchNorm + ReLU block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def conv_pool_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """Return a 3x3 convolution + 2x2 max-pool + BatchNorm + ReLU block: it halves the image side.

    Pooling before the BatchNorm and ReLU (the order fast CIFAR-10 training recipes use) runs them
    on a quarter of the pixels. Once trained, both only scale, shift and clip each channel, so with a
    positive BatchNorm scale the pool picks the same pixel either way. In training the BatchNorm
    normalises with the statistics of the pooled values, so the two orders are not the same network;
    the tuning runs chose this one.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SourceCNN(nn.Module):
    """The source's CNN: conv 5x5 (32) - pool - dropout - conv 5x5 (64) - pool - dropout - linear 512 - linear."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        )
        with torch.no_grad():  # measure the flattened size instead of typing 64 * 4 * 4
            flat = self.features(torch.zeros(1, in_channels, image_size, image_size)).numel()
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, 512), nn.ReLU(), nn.Linear(512, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return logits (batch x num_classes): raw scores, no softmax."""
        return self.classifier(self.features(images))


class FashionCNN(nn.Module):
    """The course's compact BN CNN: a stem of two conv + max-pool blocks down to 7 x 7, stages of 3x3
    conv blocks, global pooling and one linear layer.

    A convolution costs in proportion to the pixels it slides over, so the network shrinks the image
    early, but keeps looking at every pixel on the way. With the default ``widths=(16, 32, 64, 128), depth=2``:

    - stem: two ``conv_pool_bn`` blocks, 16 channels at 28 x 28 pooled to 14 x 14, then 32 channels
      pooled to 7 x 7; the first convolution has a single input channel, so even at full resolution it is cheap;
    - a stage of `depth` conv blocks for each further width: 64 channels at 7 x 7, a 2x2 max-pool,
      128 at 3 x 3;
    - global pooling (``pool="max"``: does the feature appear anywhere?, or ``"avg"``) turns each
      channel into one number, so no layer size is hand-computed and any input size works from
      ``min_size`` up (8 px with the defaults: each max-pool halves the side).

    The shape was chosen in tuning runs on a 2-core CPU by validation accuracy for the training time.
    The tuning runs also tried going from 28 x 28 to 7 x 7 in one step (a stride-2 convolution and a max-pool,
    32 channels): 10-15% faster per epoch, but trained for 11 epochs (a little longer than this one's
    9) it reached 0.4 points less validation accuracy over three seeds, and 13 epochs did not close the
    gap. ``scripts/bench_fashion_mnist.py`` measures this network against the source's.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64, 128),
                 depth: int = 2, pool: str = "max"):
        super().__init__()
        if len(widths) < 3:
            raise ValueError(f"widths={widths!r}: give the two stem widths and at least one stage's")
        if depth < 1:
            raise ValueError(f"depth={depth}: each stage needs at least one conv block")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool={pool!r}: choose 'max' or 'avg'")
        layers: list[nn.Module] = [conv_pool_bn(in_channels, widths[0]),       # 28 -> 14
                                   conv_pool_bn(widths[0], widths[1])]         # 14 -> 7
        for k, (cin, cout) in enumerate(zip(widths[1:-1], widths[2:])):
            if k > 0:
                layers.append(nn.MaxPool2d(2))                                  # halve between stages
            layers += [conv_bn(cin if i == 0 else cout, cout) for i in range(depth)]
        layers.append(nn.AdaptiveMaxPool2d(1) if pool == "max" else nn.AdaptiveAvgPool2d(1))  # any size -> 1 x 1
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1], num_classes))
        self.min_size = 2 ** sum(isinstance(m, nn.MaxPool2d) for m in self.features.modules())  # each halves the side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return logits (batch x num_classes): raw scores, no softmax."""
        if min(images.shape[-2:]) < self.min_size:
            raise ValueError(f"images of {images.shape[-2]} x {images.shape[-1]} px are too small for this "
                             f"FashionCNN: it halves the side {self.min_size.bit_length() - 1} times, so it needs "
                             f"at least {self.min_size} x {self.min_size} (resize or pad them)")
        return self.classifier(self.features(images))


def _emotionnet(**kwargs) -> nn.Module:
    from helpers.emotionnet import EmotionNet   # imports ultralytics, so only when asked for
    return EmotionNet(**kwargs)


def _emotionnet_area(input_size: int) -> dict:
    """EmotionNet's attention splits the 1/16-scale map into `area` parts: 4 where its pixel count allows, else 1."""
    side = math.ceil(input_size / 16)
    return {"area": 4 if side * side % 4 == 0 else 1}


def _efficientnet_b0(**kwargs) -> nn.Module:
    from helpers.efficientnet import efficientnet_b0_classifier   # efficientnet does not import this module
    return efficientnet_b0_classifier(**kwargs)


def _no_size_args(input_size: int) -> dict:
    return {}


@dataclass(frozen=True)
class ModelEntry:
    """One network of the registry: how to build it and what input it takes.

    `channels`: the input channels the network is built for (3 for an RGB network such as EfficientNet,
    which is fed a gray image copied into all three), or None when its constructor takes ``in_channels``
    and so fits any data. `size_args`: the constructor arguments that follow from the input side in
    pixels (a flatten size, an attention split), {} when the side does not matter.
    """
    build: Callable[..., nn.Module]
    channels: int | None = None
    size_args: Callable[[int], dict] = field(default=_no_size_args)

    def input_channels(self, data_channels: int) -> int:
        """Return the channels the network is fed for data of `data_channels` channels."""
        return self.channels or data_channels


MODELS = {
    "source_cnn": ModelEntry(SourceCNN, size_args=lambda input_size: {"image_size": input_size}),
    "fashion_cnn": ModelEntry(FashionCNN),
    "emotionnet": ModelEntry(_emotionnet, size_args=_emotionnet_area),
    "efficientnet_b0": ModelEntry(_efficientnet_b0, channels=3),
}


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


def model_args(name: str, num_classes: int, channels: int, input_size: int) -> dict:
    """Return the constructor arguments of network `name` for `num_classes` classes of `channels`-channel
    images fed at `input_size` px: what a checkpoint stores to rebuild it."""
    entry = _entry(name)
    args: dict = {"num_classes": num_classes}
    if entry.channels is None:
        args["in_channels"] = channels
    elif channels not in (1, entry.channels):
        raise ValueError(f"{name} takes {entry.channels}-channel images, and {channels}-channel ones cannot be "
                         f"fed to it; convert the images to {'RGB' if entry.channels == 3 else 'gray'} first")
    return {**args, **entry.size_args(input_size)}


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Return a fresh model by name (see ``MODELS``) with `num_classes` outputs; `kwargs` go to its constructor."""
    entry = _entry(name)
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}; a classifier needs at least 2 classes")
    return entry.build(num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
