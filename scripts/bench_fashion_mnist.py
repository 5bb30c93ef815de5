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

Both recipes train with the course's one training loop, ``train.fit`` (through ``train.fit_recipe``):
whole batches from the in-memory tensors, AdamW (weight decay 0, so the steps of Adam) with the
recipe's schedule stepped every batch, cross-entropy with the recipe's label smoothing, in the
precision ``train.Amp(device, recipe.amp)`` gives; the test set is scored with ``train.evaluate``.

The course's recipe (``helpers.recipes.FASHION_COURSE``, the object lesson 03 reads its settings from):
models.FashionCNN, fused AdamW with a one-cycle schedule, flips, label smoothing, channels_last,
bfloat16 autocast where a training step measures more than 1.2x faster with it
(``train.precision_speedup`` and ``recipes.with_measured_precision``, the rule lesson 03 follows; 1.41x
in the run quoted, on the course's CPU, which has AVX512-BF16), and test-time flips. Its test accuracy
is printed with and without the flips.

``figures/03_benchmark.json`` holds the run quoted in the notebook (``--seeds 0 1 2 --json ...``).

Loading: images per second through a DataLoader (batch 256, one process) over the test CSV,
including the conversion to float, for the per-row PIL path, the tensor Dataset item by item, and
the tensor Dataset a whole batch at a time.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from helpers import data, env, fashion_csv, files, finder, metrics, models, recipes, train
from helpers.recipes import FASHION_COURSE, FASHION_SOURCE, SPLIT_SEED, VAL_FRACTION, Recipe

BATCH = 256           # loading benchmark batch size


MEAN, STD = data.FASHION_MEAN, data.FASHION_STD


def amp_speedup(recipe: Recipe, train_set, device: torch.device) -> float:
    """Return how much faster `recipe`'s training step runs here in the mixed precision it would train with
    (bfloat16 autocast on a CPU), as lesson 03 decides (``train.precision_speedup``)."""
    return train.precision_speedup(recipe, train_set, MEAN, STD, device)


def train_recipe(recipe: Recipe, train_set, val_set, test_set, seed: int, device: torch.device) -> dict:
    """Train `recipe` from scratch with ``train.fit_recipe``; return its figures for the report.

    The time is that of the whole run, training and the validation after every epoch; the model of
    the last epoch is then scored on `test_set` with and without test-time flips (if the recipe uses them)."""
    generator = env.seed_everything(seed)
    model = models.build_model(recipe.model, len(data.FASHION_CLASSES))
    print(f"{recipe.name}, seed {seed}:", flush=True)
    metrics.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    history = train.fit_recipe(model, recipe, train_set, val_set, device, MEAN, STD, generator=generator,
                               progress=False)
    metrics.synchronize(device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    test_loader = train.recipe_loader(test_set, recipe, device, MEAN, STD)
    amp = train.Amp(device, recipe.amp)
    test_acc = train.evaluate(model, test_loader, device, amp, tta=recipe.tta).acc
    test_acc_no_tta = train.evaluate(model, test_loader, device, amp).acc if recipe.tta else test_acc
    images = recipe.epochs * (len(train_set) // recipe.batch_size) * recipe.batch_size
    return {"recipe": asdict(recipe), "seed": seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "s_per_epoch": round(wall / len(history.val_acc), 2), "train_images_per_s": round(images / wall),
            "val_acc": round(history.val_acc[-1], 4), "test_acc": round(test_acc, 4),
            "test_acc_no_tta": round(test_acc_no_tta, 4), "parameters": models.count_parameters(model)}


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
    parser.add_argument("--epochs", type=int, help="train each recipe this many epochs (default: the recipe's own)")
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
        speedup = amp_speedup(FASHION_COURSE, train_set, device)
        report["bf16_speedup"] = round(speedup, 2)
        course = recipes.with_measured_precision(FASHION_COURSE, speedup)   # bf16 only above AMP_MIN_SPEEDUP
        if args.fp32:
            course = replace(course, amp=False)
        source = FASHION_SOURCE
        if args.epochs:
            source, course = replace(source, epochs=args.epochs), replace(course, epochs=args.epochs)
        print(f"bf16 autocast: {speedup:.2f}x the float32 speed of a training step here; the course's recipe "
              f"trains in {'bfloat16' if course.amp else 'float32'}", flush=True)
        runs = [train_recipe(source, train_set, val_set, test_set, s, device) for s in args.source_seeds]
        runs += [train_recipe(course, train_set, val_set, test_set, s, device) for s in args.seeds]
        report["training"] = runs
        print("\nrecipe  seed  epochs  wall s  s/epoch  CPU s  train img/s  val acc  test acc  (no test flips)")
        for run in runs:
            print(f"{run['recipe']['name']:<8}{run['seed']:>4}{run['recipe']['epochs']:>8}{run['wall_s']:>8.0f}"
                  f"{run['s_per_epoch']:>9.1f}"
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
