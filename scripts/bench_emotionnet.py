"""Measure EmotionNet's training speed (images/s) at several input sizes, with and without mixed precision.

Each measurement times full training steps on this machine (``train.training_images_per_s``): batch
augmentation of 48x48 uint8 faces up to the input size, forward, cross-entropy, backward and an AdamW step. Mixed precision means
fp16 autocast + GradScaler on CUDA and bf16 autocast on CPU.

    python scripts/bench_emotionnet.py                       # 224 vs 64 vs 48 px, AMP off and on
    python scripts/bench_emotionnet.py --sizes 64 --seconds 30 --batch-size 256

Run it while nothing else heavy runs: other jobs on the same cores skew the figures.
"""
from __future__ import annotations

import argparse
import torch

from helpers import data, env, models, train, transforms


def training_speed(size: int, amp_on: bool, batch_size: int, seconds: float, device: torch.device) -> float:
    """Return training images/s of EmotionNet at `size` px (area=1 below 64 px, where area=4 cannot split)."""
    env.seed_everything(0)
    model = models.build_model("emotionnet", 7, area=4 if size >= 64 else 1).to(device)
    augment = transforms.FaceBatchTransform(size, data.FER_MEAN, data.FER_STD, train=True)
    faces = torch.randint(0, 256, (batch_size, 1, 48, 48), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 7, (batch_size,), device=device)
    return train.training_images_per_s(model, faces, labels, train.Amp(device, enabled=amp_on),
                                       transform=augment, steps=3, seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64, 48])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10, help="time each measurement at least this long")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    args = parser.parse_args()
    device = env.get_device(args.device)
    print(f"device: {env.hardware_summary(device)}, torch {torch.__version__}, batch {args.batch_size}")
    results = {}
    for size in args.sizes:
        for amp_on in (False, True):
            results[size, amp_on] = training_speed(size, amp_on, args.batch_size, args.seconds, device)
            label = repr(train.Amp(device, enabled=amp_on))
            print(f"{size:>4} px  {label:<36} {results[size, amp_on]:8.1f} images/s", flush=True)
    base = max(args.sizes)
    for size in args.sizes:
        if size != base:
            print(f"{size} px trains {results[size, False] / results[base, False]:.1f}x as many images/s "
                  f"as {base} px (float32)")
    for size in args.sizes:
        print(f"AMP at {size} px: {results[size, True] / results[size, False]:.2f}x the float32 speed")


if __name__ == "__main__":
    main()
