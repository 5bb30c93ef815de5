"""EmotionNet: a small facial-expression classifier assembled from ultralytics building blocks.

The layout follows the YOLO11/YOLO12 classification backbones: strided ``Conv`` layers halve the
image five times, ``C3k2`` blocks mix features, ``A2C2f`` blocks add area attention, and the
``Classify`` head pools and maps to the classes. Unlike a bare ``Classify`` head, ``forward``
always returns raw logits (see ``EmotionNet.forward``). ``models.build_model("emotionnet", 7)``
builds it, and ``checkpoint.load_model`` rebuilds it from a file.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from ultralytics.nn.modules import A2C2f, C3k2, Classify, Conv
from ultralytics.utils import patches as ultralytics_patches

# Importing ultralytics replaces PIL's Image.open with a version that, on a file it cannot identify,
# tries to pip-install the HEIC plugin pi-heif and then fails with ModuleNotFoundError instead of
# PIL's own error, so data.load_image could no longer name the bad file. We read no HEIC photos:
# tell ultralytics its plugin is already set up, and Image.open raises its usual errors again.
if hasattr(ultralytics_patches, "_pil_plugins_registered"):
    ultralytics_patches._pil_plugins_registered = True

MODEL_NAME = "emotionnet"                  # its name in models.MODELS and in checkpoints
BUNDLE = "models/emotionnet_fer2013.pt"    # lesson 04's trained model (fp16 weights), in the repository
ATTENTION_STRIDE = 16      # the first A2C2f block works on the 1/16-scale feature map


def _halve(side: int, times: int) -> int:
    for _ in range(times):
        side = (side + 1) // 2  # a 3x3 convolution with stride 2 and padding 1
    return side


class EmotionNet(nn.Module):
    """A ~1.8M-parameter CNN with area attention; input B x `in_channels` x H x W, output B x `num_classes` logits.

    `area` splits the 1/16-scale map into that many parts for attention, so the map's pixel count
    must divide by it: at 64 px the map is 4x4 (16 pixels, area 4 works); at 48 px it is 3x3 (use area=1).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 7, area: int = 4):
        super().__init__()
        self.area = area
        self.backbone = nn.Sequential(
            Conv(in_channels, 16, k=3, s=2),                       # 1/2
            Conv(16, 32, k=3, s=2),                                # 1/4
            C3k2(32, 64, n=1, c3k=False, e=0.25),
            Conv(64, 128, k=3, s=2),                               # 1/8
            C3k2(128, 128, n=1, c3k=False, e=0.25),
            Conv(128, 128, k=3, s=2),                              # 1/16
            A2C2f(128, 128, n=2, a2=True, area=area, e=0.5),       # area attention on the 1/16 map
            Conv(128, 256, k=3, s=2),                              # 1/32
            A2C2f(256, 256, n=2, a2=True, area=1, e=0.5),
        )
        self.classify = Classify(256, num_classes)

    def check_input(self, height: int, width: int) -> None:
        """Raise ValueError if an input of `height` x `width` cannot be split into `area` parts at 1/16 scale."""
        h, w = _halve(height, 4), _halve(width, 4)
        if (h * w) % self.area:
            raise ValueError(f"EmotionNet(area={self.area}) cannot take {height}x{width} images: the 1/16-scale "
                             f"map is {h}x{w} = {h * w} pixels, which does not split into {self.area} equal "
                             f"areas. Use 64x64 inputs (a 4x4 map), or build EmotionNet(area=1) for 48x48.")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return raw logits (B x num_classes) in train AND eval mode.

        ultralytics' Classify returns logits while training but (softmax probabilities, logits) in
        eval mode; a loss computed on those probabilities is wrong, so we return the logits always.
        """
        self.check_input(*images.shape[-2:])
        out = self.classify(self.backbone(images))
        return out[1] if isinstance(out, tuple) else out


def bundle_path() -> Path:
    """Return where lesson 04's full run saves its inference bundle and later lessons look for it."""
    from helpers import env
    return env.project_dir() / BUNDLE


def flops_per_image(model: nn.Module, size: int, in_channels: int = 1) -> int:
    """Return the floating-point operations of one forward pass on one `size` x `size` image (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, in_channels, size, size, device=device))
    model.train(was_training)
    return counter.get_total_flops()
