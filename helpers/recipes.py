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
    bf16: bool = False         # bfloat16 autocast where it measures faster (train.autocast_speedup > BF16_MIN_SPEEDUP)
    tta: bool = False          # test-time flips: add the log-probabilities of each image and its mirror image
    fused_adam: bool = False   # Adam(fused=True): one call updates all the weights


BF16_MIN_SPEEDUP = 1.2         # bf16 only for a clear gain, not timing noise
VAL_FRACTION = 0.1             # of the training CSV, a stratified seeded split (6,000 of 60,000 images)
SPLIT_SEED = 42                # the seed of that split, in the lesson and in the benchmark

# Lesson 03's source: its CNN, Adam 1e-3, batch 256, 20 epochs, float32, no augmentation.
FASHION_SOURCE = Recipe("source", "source_cnn", epochs=20, batch_size=256, lr=1e-3, one_cycle=False, padding=0,
                        flip=False, label_smoothing=0.0, channels_last=False, normalize=False)
# The course's recipe, chosen in tuning runs on a 2-core CPU (lesson 03 explains each part).
FASHION_COURSE = Recipe("course", "fashion_cnn", epochs=9, batch_size=256, lr=4e-3, one_cycle=True, padding=0,
                        flip=True, label_smoothing=0.1, channels_last=True, normalize=True, bf16=True, tta=True,
                        fused_adam=True)
