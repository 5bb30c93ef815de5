"""Small CNNs for 28 x 28 grayscale images, and ``build_model(name, num_classes)``.

- ``SourceCNN``: the network of lesson 03's source (two 5x5 convolutions, dropout, a 512-unit
  hidden layer), kept as the baseline. Its flatten size is measured, not typed in.
- ``FashionCNN``: the course's compact network. Batch normalisation after every convolution, a
  stride-2 first layer so that little work happens at full resolution, and global average pooling
  at the end, so it accepts any input size and has no hand-computed layer sizes.
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
    """The course's compact BN CNN: a stride-2 stem, then 3x3 conv blocks with a max-pool between
    consecutive ones, global average pooling and one linear layer.

    With the default ``widths=(32, 48, 96, 128)`` a 28 x 28 image goes 14 x 14 (stem, 32 channels),
    14 x 14 (48), 7 x 7 (96), 3 x 3 (128), then is pooled to 128 numbers. Chosen by timing and
    validation accuracy on Fashion-MNIST on a 2-core CPU; ``scripts/bench_fashion_mnist.py`` measures it
    against the source's network.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths: tuple[int, ...] = (32, 48, 96, 128)):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"widths={widths!r}: give the stem's width and at least one more block's")
        layers: list[nn.Module] = [conv_bn(in_channels, widths[0], stride=2)]   # 28 x 28 -> 14 x 14
        for k, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            if k > 0:
                layers.append(nn.MaxPool2d(2))                                  # halve between blocks
            layers.append(conv_bn(cin, cout))
        layers.append(nn.AdaptiveAvgPool2d(1))                                  # any size -> 1 x 1
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
