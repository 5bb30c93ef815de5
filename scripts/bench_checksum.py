"""Measure what checking a file's tensor checksums costs when it is loaded, on the course's shipped bundle.

Three timings, each the median of several repeats, printed side by side:
  load, checked       checkpoint.load_checkpoint(path), which checks every tensor's SHA-256
  load, unchecked     checkpoint.load_checkpoint(path, verify=False)
  hashing alone       checkpoint.tensor_checksums on the loaded dict (what the check adds)
and, for a model file, checkpoint.load_model (which also builds the network and fills in its weights) for scale.

    python scripts/bench_checksum.py                           # models/emotionnet_fer2013.pt, 20 repeats
    python scripts/bench_checksum.py path/to/last.pt --repeats 50

Run it while nothing else heavy runs: other jobs on the same cores skew the figures.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from helpers import checkpoint, emotionnet, env


def median_seconds(works: dict, repeats: int) -> dict:
    """Return {name: median wall seconds} of each of `works` (name -> function), after one untimed call of each.

    The repeats take turns (one call of each per round), so a slow spell on the machine hits them alike.
    """
    for work in works.values():
        work()
    times = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, nargs="?", default=emotionnet.bundle_path(),
                        help="a file written by save_checkpoint or save_bundle (default: the shipped bundle)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats of each measurement (default 20)")
    args = parser.parse_args(argv)

    state = checkpoint.load_checkpoint(args.path, verify=False)
    sizes = [t.numel() * t.element_size() for _, t in checkpoint._tensors(state)]
    print(f"machine: {env.hardware_summary(torch.device('cpu'))}; torch {torch.__version__}")
    print(f"file: {args.path.name}, {args.path.stat().st_size / 1e6:.2f} MB, {len(sizes)} tensors, "
          f"{sum(sizes) / 1e6:.2f} MB of tensor data; median of {args.repeats} repeats\n")
    works = {"load, checked": lambda: checkpoint.load_checkpoint(args.path),
             "load, unchecked": lambda: checkpoint.load_checkpoint(args.path, verify=False),
             "hashing alone": lambda: checkpoint.tensor_checksums(state)}
    if isinstance(state.get("meta"), dict) and "model" in state:
        works["load_model (checked)"] = lambda: checkpoint.load_model(args.path)
    seconds = median_seconds(works, args.repeats)

    print("  ".join(f"{name:>20}" for name in seconds))
    print("  ".join(f"{value * 1e3:>17.1f} ms" for value in seconds.values()))
    extra = seconds["load, checked"] - seconds["load, unchecked"]
    print(f"\nthe check adds {extra * 1e3:.1f} ms to load_checkpoint ({extra / seconds['load, unchecked']:+.0%}); "
          f"hashing runs at {sum(sizes) / seconds['hashing alone'] / 1e9:.2f} GB/s of tensor data")


if __name__ == "__main__":
    main()
