"""Training recipes as data: the settings a lesson trains with, in one place.

A recipe says what to train and how: the network, epochs, batch size, AdamW's rate and weight decay,
the learning-rate schedule, label smoothing, the augmentation of each training batch, the memory
layout, the precision and test-time flips. Lessons, programs and benchmarks read the same objects
(``RECIPE = recipes.FASHION_COURSE`` in lesson 03's setup cell; ``scripts/bench_fashion_mnist.py``
imports it too), so a benchmark measures what its lesson runs. ``train.fit_recipe`` trains a recipe
with ``train.fit``. This module holds data only and imports no trainer.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

SCHEDULES = ("constant", "step", "cosine", "onecycle")   # train.make_scheduler; each stepped every batch
AUGMENTS = ("crop_flip", "faces")                        # what `Recipe.augment` may say


@dataclass(frozen=True)
class Recipe:
    """One way to train a classifier: the network, the optimiser and schedule, and the data handling."""
    name: str
    model: str                     # a name in models.MODELS
    epochs: int                    # the length of the run, and of the schedule laid out over it
    batch_size: int
    lr: float                      # AdamW's learning rate: the peak of the schedule for "onecycle"
    schedule: str = "onecycle"     # one of SCHEDULES, stepped every batch
    weight_decay: float = 0.0      # AdamW's decoupled weight decay (0: the same steps as Adam)
    label_smoothing: float = 0.0   # CrossEntropyLoss(label_smoothing=...) for the training loss
    augment: str = "crop_flip"     # "crop_flip": shifts of up to `padding` px and, if `flip`, mirrored images
                                   # (transforms.random_crop_flip); "faces": lesson 04's zoom, rotation, shift,
                                   # flip, contrast and `erase` (transforms.FaceBatchTransform)
    padding: int = 0               # "crop_flip": random shift of up to this many pixels (0 = none)
    flip: bool = False             # "crop_flip": mirror half of the training images
    erase: float = 0.0             # "faces": share of training images with one random rectangle erased
    input_size: int | None = None  # side of the square model input in px; None = the images' own size
    channels_last: bool = True     # the memory layout of the images and the model
    normalize: bool = True         # subtract the dataset's mean, divide by its std (else pixels in 0-1)
    amp: bool | None = False       # mixed precision (train.Amp): bfloat16 autocast on a CPU or MPS, float16 +
                                   # GradScaler on CUDA; None = on CUDA only. Decide it with with_measured_precision
    tta: bool = False              # test-time flips: add the log-probabilities of each image and its mirror image
    fused_adam: bool = False       # AdamW(fused=True): one call updates all the weights
    patience: int | None = None    # stop after this many epochs without a better validation accuracy; None = never

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}; choose one of {SCHEDULES}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment={self.augment!r}; choose one of {AUGMENTS}")


AMP_MIN_SPEEDUP = 1.2          # mixed precision only for a clear gain, not timing noise
VAL_FRACTION = 0.1             # of the training CSV, a stratified seeded split (6,000 of 60,000 images)
SPLIT_SEED = 42                # the seed of that split, in the lesson and in the benchmark

# Lesson 03's source: its CNN, Adam 1e-3, batch 256, 20 epochs, float32, no augmentation.
FASHION_SOURCE = Recipe("source", "source_cnn", epochs=20, batch_size=256, lr=1e-3, schedule="constant",
                        channels_last=False, normalize=False)
# The course's recipe, chosen in tuning runs on a 2-core CPU (lesson 03 explains each part).
FASHION_COURSE = Recipe("course", "fashion_cnn", epochs=9, batch_size=256, lr=4e-3, schedule="onecycle", flip=True,
                        label_smoothing=0.1, amp=True, tta=True, fused_adam=True)

# Lesson 04's way to train a network on FER2013 faces held in memory (data.preload_faces); the epochs
# are section 6's run, with early stopping as a guard.
FER_COURSE = Recipe("fer", "emotionnet", epochs=88, batch_size=128, lr=3e-3, schedule="onecycle", weight_decay=0.05,
                    label_smoothing=0.1, augment="faces", erase=0.5, input_size=48, amp=None, patience=10)
FER_SPLIT_SEED = 42                # lesson 04's seeded, stratified split of the training folder ...
FER_VAL_FRACTION = 0.1             # ... into training and validation parts (lesson 06 rebuilds the same parts)


def with_measured_precision(recipe: Recipe, speedup: float) -> Recipe:
    """Return `recipe` with mixed precision kept on only where `speedup` (``train.precision_speedup``) is above
    AMP_MIN_SPEEDUP; the one rule lesson 03, its solutions and the benchmark share."""
    return replace(recipe, amp=bool(recipe.amp) and speedup > AMP_MIN_SPEEDUP)

