"""Training: the course's one training loop, ``fit``, with mixed precision, LR schedule, early stopping,
checkpoints written every epoch and exact resume; one epoch (``train_one_epoch``), ``evaluate`` (with
test-time flips if asked); and ``fit_recipe``, which trains a ``recipes.Recipe`` with ``fit``.

The model must return raw logits (never probabilities): the loss applies log-softmax itself.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers import checkpoint, data, metrics, models, recipes, transforms
from helpers.recipes import SCHEDULES

MONITORS = ("val_loss", "val_acc")   # lower is better, higher is better
CHECKPOINT_FORMAT = "course-checkpoint-1"


@dataclass
class History:
    """Per-epoch lists of metrics; ``plots.plot_history(history)`` draws them."""
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)            # learning rate at the start of each epoch
    epoch_time_s: list[float] = field(default_factory=list)  # training + validation, seconds
    best_epoch: int | None = None                            # 1-based epoch of the best checkpoint
    stopped_early: bool = False                              # early stopping (patience) ended the run
    out_of_time: bool = False                                # FitConfig.max_minutes ended this session's run


@dataclass
class FitConfig:
    """Options for ``fit``. Checkpoints and resume are off unless `checkpoint_dir`/`resume_from` are set."""
    num_epochs: int = 10                    # the length of the run (and of any schedule laid out over it)
    max_minutes: float | None = None        # a time limit: stop when another epoch would end past it; None = none
    amp: bool | None = None                 # None: fp16 + GradScaler on CUDA, off elsewhere
    patience: int | None = None             # stop after this many epochs without improvement; None = never
    monitor: str = "val_loss"               # "val_loss" (lower is better) or "val_acc" (higher is better)
    scheduler_step: str = "epoch"           # "epoch", or "batch" for per-step schedules such as OneCycleLR
    checkpoint_dir: str | Path | None = None    # last.pt and best.pt, written atomically each epoch
    resume_from: str | Path | None = None   # a last.pt to continue exactly where it stopped
    loss_fn: Callable | None = None         # training loss on (logits, labels); None = cross-entropy
    progress: bool = True                   # tqdm progress bars (one per loop level)
    meta: checkpoint.ModelMeta | None = None    # what the model is, saved in every checkpoint
    on_epoch_end: Callable | None = None    # called as on_epoch_end(epoch, history) after each epoch, before its checkpoint


@dataclass
class EvalResult:
    """What ``evaluate`` measured: mean loss and accuracy per example, plus every logit and label
    (with test-time flips: the mean log-probabilities of each image and its mirror image)."""
    loss: float
    acc: float
    logits: torch.Tensor
    labels: torch.Tensor

    @property
    def preds(self) -> torch.Tensor:
        """Return the predicted class index of each example."""
        return self.logits.argmax(dim=1)


class Amp:
    """Automatic mixed precision as one switch: a context and a backward step that do nothing when off.

    On CUDA: float16 autocast plus a GradScaler (small fp16 gradients would underflow to 0 without
    it). Elsewhere (CPU, MPS): bfloat16 autocast, which needs no scaler; off by default because it
    pays only on CPUs with bf16 units and is slower elsewhere: ``autocast_speedup`` measures it.
    Lesson 04 writes the same step by hand before handing it to this class.
    """

    def __init__(self, device: torch.device, enabled: bool | None = None):
        self.device_type = torch.device(device).type      # "cuda", never "cuda:0": autocast wants the type
        self.enabled = self.device_type == "cuda" if enabled is None else bool(enabled)
        self.dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled and self.device_type == "cuda")

    def autocast(self) -> contextlib.AbstractContextManager:
        """Return the autocast context when on, else a context that does nothing."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate `loss` and step `optimizer` (through the GradScaler when it is enabled)."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def __repr__(self) -> str:
        if not self.enabled:
            return f"Amp(off, float32 on {self.device_type})"
        scaler = " + GradScaler" if self.scaler.is_enabled() else ""
        return f"Amp({self.device_type} autocast {str(self.dtype).removeprefix('torch.')}{scaler})"


def model_device(model: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """Return the device of `model`'s parameters (or buffers); `default` for a model that has neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device(default)


def training_images_per_s(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, amp: Amp | None = None,
                          *, transform: Callable | None = None, steps: int = 5, seconds: float = 0.0) -> float:
    """Return how many images/s a training step of `model` processes on this batch, on this machine.

    The batch is moved to the device of `model`'s parameters first (a CPU batch for a GPU model is
    fine), and the clock is read only after that device has finished its work. A step is `transform`
    (e.g. batch augmentation, if given), forward under `amp`, cross-entropy, backward and an AdamW
    update, timed with ``metrics.images_per_second`` after one warm-up step. Works on a copy: `model`
    (its weights and BatchNorm statistics) is left untouched.
    """
    device = model_device(model, images.device)
    images, labels = images.to(device), labels.to(device)
    probe = copy.deepcopy(model).train()
    amp = amp or Amp(device, enabled=False)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=1e-4)

    def step() -> int:
        with amp.autocast():
            loss = F.cross_entropy(probe(transform(images) if transform else images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_step(loss, optimizer)
        return len(labels)

    return metrics.images_per_second(step, device, min_steps=steps, min_seconds=seconds)


def autocast_speedup(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int = 5) -> float:
    """Return how many times faster a training step of `model` runs with mixed precision (``Amp`` on)
    than in float32, measured on this batch on the model's device; 0.0 where autocast is unavailable or fails.

    What is measured is what ``Amp(device, True)`` trains with there: float16 autocast with a
    GradScaler on CUDA, bfloat16 autocast on a CPU or MPS. Whether it pays depends on the hardware:
    CPUs with bf16 units (AVX512-BF16, AMX) and GPUs with tensor cores gain, other CPUs lose, so
    measure instead of guessing. `model` is left untouched.
    """
    device = model_device(model, images.device)
    amp = Amp(device, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # torch warns where it turns such an autocast off
        with torch.autocast(amp.device_type, dtype=amp.dtype):
            if not torch.is_autocast_enabled(amp.device_type):    # torch turned it off: no such autocast here
                return 0.0
    try:
        return (training_images_per_s(model, images, labels, amp, steps=steps)
                / training_images_per_s(model, images, labels, Amp(device, False), steps=steps))
    except RuntimeError:                                  # autocast exists, a kernel of this model does not
        return 0.0


def logits_of(output) -> torch.Tensor:
    """Return `output` if it is a logits tensor; raise a clear error for tuples and probabilities."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"The model returned a {type(output).__name__}, not a logits tensor. The loss "
                        f"needs raw logits: an ultralytics Classify head returns (probabilities, logits) "
                        f"in eval mode; wrap it so forward() returns the logits (see helpers.emotionnet).")
    if output.ndim == 2 and output.shape[1] > 1 and output.min() >= 0 \
            and torch.allclose(output.float().sum(1), torch.ones(len(output), device=output.device), atol=1e-4):
        raise ValueError("The model returned probabilities (each row is >= 0 and sums to 1), not logits. "
                         "Cross-entropy applies log-softmax itself: return the scores before softmax.")
    return output


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Return `tensor` on `device`; the copy to a CUDA device is asynchronous (``non_blocking``), where it
    can overlap with the GPU's work when the tensor sits in pinned memory; elsewhere it gains nothing."""
    device = torch.device(device)
    return tensor.to(device, non_blocking=device.type == "cuda")


def _progress(iterable, enabled: bool, desc: str, leave: bool = False):
    return tqdm(iterable, desc=desc, leave=leave, dynamic_ncols=True) if enabled else iterable


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, device: torch.device,
                    amp: Amp | None = None, *, loss_fn: Callable | None = None,
                    batch_scheduler=None, progress: bool = False) -> dict[str, float]:
    """Train for one pass over `loader`; return mean loss and accuracy per example.

    `batch_scheduler` (e.g. OneCycleLR) is stepped after every batch; epoch schedulers belong to the caller.
    """
    amp = amp or Amp(device, enabled=False)
    loss_fn = loss_fn or F.cross_entropy
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    bar = _progress(loader, progress, "train")
    for step, (images, labels) in enumerate(bar):
        images, labels = to_device(images, device), to_device(labels, device)
        with amp.autocast():
            logits = model(images)
            logits = logits_of(logits) if step == 0 else logits
            loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_step(loss, optimizer)
        if batch_scheduler is not None:
            batch_scheduler.step()
        total_loss += loss.detach().float() * len(labels)
        correct += (logits.detach().argmax(dim=1) == labels).sum()
        seen += len(labels)
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    if seen == 0:
        raise ValueError("The training loader yielded no batches; check the dataset and batch_size.")
    return {"loss": total_loss.item() / seen, "acc": correct.item() / seen}


def evaluate(model: nn.Module, loader, device: torch.device, amp: Amp | None = None,
             progress: bool = False, tta: bool = False) -> EvalResult:
    """Return mean cross-entropy and accuracy of `model` on `loader`, weighted per example, with all logits.

    The loss is the sum of per-example losses divided by the number of examples: one mean, so a short
    last batch counts exactly as much as its examples. With `tta` (test-time flips) the model also sees
    each image mirrored left-right, and the scores are the mean of the two log-probabilities.
    """
    amp = amp or Amp(device, enabled=False)
    model.eval()
    total_loss, all_logits, all_labels = 0.0, [], []
    with torch.inference_mode():
        for step, (images, labels) in enumerate(_progress(loader, progress, "eval")):
            images, labels = to_device(images, device), to_device(labels, device)
            with amp.autocast():
                logits = model(images)
                logits = logits_of(logits) if step == 0 else logits
                if tta:
                    logits = (logits.float().log_softmax(1) + model(images.flip(3)).float().log_softmax(1)) / 2
            total_loss += F.cross_entropy(logits.float(), labels, reduction="sum").item()
            all_logits.append(logits.float().cpu())
            all_labels.append(labels.cpu())
    if not all_labels:
        raise ValueError("The evaluation loader yielded no batches; check the dataset.")
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    acc = (logits.argmax(dim=1) == labels).float().mean().item()
    return EvalResult(loss=total_loss / len(labels), acc=acc, logits=logits, labels=labels)


def format_epoch(epoch: int, num_epochs: int, history: History) -> str:
    """Return the fixed-format summary line of one epoch (1-based `epoch`)."""
    i = epoch - 1
    return (f"epoch {epoch}/{num_epochs}  train_loss {history.train_loss[i]:.3f}  "
            f"val_loss {history.val_loss[i]:.3f}  val_acc {history.val_acc[i]:.3f}  "
            f"lr {history.lr[i]:.2e}  time {history.epoch_time_s[i]:.1f}s")


@dataclass
class _Run:
    """The state ``fit`` carries from epoch to epoch (everything a checkpoint must hold)."""
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    amp: Amp
    generator: torch.Generator | None
    config: FitConfig
    settings: dict = field(default_factory=dict)   # what a resumed run must share with this one
    history: History = field(default_factory=History)
    epoch: int = 0
    best: float | None = None
    bad_epochs: int = 0

    def state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": checkpoint.unwrap_model(self.model).state_dict(),
            "meta": self.config.meta.to_dict() if self.config.meta is not None else None,
            "settings": self.settings,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.amp.scaler.state_dict(),
            "amp": self.amp.enabled,
            "epoch": self.epoch,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "monitor": self.config.monitor,
            "history": dataclasses.asdict(self.history),
            "rng": checkpoint.rng_state(self.generator),
        }

    def restore(self, path: str | Path, device: torch.device) -> None:
        state = checkpoint.load_checkpoint(path, map_location=device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise checkpoint.CheckpointError(f"{path} is not a training checkpoint written by fit "
                                             f"(no format {CHECKPOINT_FORMAT!r}); resume needs its last.pt.")
        if self.config.meta is not None and state.get("meta") is not None:
            checkpoint.check_compatible(checkpoint.ModelMeta.from_dict(state["meta"], path),
                                        self.config.meta.model_name, self.config.meta.class_names, path)
        check_same_settings(state.get("settings") or {}, self.settings, path)
        checkpoint.load_weights(self.model, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.amp.scaler.is_enabled() and state["scaler"]:
            self.amp.scaler.load_state_dict(state["scaler"])
        if state.get("amp") is not None and bool(state["amp"]) != self.amp.enabled:
            warnings.warn(f"{Path(path).name} was trained with mixed precision {'on' if state['amp'] else 'off'}, "
                          f"this run has {self.amp!r}: training goes on, but not bit for bit as it would have "
                          f"without the stop. To match, pass FitConfig(amp={bool(state['amp'])}).", stacklevel=3)
        self.history = History(**state["history"])
        self.epoch, self.best, self.bad_epochs = state["epoch"], state["best"], state["bad_epochs"]
        checkpoint.set_rng_state(state["rng"], self.generator)

    def update_best(self, value: float) -> None:
        improved = self.best is None or (value < self.best if self.config.monitor == "val_loss" else value > self.best)
        if improved:
            self.best, self.bad_epochs, self.history.best_epoch = value, 0, self.epoch
        else:
            self.bad_epochs += 1


def run_settings(train_loader, optimizer: torch.optim.Optimizer) -> dict:
    """Return the settings a resumed run must share with the run it continues: each parameter group's
    learning rate as it was set (a one-cycle schedule's `max_lr`, else the rate the group started
    with), the batch size and the number of batches per epoch (None where a loader cannot tell)."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])   # what schedulers record; kept in the optimizer state
    return {"lr": [group.get("max_lr", group["initial_lr"]) for group in optimizer.param_groups],
            "batch_size": _batch_size(train_loader),
            "batches_per_epoch": _length(train_loader)}


def _length(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:                                   # an IterableDataset, a generator, TimeLimited
        return None


def _batch_size(loader) -> int | None:
    while loader is not None:
        for holder in (loader, getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
            if isinstance(getattr(holder, "batch_size", None), int):
                return holder.batch_size
        loader = getattr(loader, "loader", None)       # DeviceLoader, TimeLimited wrap another loader
    return None


# what a resumed run must share with the run it continues, and how a message names each: fit compares
# run_settings, course-train its config.json, ddp_train its checkpoint's config (each the keys it has)
RESUME_SETTINGS = {"data": "dataset", "classes": "classes", "model": "model", "epochs": "epochs",
                   "batch_size": "batch size", "lr": "learning rate", "schedule": "schedule",
                   "weight_decay": "weight decay", "label_smoothing": "label smoothing", "input_size": "input size",
                   "val_fraction": "validation fraction", "seed": "seed", "train_images": "training images",
                   "batches_per_epoch": "batches per epoch"}
FRESH_RUN = ("Resuming continues the saved run exactly, learning-rate schedule included, so build the optimizer "
             "and the loaders as that run did. To train with the new settings, start a fresh run "
             "(resume_from=None, a new checkpoint_dir).")


def check_same_settings(saved: dict, current: dict, path: str | Path, *, describe: Callable | None = None,
                        advice: str = FRESH_RUN, error: type[Exception] = checkpoint.CheckpointError,
                        none_is_unknown: bool = True) -> None:
    """Raise `error` naming each of the RESUME_SETTINGS in which `current` differs from the `saved` run
    that `path` holds. A setting that either dict lacks is not compared, nor (with `none_is_unknown`, as
    in ``run_settings``, where None means the loader could not tell) one that either holds as None.

    ``describe(key, saved_value, current_value)`` words one difference (default: "learning rate 0.004 in
    last.pt, 0.001 now"); `advice` ends the message.
    """
    describe = describe or (lambda key, was, now: f"{RESUME_SETTINGS[key]} {was} in {Path(path).name}, {now} now")
    known = [key for key in RESUME_SETTINGS if key in saved and key in current
             and not (none_is_unknown and (saved[key] is None or current[key] is None))]
    differ = [describe(key, saved[key], current[key]) for key in known if saved[key] != current[key]]
    if differ:
        raise error(f"cannot resume from {path}: this run differs from the one that wrote it ({'; '.join(differ)}). "
                    f"{advice}")


def fit(model: nn.Module, train_loader, val_loader, optimizer: torch.optim.Optimizer,
        device: torch.device, config: FitConfig | None = None, scheduler=None) -> History:
    """Train `model` for ``config.num_epochs`` epochs and return its History.

    The run ends sooner on early stopping (``config.patience``) or, with ``config.max_minutes``, when
    another epoch would end past that time limit; either is printed and recorded in the History.
    Each epoch prints one summary line and, with ``config.checkpoint_dir``, writes ``last.pt`` (and
    ``best.pt`` when the monitored metric improved). ``config.resume_from=last.pt`` continues where it
    stopped: weights, optimizer, scheduler, GradScaler, early-stopping state, history and every RNG
    state (bit for bit on a CPU; ``resume_check`` says what holds on a GPU).
    """
    config = config or FitConfig()
    if config.monitor not in MONITORS:
        raise ValueError(f"monitor={config.monitor!r}; use one of {MONITORS}")
    if config.scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step={config.scheduler_step!r}; use 'epoch' or 'batch'")
    run = _Run(model, optimizer, scheduler, Amp(device, config.amp),
               getattr(train_loader, "generator", None), config, run_settings(train_loader, optimizer))
    if config.resume_from is not None:
        run.restore(config.resume_from, device)
        print(f"resumed from epoch {run.epoch} of {Path(config.resume_from).name}")
    run.history.out_of_time = False                  # each session gets the whole time limit
    out_dir = Path(config.checkpoint_dir) if config.checkpoint_dir is not None else None
    start, first = time.perf_counter(), run.epoch + 1
    for epoch in _progress(range(first, config.num_epochs + 1), config.progress, "epochs", leave=True):
        if run.history.stopped_early or run.history.out_of_time:
            break
        _one_epoch(run, train_loader, val_loader, device)
        if config.patience is not None and run.bad_epochs >= config.patience and epoch < config.num_epochs:
            run.history.stopped_early = True
        used_s = time.perf_counter() - start          # _one_epoch synchronised the device
        if (config.max_minutes is not None and epoch < config.num_epochs
                and used_s + used_s / (epoch - first + 1) > config.max_minutes * 60):
            run.history.out_of_time = True            # the next epoch, at this session's mean pace, would pass the limit
        if config.on_epoch_end is not None:     # e.g. log the epoch to TensorBoard (lesson 07); before the checkpoint,
            config.on_epoch_end(epoch, run.history)     # so a stop in between repeats the epoch rather than loses it
        if out_dir is not None:
            checkpoint.save_checkpoint(out_dir / "last.pt", run.state())
            if run.history.best_epoch == epoch:
                checkpoint.save_checkpoint(out_dir / "best.pt", run.state())
        print(format_epoch(epoch, config.num_epochs, run.history))
        if run.history.stopped_early:
            print(f"early stop: no {config.monitor} improvement for {config.patience} epochs "
                  f"(best: epoch {run.history.best_epoch})")
        if run.history.out_of_time:
            resume = (f"resume from {os.path.relpath(out_dir / 'last.pt')} (FitConfig(resume_from=...)) to train the rest"
                      if out_dir is not None else "give the run more time or fewer epochs")
            print(f"time limit: stopped after epoch {epoch} of {config.num_epochs}, {used_s / 60:.1f} of "
                  f"{config.max_minutes:g} minutes used; another epoch would pass the limit. The schedule "
                  f"laid out over {config.num_epochs} epochs has not finished: {resume}.")
    return run.history


def _one_epoch(run: _Run, train_loader, val_loader, device: torch.device) -> None:
    metrics.synchronize(device)
    start = time.perf_counter()
    config, history = run.config, run.history
    history.lr.append(run.optimizer.param_groups[0]["lr"])
    per_batch = run.scheduler if config.scheduler_step == "batch" else None
    train = train_one_epoch(run.model, train_loader, run.optimizer, device, run.amp, loss_fn=config.loss_fn,
                            batch_scheduler=per_batch, progress=config.progress)
    val = evaluate(run.model, val_loader, device, run.amp, progress=config.progress)
    if not math.isfinite(train["loss"]):
        raise FloatingPointError(f"The training loss is {train['loss']} in epoch {run.epoch + 1}; lower the "
                                 f"learning rate (or check the inputs for NaN).")
    if run.scheduler is not None and config.scheduler_step == "epoch":
        if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            run.scheduler.step(val.loss if config.monitor == "val_loss" else val.acc)
        else:
            run.scheduler.step()
    run.epoch += 1
    history.train_loss.append(train["loss"])
    history.train_acc.append(train["acc"])
    history.val_loss.append(val.loss)
    history.val_acc.append(val.acc)
    metrics.synchronize(device)
    history.epoch_time_s.append(time.perf_counter() - start)
    run.update_best(val.loss if config.monitor == "val_loss" else val.acc)


# ---------------------------------------------------------------- training a recipe

def make_scheduler(name: str, optimizer: torch.optim.Optimizer, total_steps: int):
    """Return the learning-rate schedule `name` over `total_steps` optimizer steps (None for a constant rate).

    Every schedule here is stepped once per batch, so all four spread over the same steps:
    'step' divides the rate by 5 after each third, 'cosine' follows half a cosine from the rate
    down to 0, and 'onecycle' climbs from rate/25 to the rate over the first 30% and anneals to
    almost 0.
    """
    lr = optimizer.param_groups[0]["lr"]
    if name == "constant":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, total_steps // 3), gamma=0.2)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")


class RecipeTransform(nn.Module):
    """Turn a uint8 batch (B x C x H x W) into the float input `recipe` trains on: augmented as the recipe
    says (if `augment`), resized to ``recipe.input_size``, normalised with `mean`/`std` (when
    ``recipe.normalize``) and in the recipe's memory layout. A 3-value mean feeds a gray image to all
    three channels. Shifts and flips draw their random numbers on the CPU from `generator` (else torch's
    global RNG), the faces' augmentation from torch's global RNG."""

    def __init__(self, recipe: recipes.Recipe, mean: tuple[float, ...], std: tuple[float, ...], augment: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.recipe, self.augment, self.generator = recipe, augment, generator
        if not recipe.normalize:
            mean, std = (0.0,) * len(mean), (1.0,) * len(std)
        self.mean, self.std = tuple(mean), tuple(std)
        faces = augment and recipe.augment == "faces"
        self.finish = (transforms.FaceBatchTransform(recipe.input_size, mean, std, train=faces,
                                                     erase=recipe.erase if faces else 0.0)
                       if recipe.input_size is not None else None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        recipe = self.recipe
        if self.augment and recipe.augment == "crop_flip" and (recipe.padding or recipe.flip):
            images = transforms.random_crop_flip(images, recipe.padding, recipe.flip, generator=self.generator)
        if self.finish is not None:
            images = self.finish(images)
        else:
            images = transforms.to_float(images, self.mean, self.std)
        return images.contiguous(memory_format=torch.channels_last) if recipe.channels_last else images


def recipe_loader(dataset, recipe: recipes.Recipe, device: torch.device | str, mean: tuple[float, ...],
                  std: tuple[float, ...], *, augment: bool = False, generator: torch.Generator | None = None,
                  batch_size: int | None = None):
    """Return a ``data.DeviceLoader`` over the uint8 TensorImages `dataset` that yields whole batches as
    `recipe` trains on them (``RecipeTransform``). With `augment` (training): ``recipe.batch_size``
    batches in a seeded shuffled order (`generator`, also for the augmentation on the CPU), last partial
    batch dropped; else batches of `batch_size` (default 1024) in order."""
    if augment:
        generator = generator or torch.Generator().manual_seed(torch.initial_seed() % 2**63)
        loader = data.batch_loader(dataset, recipe.batch_size, shuffle=True, generator=generator, drop_last=True)
    else:
        loader = data.batch_loader(dataset, batch_size or 1024)
    return data.DeviceLoader(loader, device, RecipeTransform(recipe, mean, std, augment, generator))


def fit_recipe(model: nn.Module, recipe: recipes.Recipe, train_set, val_set, device: torch.device | str,
               mean: tuple[float, ...], std: tuple[float, ...], *, generator: torch.Generator | None = None,
               **options) -> History:
    """Train `model` on the uint8 TensorImages `train_set` as `recipe` says, with ``fit``; return the History.

    AdamW at ``recipe.lr`` (fused if ``recipe.fused_adam``) with ``recipe.weight_decay``, the schedule
    ``make_scheduler(recipe.schedule, ...)`` stepped every batch, cross-entropy with the recipe's label
    smoothing, the precision ``Amp(device, recipe.amp)``, and whole batches from ``recipe_loader`` (the
    training batches shuffled and augmented with `generator`, seeded from torch's seed if None). The
    validation accuracy after each epoch chooses the best epoch (and early stopping, with
    ``recipe.patience``). `options` are further ``FitConfig`` fields (checkpoint_dir, meta, progress,
    on_epoch_end, resume_from, max_minutes).
    """
    device = torch.device(device)
    train_loader = recipe_loader(train_set, recipe, device, mean, std, augment=True, generator=generator)
    val_loader = recipe_loader(val_set, recipe, device, mean, std)
    model.to(device)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                                  fused=recipe.fused_adam or None)
    scheduler = make_scheduler(recipe.schedule, optimizer, recipe.epochs * len(train_loader))
    smoothing = recipe.label_smoothing
    config = FitConfig(num_epochs=recipe.epochs, amp=recipe.amp, patience=recipe.patience, monitor="val_acc",
                       scheduler_step="batch",
                       loss_fn=lambda logits, labels: F.cross_entropy(logits, labels, label_smoothing=smoothing),
                       **options)
    return fit(model, train_loader, val_loader, optimizer, device, config, scheduler)


def precision_speedup(recipe: recipes.Recipe, train_set, mean: tuple[float, ...], std: tuple[float, ...],
                      device: torch.device | str = "cpu", batch_size: int | None = None) -> float:
    """Return how many times faster a training step of `recipe`'s model runs on `device` with mixed
    precision (``Amp(device, True)``) than in float32 (``autocast_speedup``, on a fresh model and the first
    `batch_size` training images, prepared as training prepares them); 0.0 where it cannot run.
    ``recipes.with_measured_precision`` turns the figure into the recipe's precision."""
    model = models.build_model(recipe.model, len(train_set.classes)).to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    images, labels = train_set[list(range(batch_size or recipe.batch_size))]
    prepare = RecipeTransform(recipe, mean, std, augment=True, generator=torch.Generator().manual_seed(0))
    return autocast_speedup(model, prepare(images.to(device)), labels)


class TimeLimited:
    """Iterate `loader` until `seconds` have passed (always at least one batch); counts the images it gave.

    When the loader is used up before the time is, it starts another pass (a DataLoader reshuffles), so a
    faster setting sees more epochs: ``train_one_epoch(model, TimeLimited(train_loader, 60, device), ...)``
    trains for a fixed time budget, the fair way to compare settings that differ in speed. A one-pass
    iterator simply ends. With `device`, the clock is read only after that device has finished the work
    queued so far (a GPU runs behind the Python code).
    """

    def __init__(self, loader, seconds: float, device: torch.device | str | None = None):
        self.loader, self.seconds, self.device, self.images_seen = loader, seconds, device, 0

    def __iter__(self):
        if self.device is not None:
            metrics.synchronize(self.device)
        start = time.perf_counter()
        while True:
            gave = False
            for images, labels in self.loader:
                gave = True
                self.images_seen += len(labels)
                yield images, labels
                if self.device is not None:
                    metrics.synchronize(self.device)
                if time.perf_counter() - start >= self.seconds:
                    return
            if not gave:                               # an iterator that is used up, or an empty loader
                return


# ---------------------------------------------------------------- comparing a resumed run with a straight one

RESUME_RTOL = 0.02      # where bit equality is not guaranteed: the relative difference allowed (a chosen bound)


def bitwise_resume_expected(device: torch.device | str) -> bool:
    """Return whether a resumed run must equal the uninterrupted one bit for bit on `device`.

    True on a CPU, and anywhere ``torch.use_deterministic_algorithms(True)`` is on. GPU kernels (cuDNN's
    convolution backward passes, atomic additions) may add in a different order from run to run, so on
    CUDA and MPS two runs of the same code differ in the last digits, and training lets that grow.
    """
    return torch.device(device).type == "cpu" or torch.are_deterministic_algorithms_enabled()


@dataclass
class ResumeCheck:
    """What ``resume_check`` found when it compared the ``last.pt`` of two runs."""
    bitwise: bool                  # compared bit for bit (True) or within `rtol` (False)
    same_epochs: bool              # the same number of epochs trained
    same_lr: bool                  # the same learning rate at the start of every epoch
    same_steps: bool               # the same optimizer step count and scheduler position
    weight_diff: float             # largest |a - b| / |a| (norms) over the weights and buffers
    same_weights: bool             # equal (bitwise) or weight_diff <= rtol
    same_val_loss: bool            # equal validation losses (bitwise), or each within rtol
    rtol: float

    @property
    def ok(self) -> bool:
        """Return whether the resumed run matches the straight one as closely as this device guarantees."""
        return self.same_epochs and self.same_lr and self.same_steps and self.same_weights and self.same_val_loss

    def __str__(self) -> str:
        how = "bit for bit" if self.bitwise else f"within a relative tolerance of {self.rtol:g}"
        return (f"compared {how}: same epochs {self.same_epochs}, same learning rates {self.same_lr}, same optimizer "
                f"steps {self.same_steps}, same weights {self.same_weights} (largest relative difference "
                f"{self.weight_diff:.1e}), same validation losses {self.same_val_loss}")


def _step_counts(state: dict) -> tuple:
    steps = [float(s["step"]) for s in state["optimizer"]["state"].values() if "step" in s]
    scheduler = state.get("scheduler") or {}
    return steps, scheduler.get("last_epoch"), scheduler.get("_step_count")


def resume_check(straight: str | Path | dict, resumed: str | Path | dict, device: torch.device | str,
                 rtol: float = RESUME_RTOL) -> ResumeCheck:
    """Compare the ``last.pt`` of an uninterrupted run with that of an interrupted and resumed one.

    Bit for bit where ``bitwise_resume_expected(device)``. Elsewhere (a GPU) it checks what resuming
    guarantees there: the same epochs, learning rates, optimizer steps and scheduler position, exactly;
    and weights and validation losses within `rtol` (for a tensor: the norm of the difference over the
    norm of the uninterrupted run's tensor). `straight` and `resumed` are checkpoint paths or the dicts loaded from them.
    """
    a, b = (checkpoint.load_checkpoint(s, map_location="cpu") if not isinstance(s, dict) else s
            for s in (straight, resumed))
    bitwise = bitwise_resume_expected(device)
    diffs = []
    for key, x in a["model"].items():
        y = b["model"].get(key)
        if y is None or y.shape != x.shape:
            diffs.append(math.inf)
        elif bitwise or not x.is_floating_point():
            diffs.append(0.0 if torch.equal(x, y) else math.inf)
        else:
            diffs.append(((x.double() - y.double()).norm() / x.double().norm().clamp_min(1e-12)).item())
    diffs.append(0.0 if set(a["model"]) == set(b["model"]) else math.inf)
    weight_diff = max(diffs)
    loss_a, loss_b = a["history"]["val_loss"], b["history"]["val_loss"]
    same_loss = loss_a == loss_b if bitwise else (
        len(loss_a) == len(loss_b) and all(math.isclose(x, y, rel_tol=rtol) for x, y in zip(loss_a, loss_b)))
    return ResumeCheck(bitwise=bitwise, same_epochs=a["epoch"] == b["epoch"], same_lr=a["history"]["lr"] == b["history"]["lr"],
                       same_steps=_step_counts(a) == _step_counts(b), weight_diff=weight_diff,
                       same_weights=weight_diff == 0.0 if bitwise else weight_diff <= rtol,
                       same_val_loss=same_loss, rtol=rtol)
