"""Measure how fast EfficientNet-B0 trains (and evaluates) on this machine, at the input sizes lesson 06 considers.

    python scripts/bench_efficientnet.py                      # 48 and 64 px, batch 64
    python scripts/bench_efficientnet.py --sizes 48 64 96 --channels-last --freeze 0 3

Random tensors stand in for the images, so this times the model alone (forward, backward and an AdamW
step on 3 x size x size inputs, 7 classes, ``train.training_images_per_s``), not the image decoding. Each setting is timed `--repeats`
times; the median is the figure to quote, the best shows what the machine does undisturbed. Run it while nothing
else heavy runs: other jobs on the same cores skew the figures.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from helpers import efficientnet, env, metrics, train

NUM_CLASSES = 7


def eval_images_per_s(model: torch.nn.Module, size: int, batch_size: int, num_steps: int,
                      device: torch.device) -> float:
    """Return inference images/s of `model` (eval mode, no gradients) on random batches."""
    images = torch.randn(batch_size, 3, size, size, device=device)
    model.eval()

    def step() -> int:
        with torch.inference_mode():
            model(images)
        return batch_size

    return metrics.images_per_second(step, device, min_steps=num_steps)


def train_images_per_s(model: torch.nn.Module, size: int, batch_size: int, num_steps: int,
                       device: torch.device) -> float:
    """Return training images/s of `model` on random 3 x size x size batches of 7 classes."""
    images = torch.randn(batch_size, 3, size, size, device=device)
    labels = torch.randint(0, NUM_CLASSES, (batch_size,), device=device)
    return train.training_images_per_s(model, images, labels, steps=num_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 64], help="input sizes in pixels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timings per setting (median and best are shown)")
    parser.add_argument("--freeze", type=int, nargs="+", default=[0],
                        help="numbers of frozen feature blocks to try (0 = train everything)")
    parser.add_argument("--channels-last", action="store_true", help="also time channels_last memory format")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    args = parser.parse_args()

    device = env.get_device(args.device)
    env.seed_everything(0)
    print(f"EfficientNet-B0, batch {args.batch_size}, {args.repeats} x {args.steps} timed steps, "
          f"on {env.hardware_summary(device)}")
    print(f"{'size':>5} {'frozen':>6} {'layout':>13} {'train img/s median':>19} {'(best)':>7} "
          f"{'eval img/s median':>18} {'(best)':>7}")
    layouts = [torch.contiguous_format] + ([torch.channels_last] if args.channels_last else [])
    for size in args.sizes:
        for frozen in args.freeze:
            for layout in layouts:
                model = efficientnet.efficientnet_b0_classifier(NUM_CLASSES)
                efficientnet.freeze_features(model, frozen)
                model = model.to(device, memory_format=layout)
                train_rates = [train_images_per_s(model, size, args.batch_size, args.steps, device)
                               for _ in range(args.repeats)]
                eval_rates = [eval_images_per_s(model, size, args.batch_size, args.steps, device)
                              for _ in range(args.repeats)]
                name = "channels_last" if layout is torch.channels_last else "contiguous"
                print(f"{size:>5} {frozen:>6} {name:>13} {statistics.median(train_rates):>19.1f} {max(train_rates):>7.1f} "
                      f"{statistics.median(eval_rates):>18.1f} {max(eval_rates):>7.1f}", flush=True)


if __name__ == "__main__":
    main()
