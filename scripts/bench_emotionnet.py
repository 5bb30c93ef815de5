"""Measure EmotionNet's training speed (images/s) in float32, bf16, channels_last and with torch.compile, side by side.

Each variant times full training steps on this machine: batch
augmentation of 48x48 uint8 faces to the input size (``transforms.FaceBatchTransform``, as lesson 04
trains), forward, cross-entropy, backward and an AdamW step, timed with ``metrics.images_per_second`` after
two warm-up steps that are not timed (for torch.compile they include compiling, whose time is
printed apart).

Variants, each on a fresh seeded copy of the model:
  float32                 the plain eager step
  bf16                    bfloat16 autocast (fp16 autocast + GradScaler on CUDA)
  channels_last           float32, model and batches in the channels_last memory layout
  channels_last + bf16    both
  compile                 torch.compile(model) on top of channels_last, in float32 (--no-compile skips it:
                          compiling takes minutes on a small CPU)

    python scripts/bench_emotionnet.py                       # lesson 04's setting: 48 px, batch 128
    python scripts/bench_emotionnet.py --size 64 --seconds 30
    python scripts/bench_emotionnet.py --sizes 224 64 48 --no-compile    # what the input size costs

Run it while nothing else heavy runs: other jobs on the same cores skew the figures.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from helpers import data, env, metrics, models, train, transforms


def measure(size: int, batch_size: int, seconds: float, device: torch.device, *, amp_on: bool = False,
            channels_last: bool = False, compile_model: bool = False) -> tuple[float, float]:
    """Return (training images/s, seconds of the two untimed warm-up steps) of EmotionNet at `size` px."""
    env.seed_everything(0)
    model = models.build_model("emotionnet", 7, area=4 if size >= 64 else 1).to(device).train()
    augment = transforms.FaceBatchTransform(size, data.FER_MEAN, data.FER_STD, train=True, erase=0.5)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    forward = torch.compile(model) if compile_model else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = train.Amp(device, enabled=amp_on)
    faces = torch.randint(0, 256, (batch_size, 1, 48, 48), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 7, (batch_size,), device=device)

    def step() -> int:
        with amp.autocast():
            logits = forward(augment(faces).contiguous(memory_format=layout))
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_step(loss, optimizer)
        return batch_size

    start = time.perf_counter()
    for _ in range(2):      # first steps allocate memory, pick kernels and, with torch.compile, compile
        step()
    metrics.synchronize(device)
    warmup_s = time.perf_counter() - start
    return metrics.images_per_second(step, device, warmup=0, min_steps=3, min_seconds=seconds), warmup_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", "--size", type=int, nargs="+", default=[48], help="input sizes in px (default 48)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=15, help="time each variant at least this long")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    args = parser.parse_args()
    device = env.get_device(args.device)
    low = "fp16 + GradScaler" if device.type == "cuda" else "bf16"
    variants = {"float32": {}, low: {"amp_on": True}, "channels_last": {"channels_last": True},
                f"channels_last + {low}": {"channels_last": True, "amp_on": True}}
    if not args.no_compile:
        variants["compile (channels_last)"] = {"channels_last": True, "compile_model": True}
    print(f"device: {env.hardware_summary(device)}, torch {torch.__version__}, batch {args.batch_size}")
    for size in args.sizes:
        print(f"\n{size} px")
        base = None
        for name, options in variants.items():
            speed, warmup_s = measure(size, args.batch_size, args.seconds, device, **options)
            base = base or speed
            note = f"  (compiling took {warmup_s:.0f} s)" if options.get("compile_model") else ""
            print(f"  {name:<28} {speed:8.1f} images/s  {speed / base:5.2f}x float32{note}", flush=True)


if __name__ == "__main__":
    main()
