"""Lesson 03 benchmark: the source's recipe vs the course's, and the two CSV Dataset paths, side by side.

    python scripts/bench_fashion_mnist.py --seeds 0 1 2                   # everything (about 10 min on 2 CPU cores)
    python scripts/bench_fashion_mnist.py --part loading                  # only the Dataset paths (seconds)
    python scripts/bench_fashion_mnist.py --part training --fp32          # the course's recipe without bf16

Training: both recipes train on the same 54,000 images (the training CSV minus a seeded, stratified
6,000-image validation split, the one lesson 03 makes), validate after every epoch, and are then scored once on the 10,000
test images. The time is wall-clock (and process CPU time) from the first training batch to the end
of the last validation; reading the CSV is common to both and not counted, and so is the final test
scoring. The source's recipe gets the same preloaded tensors as ours (it would be slower still with
its per-row PIL pipeline) and trains in float32, as the source does.

The course's recipe (``helpers.recipes.FASHION_COURSE``, the object lesson 03 reads its settings from): models.FashionCNN, Adam (fused) with a one-cycle schedule, flips, label smoothing,
channels_last, bfloat16 autocast where a training step measures more than 1.2x faster with it
(``recipes.precision_speedup`` and ``recipes.with_measured_precision``, the rule lesson 03 follows; 1.41x in the run quoted, on the course's CPU, which
has AVX512-BF16), and test-time flips. Its test accuracy is printed with and without the flips.

``figures/03_benchmark.json`` holds the run quoted in the notebook (``--seeds 0 1 2 --json ...``).

Loading: images per second through a DataLoader (batch 256, one process) over the test CSV,
including the conversion to float, for the per-row PIL path, the tensor Dataset item by item, and
the tensor Dataset a whole batch at a time.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from helpers import data, env, fashion_csv, files, finder, metrics, recipes
from helpers.recipes import FASHION_COURSE, FASHION_SOURCE, SPLIT_SEED, VAL_FRACTION, Recipe

BATCH = 256           # loading benchmark batch size


def bf16_speedup(recipe: Recipe, train_set, device: torch.device) -> float:
    """Return how much faster `recipe`'s training step runs here in the mixed precision it would train with
    (bfloat16 autocast on a CPU), as lesson 03 decides (``recipes.precision_speedup``)."""
    return recipes.precision_speedup(recipe, train_set, device)


def train(recipe: Recipe, train_set, val_set, test_set, seed: int) -> dict:
    """Train `recipe` from scratch (``recipes.train_fashion``, lesson 03's loop); return its figures for the report."""
    run = recipes.train_fashion(recipe, train_set, val_set, test_set, seed, log=lambda line: print(line, flush=True),
                                device="cpu")
    return {"recipe": asdict(recipe), **{key: run[key] for key in ("seed", "wall_s", "cpu_s", "train_images_per_s",
                                                                 "val_acc", "test_acc", "test_acc_no_tta", "parameters")}}


def bench_loading(test_csv: Path) -> dict:
    """Return images/s of the per-row PIL path and of the tensor Dataset (item by item and batched)."""
    fast, slow = fashion_csv.load_fashion_csv(test_csv), fashion_csv.PILFashionCSV(test_csv)
    generator = torch.Generator().manual_seed(0)
    rates = {
        "pil_per_item": metrics.loader_images_per_second(DataLoader(slow, BATCH, shuffle=True, generator=generator)),
        "pil_per_item_2_workers": metrics.loader_images_per_second(DataLoader(slow, BATCH, shuffle=True, generator=generator,
                                                               num_workers=2, persistent_workers=True)),
        "tensor_per_item": metrics.loader_images_per_second(DataLoader(fast, BATCH, shuffle=True, generator=generator)),
        "tensor_per_batch": metrics.loader_images_per_second(data.batch_loader(fast, BATCH, shuffle=True, generator=generator)),
    }
    for name, rate in rates.items():
        print(f"  {name:<24}{rate:>12,.0f} images/s   {rate / rates['pil_per_item']:6.1f}x the PIL path", flush=True)
    return {name: round(rate) for name, rate in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "loading", "training"], default="all")
    parser.add_argument("--data", help="folder with the Kaggle CSVs (default: COURSE_DATA or the download)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds for the course's recipe")
    parser.add_argument("--source-seeds", type=int, nargs="+", default=[0], help="seeds for the source's recipe")
    parser.add_argument("--fp32", action="store_true", help="train the course's recipe in float32 even where bf16 is faster")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    found = finder.find_fashion_mnist_csv(args.data)
    device = env.get_device("cpu")
    report = {"hardware": env.hardware_summary(device), "torch": torch.__version__, "data": found.source}
    print(f"{report['hardware']}, torch {report['torch']}, data: {found.source}", flush=True)
    if args.part in ("all", "loading"):
        print("Loading (test CSV through a DataLoader, batch 256, one process):", flush=True)
        report["loading_images_per_s"] = bench_loading(found.test)
    if args.part in ("all", "training"):
        full = fashion_csv.load_fashion_csv(found.train)
        train_idx, val_idx = data.split_indices(full.targets, torch.Generator().manual_seed(SPLIT_SEED),
                                                (1 - VAL_FRACTION, VAL_FRACTION))
        train_set, val_set = full.subset(train_idx), full.subset(val_idx)
        test_set = fashion_csv.load_fashion_csv(found.test)
        speedup = bf16_speedup(FASHION_COURSE, train_set, device)
        report["bf16_speedup"] = round(speedup, 2)
        course = recipes.with_measured_precision(FASHION_COURSE, speedup)   # bf16 only above BF16_MIN_SPEEDUP
        if args.fp32:
            course = replace(course, bf16=False)
        print(f"bf16 autocast: {speedup:.2f}x the float32 speed of a training step here; the course's recipe "
              f"trains in {'bfloat16' if course.bf16 else 'float32'}", flush=True)
        runs = [train(FASHION_SOURCE, train_set, val_set, test_set, s) for s in args.source_seeds]
        runs += [train(course, train_set, val_set, test_set, s) for s in args.seeds]
        report["training"] = runs
        print("\nrecipe  seed  epochs  wall s  CPU s  train img/s  val acc  test acc  (no test flips)")
        for run in runs:
            print(f"{run['recipe']['name']:<8}{run['seed']:>4}{run['recipe']['epochs']:>8}{run['wall_s']:>8.0f}"
                  f"{run['cpu_s']:>7.0f}{run['train_images_per_s']:>13,}{run['val_acc']:>9.2%}{run['test_acc']:>10.2%}"
                  f"{run['test_acc_no_tta']:>11.2%}")
        mean = {name: {key: sum(r[key] for r in runs if r["recipe"]["name"] == name) /
                       sum(r["recipe"]["name"] == name for r in runs) for key in ("wall_s", "cpu_s", "test_acc")}
                for name in ("source", "course")}
        report["wall_ratio"] = round(mean["course"]["wall_s"] / mean["source"]["wall_s"], 3)
        report["cpu_ratio"] = round(mean["course"]["cpu_s"] / mean["source"]["cpu_s"], 3)
        print(f"\ncourse / source time: {report['wall_ratio']:.2f} (wall), {report['cpu_ratio']:.2f} (CPU); "
              f"mean test accuracy {mean['source']['test_acc']:.2%} (source) vs {mean['course']['test_acc']:.2%} (course)")
    if args.json:
        files.atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
