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
(``train.autocast_speedup``, as the notebook decides; 1.41x in the run quoted, on the course's CPU, which
has AVX512-BF16), and test-time flips. Its test accuracy is printed with and without the flips.

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
import torch.nn.functional as F
from torch.utils.data import DataLoader

from helpers import data, env, fashion_csv, files, finder, metrics, models, transforms
from helpers import train as course_train
from helpers.recipes import BF16_MIN_SPEEDUP, FASHION_COURSE, FASHION_SOURCE, SPLIT_SEED, VAL_FRACTION, Recipe

BATCH = 256           # loading benchmark batch size


def prepare(images: torch.Tensor, recipe: Recipe, train: bool, generator: torch.Generator) -> torch.Tensor:
    """Return a uint8 batch as the float input `recipe` expects (augmented when training)."""
    if train and (recipe.padding or recipe.flip):
        images = transforms.random_crop_flip(images, recipe.padding, recipe.flip, generator=generator)
    mean, std = (data.FASHION_MEAN, data.FASHION_STD) if recipe.normalize else ((0.0,), (1.0,))
    images = transforms.to_float(images, mean, std)
    return images.contiguous(memory_format=torch.channels_last) if recipe.channels_last else images


def autocast(recipe: Recipe):
    """Return the recipe's bfloat16 autocast context (a no-op when it trains in float32)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16)


def accuracy(model: torch.nn.Module, loader: DataLoader, recipe: Recipe, generator: torch.Generator,
             tta: bool = False) -> float:
    """Return the accuracy of `model` on `loader` (with test-time flips if `tta`)."""
    model.eval()
    correct = seen = 0
    with torch.inference_mode(), autocast(recipe):
        for images, labels in loader:
            images = prepare(images, recipe, False, generator)
            scores = model(images).float().log_softmax(1)
            if tta:
                scores = scores + model(images.flip(3)).float().log_softmax(1)
            correct += (scores.argmax(1) == labels).sum().item()
            seen += len(labels)
    return correct / seen


def bf16_speedup(recipe: Recipe, train_set) -> float:
    """Return how much faster `recipe`'s training step runs under bf16 autocast here (as lesson 03 decides)."""
    generator = torch.Generator().manual_seed(0)
    model = models.build_model(recipe.model, len(data.FASHION_CLASSES))
    images, labels = train_set[list(range(recipe.batch_size))]
    images = prepare(images, recipe, True, generator)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return course_train.autocast_speedup(model, images, labels)


def train(recipe: Recipe, train_set, val_set, test_set, seed: int) -> dict:
    """Train `recipe` from scratch; return its times, images/s and accuracies."""
    generator = env.seed_everything(seed)
    model = models.build_model(recipe.model, len(data.FASHION_CLASSES))
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_loader = data.batch_loader(train_set, recipe.batch_size, shuffle=True, generator=generator,
                                            drop_last=True)
    val_loader = data.batch_loader(val_set, 1024)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, fused=recipe.fused_adam or None)
    scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=recipe.epochs * len(train_loader))
                 if recipe.one_cycle else None)
    wall, cpu, seen = time.perf_counter(), time.process_time(), 0
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        for images, labels in train_loader:
            with autocast(recipe):
                logits = model(prepare(images, recipe, True, generator))
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            seen += len(labels)
        val_acc = accuracy(model, val_loader, recipe, generator)
        print(f"  {recipe.name} epoch {epoch}/{recipe.epochs}  last batch loss {loss.item():.3f}  val_acc {val_acc:.4f}  "
              f"{time.perf_counter() - wall:.0f} s", flush=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    test_loader = data.batch_loader(test_set, 1024)
    test_acc = accuracy(model, test_loader, recipe, generator, recipe.tta)
    test_acc_no_tta = accuracy(model, test_loader, recipe, generator) if recipe.tta else test_acc
    return {"recipe": asdict(recipe), "seed": seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "train_images_per_s": round(seen / wall), "val_acc": round(val_acc, 4), "test_acc": round(test_acc, 4),
            "test_acc_no_tta": round(test_acc_no_tta, 4),
            "parameters": models.count_parameters(model)}


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
        course = FASHION_COURSE
        speedup = bf16_speedup(FASHION_COURSE, train_set)
        report["bf16_speedup"] = round(speedup, 2)
        if args.fp32 or speedup <= BF16_MIN_SPEEDUP:
            course = replace(FASHION_COURSE, bf16=False)
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
