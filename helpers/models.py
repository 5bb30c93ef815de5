"""Small CNNs for 28 x 28 grayscale images, and ``build_model(name, num_classes)``.

- ``SourceCNN``: the network of lesson 03's source (two 5x5 convolutions, dropout, a 512-unit
  hidden layer), kept as the baseline. Its flatten size is measured, not typed in.
- ``FashionCNN``: the course's compact network. Batch normalisation after every convolution, a
  stem that brings the image to a quarter of its side before the wide layers, and global pooling at
  the end, so it accepts any input size and has no hand-computed layer sizes.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Return a 3x3 convolution (no bias: the BatchNorm has one) + BatchNorm + ReLU block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
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
    """The course's compact BN CNN: a ResNet-style stem, stages of 3x3 conv blocks, global pooling and
    one linear layer.

    The stem (a stride-2 convolution, then a 2x2 max-pool) takes a 28 x 28 image to 7 x 7 before any
    wide layer runs: most of the work of a CNN happens at the highest resolution it keeps. Each
    further width is a stage of `depth` conv blocks, with a 2x2 max-pool between stages. With the
    defaults ``widths=(32, 64, 128), depth=2``: 14 x 14 (stem, 32 channels), 7 x 7 (64, 64),
    3 x 3 (128, 128), then the global pooling (``pool="max"``: does the feature appear anywhere?, or
    ``"avg"``) turns each channel into one number, so any input size works and no layer size is
    hand-computed. The defaults were chosen in tuning runs on a 2-core CPU by validation accuracy for the
    training time: the earlier 4-convolution version (a stride-2 stem without the pool, 32-48-96-128)
    was as accurate but about 1.3x slower per epoch. ``scripts/bench_fashion_mnist.py`` measures this
    network against the source's.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128),
                 depth: int = 2, pool: str = "max"):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"widths={widths!r}: give the stem's width and at least one stage's")
        if depth < 1:
            raise ValueError(f"depth={depth}: each stage needs at least one conv block")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool={pool!r}: choose 'max' or 'avg'")
        layers: list[nn.Module] = [conv_bn(in_channels, widths[0], stride=2), nn.MaxPool2d(2)]  # 28 -> 14 -> 7
        for k, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            if k > 0:
                layers.append(nn.MaxPool2d(2))                                  # halve between stages
            layers += [conv_bn(cin if i == 0 else cout, cout) for i in range(depth)]
        layers.append(nn.AdaptiveMaxPool2d(1) if pool == "max" else nn.AdaptiveAvgPool2d(1))  # any size -> 1 x 1
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1], num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return logits (batch x num_classes): raw scores, no softmax."""
        return self.classifier(self.features(images))


def _emotionnet(**kwargs) -> nn.Module:
    from helpers.emotionnet import EmotionNet   # imports ultralytics, so only when asked for
    return EmotionNet(**kwargs)


MODELS = {"source_cnn": SourceCNN, "fashion_cnn": FashionCNN, "EmotionNet": _emotionnet}  # lesson 04's EmotionNet


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Return a fresh model by name (see ``MODELS``) with `num_classes` outputs."""
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; choose one of {sorted(MODELS)}")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}; a classifier needs at least 2 classes")
    return MODELS[name](num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
