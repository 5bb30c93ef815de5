"""Training recipes as data: the settings a lesson trains with, in one place.

A lesson reads its recipe from here (``RECIPE = recipes.FASHION_COURSE`` in lesson 03's setup cell),
and the benchmark scripts import the same object, so a benchmark measures what its lesson runs.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """One way to train a Fashion-MNIST classifier: the model, optimiser settings and data handling."""
    name: str
    model: str                 # a name in models.MODELS
    epochs: int
    batch_size: int
    lr: float                  # Adam; the peak LR when one_cycle is on
    one_cycle: bool            # OneCycleLR, stepped every batch
    padding: int               # random shift of up to this many pixels (0 = none) on every training batch
    flip: bool                 # random horizontal flip on every training batch
    label_smoothing: float     # CrossEntropyLoss(label_smoothing=...) for the training loss
    channels_last: bool        # the memory layout of the images and the model
    normalize: bool            # subtract FASHION_MEAN, divide by FASHION_STD (else pixels in 0-1)
    bf16: bool = False         # mixed precision where it measures faster (see with_measured_precision): bfloat16
                               # autocast on a CPU (the machine it was tuned on), float16 + GradScaler on CUDA
    tta: bool = False          # test-time flips: add the log-probabilities of each image and its mirror image
    fused_adam: bool = False   # Adam(fused=True): one call updates all the weights


BF16_MIN_SPEEDUP = 1.2         # mixed precision only for a clear gain, not timing noise
VAL_FRACTION = 0.1             # of the training CSV, a stratified seeded split (6,000 of 60,000 images)
SPLIT_SEED = 42                # the seed of that split, in the lesson and in the benchmark

# Lesson 03's source: its CNN, Adam 1e-3, batch 256, 20 epochs, float32, no augmentation.
FASHION_SOURCE = Recipe("source", "source_cnn", epochs=20, batch_size=256, lr=1e-3, one_cycle=False, padding=0,
                        flip=False, label_smoothing=0.0, channels_last=False, normalize=False)
# The course's recipe, chosen in tuning runs on a 2-core CPU (lesson 03 explains each part).
FASHION_COURSE = Recipe("course", "fashion_cnn", epochs=9, batch_size=256, lr=4e-3, one_cycle=True, padding=0,
                        flip=True, label_smoothing=0.1, channels_last=True, normalize=True, bf16=True, tta=True,
                        fused_adam=True)


def prepare(images, recipe: Recipe, train: bool, generator=None):
    """Return a uint8 batch as the float input `recipe` expects (shifted and flipped when training)."""
    import torch

    from helpers import data, transforms

    if train and (recipe.padding or recipe.flip):
        images = transforms.random_crop_flip(images, recipe.padding, recipe.flip, generator=generator)
    mean, std = (data.FASHION_MEAN, data.FASHION_STD) if recipe.normalize else ((0.0,), (1.0,))
    images = transforms.to_float(images, mean, std)
    return images.contiguous(memory_format=torch.channels_last) if recipe.channels_last else images


def amp(recipe: Recipe, device="cpu"):
    """Return the ``train.Amp`` that `recipe` trains with on `device`: off when ``recipe.bf16`` is False,
    else bfloat16 autocast on a CPU or MPS and float16 autocast with a GradScaler on CUDA (a T4 has no
    bfloat16 units; float16 runs on every CUDA GPU's tensor cores), the precision that
    ``train.autocast_speedup`` measures there."""
    from helpers import train

    return train.Amp(device, enabled=recipe.bf16)


def autocast(recipe: Recipe, device="cpu"):
    """Return the recipe's autocast context on `device` (a no-op when it trains in float32)."""
    return amp(recipe, device).autocast()


def precision_speedup(recipe: Recipe, train_set, device="cpu", batch_size: int | None = None) -> float:
    """Return how many times faster a training step of `recipe`'s model runs on `device` in the mixed
    precision ``amp`` gives there than in float32 (``train.autocast_speedup``, on a fresh model and the
    first `batch_size` training images, prepared as training prepares them); 0.0 where it cannot run."""
    import torch

    from helpers import data, models, train

    generator = torch.Generator().manual_seed(0)
    model = models.build_model(recipe.model, len(data.FASHION_CLASSES)).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    images, labels = train_set[list(range(batch_size or recipe.batch_size))]
    return train.autocast_speedup(model, prepare(images, recipe, True, generator), labels)


def with_measured_precision(recipe: Recipe, speedup: float) -> Recipe:
    """Return `recipe` with mixed precision kept on only where `speedup` (``precision_speedup``) is above
    BF16_MIN_SPEEDUP; the one rule lesson 03, its solutions and the benchmark share."""
    from dataclasses import replace

    return replace(recipe, bf16=recipe.bf16 and speedup > BF16_MIN_SPEEDUP)


def fashion_accuracy(model, loader, recipe: Recipe, tta: bool = False) -> float:
    """Return the accuracy of `model` on `loader` (uint8 batches), with test-time flips if `tta`, on the model's device."""
    import torch

    from helpers import train

    device = train.model_device(model)
    model.eval()
    correct = seen = 0
    with torch.inference_mode(), autocast(recipe, device):
        for images, labels in loader:
            images, labels = prepare(images, recipe, False).to(device), labels.to(device)
            scores = model(images).float().log_softmax(1)
            if tta:
                scores = scores + model(images.flip(3)).float().log_softmax(1)
            correct += (scores.argmax(1) == labels).sum().item()
            seen += len(labels)
    return correct / seen


def train_fashion(recipe: Recipe, train_set, val_set, test_set, seed: int, *, model_args: dict | None = None,
                  on_epoch=None, log=print, device="cpu") -> dict:
    """Train `recipe` from scratch on Fashion-MNIST (lesson 03's loop) on `device`; return its figures and model.

    The sets are ``data.TensorImages`` of uint8 images, augmented on the CPU (with the seeded generator)
    and then moved to `device`. The recipe trains in the precision ``amp(recipe, device)`` gives; decide
    ``recipe.bf16`` with ``with_measured_precision`` first. Every epoch ends with the validation accuracy
    (logged, and passed to ``on_epoch(epoch, figures)`` if given); the model of the last epoch is
    scored once on `test_set`, with and without test-time flips. The returned dict holds the wall and
    CPU time of training and validation, training images/s, accuracies, the per-epoch history and the
    model itself (under ``"model"``).
    """
    import time

    import torch
    import torch.nn.functional as F

    from helpers import data, env, metrics, models

    device = torch.device(device)
    generator = env.seed_everything(seed)
    model = models.build_model(recipe.model, len(data.FASHION_CLASSES), **(model_args or {})).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    mixed = amp(recipe, device)
    train_loader = data.batch_loader(train_set, recipe.batch_size, shuffle=True, generator=generator, drop_last=True)
    val_loader = data.batch_loader(val_set, 1024)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, fused=recipe.fused_adam or None)
    scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=recipe.epochs * len(train_loader))
                 if recipe.one_cycle else None)
    history = {"train_loss": [], "val_acc": []}
    wall, cpu, seen = time.perf_counter(), time.process_time(), 0
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        total_loss = 0.0
        for images, labels in train_loader:
            images, labels = prepare(images, recipe, True, generator).to(device), labels.to(device)
            with mixed.autocast():
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad()
            mixed.backward_step(loss, optimizer)     # loss.backward() and optimizer.step(), scaled on CUDA
            if scheduler is not None:
                scheduler.step()
            seen += len(labels)
            total_loss += loss.item() * len(labels)
        history["train_loss"].append(total_loss / (len(train_loader) * recipe.batch_size))
        history["val_acc"].append(fashion_accuracy(model, val_loader, recipe))
        if on_epoch is not None:
            on_epoch(epoch, {key: values[-1] for key, values in history.items()})
        if log is not None:
            log(f"  {recipe.name} epoch {epoch}/{recipe.epochs}  train loss {history['train_loss'][-1]:.3f}  "
                f"val_acc {history['val_acc'][-1]:.4f}  {time.perf_counter() - wall:.0f} s")
    metrics.synchronize(device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    test_loader = data.batch_loader(test_set, 1024)
    test_acc = fashion_accuracy(model, test_loader, recipe, recipe.tta)
    test_acc_no_tta = fashion_accuracy(model, test_loader, recipe) if recipe.tta else test_acc
    return {"recipe": recipe, "seed": seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "train_images_per_s": round(seen / wall), "val_acc": round(history["val_acc"][-1], 4),
            "test_acc": round(test_acc, 4), "test_acc_no_tta": round(test_acc_no_tta, 4),
            "parameters": models.count_parameters(model), "history": history, "model": model}


# ---------------------------------------------------------------- FER2013 (lesson 04)

@dataclass(frozen=True)
class FaceRecipe:
    """Lesson 04's way to train a network on FER2013 faces held in memory (``data.preload_faces``)."""
    image_size: int = 48
    batch_size: int = 128
    max_lr: float = 3e-3           # AdamW, the peak of a OneCycle schedule stepped every batch
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    erase: float = 0.5             # share of training faces with one random rectangle erased
    patience: int = 10             # epochs without a higher validation accuracy before stopping


FER_COURSE = FaceRecipe()
FER_SPLIT_SEED = 42                # lesson 04's seeded, stratified split of the training folder ...
FER_VAL_FRACTION = 0.1             # ... into training and validation parts (lesson 06 rebuilds the same parts)


def train_on_faces(model, train_part, val_part, device, num_epochs: int, mean: tuple[float, ...],
                   std: tuple[float, ...], recipe: FaceRecipe = FER_COURSE, checkpoint_dir=None, meta=None,
                   progress: bool = True):
    """Train `model` on the TensorImages `train_part` with `recipe` for `num_epochs` (lesson 04's loop); return the History.

    Batches are augmented on `device` (``transforms.FaceBatchTransform``) in channels_last layout; the
    epoch is chosen by validation accuracy and, with `checkpoint_dir`, its weights are in ``best.pt``.
    A 3-value `mean`/`std` turns the gray faces into 3-channel input (for RGB networks).
    """
    import torch
    import torch.nn.functional as F

    from helpers import data, train, transforms

    def in_channels_last(transform):
        return lambda images: transform(images).contiguous(memory_format=torch.channels_last)

    generator = torch.Generator().manual_seed(torch.initial_seed() % 2**63)
    augment = transforms.FaceBatchTransform(recipe.image_size, mean, std, train=True, erase=recipe.erase)
    plain = transforms.FaceBatchTransform(recipe.image_size, mean, std)
    train_loader = data.DeviceLoader(data.make_loader(train_part, recipe.batch_size, shuffle=True, generator=generator),
                                     device, in_channels_last(augment))
    val_loader = data.DeviceLoader(data.make_loader(val_part, 512), device, in_channels_last(plain))
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.max_lr, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.max_lr,
                                                    total_steps=num_epochs * len(train_loader))
    config = train.FitConfig(num_epochs=num_epochs, patience=recipe.patience, monitor="val_acc", scheduler_step="batch",
                             checkpoint_dir=checkpoint_dir, meta=meta, progress=progress,
                             loss_fn=lambda logits, labels: F.cross_entropy(logits, labels,
                                                                            label_smoothing=recipe.label_smoothing))
    return train.fit(model, train_loader, val_loader, optimizer, device, config, scheduler)
