"""Lesson 09's training script: lesson 03's Fashion-MNIST training on several processes with DDP.

On N processes of one machine (CPU cores or GPUs), from the course folder:

    torchrun --standalone --nproc-per-node=2 -m helpers.ddp_train --out runs/ddp

torchrun starts N copies of this program and gives each its rank (the environment variables RANK,
LOCAL_RANK, WORLD_SIZE, and MASTER_ADDR / MASTER_PORT, where they meet). Every copy holds the whole
model and trains on its own share of each batch; DistributedDataParallel averages the gradients
across the copies while the backward pass runs, so all copies take the same step. Only rank 0 prints
and writes files: ``config.json``, ``log.jsonl`` (a line per epoch), ``checkpoints/epoch_N.pt`` and
``summary.json`` in ``--out``. Each process talks to the others through NCCL on a GPU of its own where the
machine has a GPU for every process, otherwise through Gloo on the CPU (``choose_backend``; it says so when
it leaves GPUs unused), so two processes also run on a one-GPU machine such as Colab's.

Started without torchrun (``python -m helpers.ddp_train``) it trains as one process and says how to
launch more. ``--micro-batches K`` makes that one process do the arithmetic of a K-process run: each
batch cut into the K parts the K processes would get, their gradients added before one step.
Lesson 09 checks that the two runs end with the same weights.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DistributedSampler

from helpers import checkpoint, data, datasets, env, files, finder, models, recipes, train, transforms
from helpers.arguments import existing_dir, positive_float, positive_int

RECIPE = recipes.FASHION_COURSE          # lesson 03's settings: FashionCNN, AdamW + one-cycle 4e-3, batch 256, flips
DATASET = "fashion-idx"                  # its entry in the dataset registry (helpers.datasets)
LAUNCH = "torchrun --standalone --nproc-per-node=N -m helpers.ddp_train"
SMOKE_TRAIN_IMAGES, SMOKE_EVAL_IMAGES = 1600, 500     # per split in smoke mode (COURSE_SMOKE=1)
CHECKPOINT_FORMAT = "course-ddp-checkpoint-1"         # the "format" tag of checkpoints/epoch_N.pt (fit's have their own)


class SetupError(ValueError):
    """The run cannot start as asked (batch, processes, data, checkpoint); the message says what to change."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: its rank among `world_size` processes, and its device."""
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None          # "nccl" or "gloo"; None for one process started without torchrun
    note: str = ""               # why Gloo on the CPU was chosen on a machine that has GPUs

    @property
    def is_main(self) -> bool:
        """Return True on rank 0, the one process that prints and writes files."""
        return self.rank == 0


def choose_backend(gpus: int, processes: int, device: str | None = None) -> tuple[str, str, str]:
    """Return (backend, device type, note) for `processes` processes on a machine with `gpus` CUDA GPUs.

    NCCL needs a GPU of its own for every process, so it is chosen only where there are at least as many
    GPUs as processes; otherwise Gloo on the CPU, with a note that says why when there are GPUs. `device`
    "cpu" asks for Gloo on the CPU; "cuda" asks for NCCL and raises SetupError where the GPUs are too few.
    """
    if device == "cpu":
        return "gloo", "cpu", ""
    if gpus >= processes:
        return "nccl", "cuda", ""
    if device == "cuda":
        raise SetupError(f"--device cuda needs a GPU for each of the {processes} processes on this machine, and it "
                         f"has {gpus}; start at most {gpus} processes (--nproc-per-node={gpus}), or use --device cpu"
                         if gpus else "--device cuda, but this machine has no CUDA GPU; use --device cpu")
    if gpus == 0:
        return "gloo", "cpu", ""
    return "gloo", "cpu", (f"Gloo on the CPU: {processes} processes on this machine and {gpus} GPU(s), and NCCL needs "
                           f"a GPU for each process. With N GPUs: {LAUNCH} --device cuda")


def setup_distributed(device: str | None = None) -> Dist:
    """Join the process group torchrun prepared (NCCL with a GPU per process where there are enough GPUs, else
    Gloo on the CPU: see choose_backend); without torchrun, one process on `device` (default: the best there is)."""
    if "RANK" not in os.environ:                       # plain `python -m helpers.ddp_train`
        return Dist(0, 1, 0, env.get_device(device), None)
    local_rank = int(os.environ["LOCAL_RANK"])         # this process's number on its own machine
    here = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))   # processes on this machine
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    backend, kind, note = choose_backend(gpus, here, device)
    dev = torch.device(kind, local_rank) if kind == "cuda" else torch.device(kind)
    if kind == "cuda":
        torch.cuda.set_device(dev)                     # process k drives GPU k of its machine
    # reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the environment torchrun set
    dist.init_process_group(backend, device_id=dev if backend == "nccl" else None)
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, dev, backend, note)


def default_threads() -> int:
    """Return the CPU cores this process may use shared out among the processes torchrun started on this machine
    (the cores it may use: a container or `taskset` can allow fewer than the machine has)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


@contextlib.contextmanager
def main_process_first(d: Dist):
    """Let the first process of each machine go first (to download the data, say) while the others wait at a
    barrier, then let the others through."""
    if d.backend is not None and d.local_rank != 0:
        dist.barrier()
    yield
    if d.backend is not None and d.local_rank == 0:
        dist.barrier()


def load_fashion_parts(data_dir: Path | None, train_images: int | None):
    """Return lesson 03's training and validation parts (seeded, stratified), the test set and the data's source."""
    smoke = env.smoke_mode()
    try:
        found = datasets.load_dataset(DATASET, data_dir, smoke)
    except datasets.DatasetError as err:           # a --data folder without the files
        raise SetupError(str(err)) from None
    full, test = found.train, found.test
    split = torch.Generator().manual_seed(recipes.SPLIT_SEED)
    train_idx, val_idx = data.split_indices(full.targets, split, (1 - recipes.VAL_FRACTION, recipes.VAL_FRACTION))
    cap = SMOKE_EVAL_IMAGES if smoke else None
    return (full.subset(train_idx[:train_images]), full.subset(val_idx[:cap]),
            test.subset(list(range(len(test)))[:cap]), found.source)


def check_shards(n_train: int, n_eval: int, processes: int, batch_size: int) -> int:
    """Return each process's share of the global `batch_size`; raise SetupError if a process would get no data."""
    if batch_size % processes:
        fit = processes * -(-batch_size // processes)
        raise SetupError(f"--batch-size {batch_size} is the global batch, and it cannot be cut into {processes} "
                         f"equal shares; use a multiple of {processes}, e.g. {fit}")
    share = batch_size // processes
    if n_train // processes < share:
        raise SetupError(f"each of the {processes} processes gets {n_train // processes} of the {n_train} training "
                         f"images, fewer than its share of a batch ({batch_size} / {processes} = {share}), so it "
                         f"would never take a step; use a --batch-size of at most {n_train} or more training images")
    if n_eval < processes:
        raise SetupError(f"only {n_eval} evaluation images for {processes} processes: process {n_eval} and up would "
                         f"have none to score; start at most {n_eval} processes")
    return share


def flip_mask(n: int, seed: int, epoch: int) -> torch.Tensor:
    """Return which of the `n` training images are mirrored in `epoch`: drawn from the seed and the epoch only,
    so every process, and a one-process run, flips the same images whoever trains on them."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    return torch.rand(n, generator=generator) < 0.5


def batch_on_device(dataset: data.TensorImages, indices: list[int], flips: torch.Tensor | None, device: torch.device):
    """Return the images at `indices` (mirrored where `flips` says, normalised, channels_last) and their labels."""
    images, labels = dataset[indices]
    images = images.to(device)
    if flips is not None:
        images = torch.where(flips[indices].to(device)[:, None, None, None], images.flip(3), images)
    images = transforms.to_float(images, data.FASHION_MEAN, data.FASHION_STD)
    return images.contiguous(memory_format=torch.channels_last), labels.to(device)


@contextlib.contextmanager
def buffers_kept(model: nn.Module):
    """Undo what the forward passes inside do to BatchNorm's running statistics (buffers, not weights).

    They are restored after the backward pass, which still needs the tensors the forward pass saw."""
    saved = [buffer.clone() for buffer in model.buffers()]
    yield
    with torch.no_grad():
        for buffer, old in zip(model.buffers(), saved):
            buffer.copy_(old)


def train_epoch(model: nn.Module, dataset: data.TensorImages, batches, flips: torch.Tensor, optimizer,
                scheduler, micro_batches: int = 1, on_step=None) -> torch.Tensor:
    """Train one pass over `batches` (lists of indices); return this process's [loss sum, correct, images].

    With `micro_batches` K, each batch is cut into the K parts K processes would get (part k holds
    positions k, k + K, ...); their gradients add up before one step. Like DDP, which keeps rank 0's
    BatchNorm statistics, only the first part updates the running statistics.
    """
    model.train()
    device = next(model.parameters()).device
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for indices in batches:
        optimizer.zero_grad(set_to_none=True)
        for part in range(micro_batches):
            images, labels = batch_on_device(dataset, indices[part::micro_batches], flips, device)
            with buffers_kept(model) if part else contextlib.nullcontext():
                logits = model(images)
                loss = F.cross_entropy(logits, labels, label_smoothing=RECIPE.label_smoothing)
                (loss / micro_batches).backward()  # DDP averages the gradients of the processes; this adds parts
            totals += torch.stack([loss.detach().double() * len(labels), (logits.argmax(1) == labels).sum(),
                                   torch.tensor(len(labels), device=device)])
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step(scheduler.last_epoch)
    return totals


def all_sum(totals: torch.Tensor, d: Dist) -> torch.Tensor:
    """Return `totals` added up over all processes (every process gets the same sums)."""
    if d.backend is not None:
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return totals


def share_buffers(model: nn.Module, d: Dist) -> None:
    """Copy rank 0's BatchNorm running statistics to every process, so that all evaluate the same model."""
    if d.backend is not None:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


@torch.no_grad()
def evaluate_sharded(model: nn.Module, dataset: data.TensorImages, d: Dist, flips: bool = False) -> dict[str, float]:
    """Return loss and accuracy on `dataset`: process r scores images r, r + N, r + 2N, ... and the sums are
    all-reduced (a DistributedSampler would pad the shares to equal length with repeated images)."""
    model.eval()
    mine = list(range(d.rank, len(dataset), d.world_size))
    totals = torch.zeros(3, dtype=torch.float64, device=d.device)
    for start in range(0, len(mine), 1024):
        images, labels = batch_on_device(dataset, mine[start:start + 1024], None, d.device)
        logits = model(images)
        if flips:                                  # lesson 03's test-time flips: add the mirror image's log-probabilities
            logits = logits.log_softmax(1) + model(images.flip(3)).log_softmax(1)
        totals += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                               (logits.argmax(1) == labels).sum(), torch.tensor(len(labels), device=d.device)])
    loss_sum, correct, count = all_sum(totals, d).tolist()
    return {"loss": loss_sum / count, "acc": correct / count}


@dataclass
class Training:
    """What one process trains with: the data, its share of every batch, the model, optimizer and schedule."""
    train_set: data.TensorImages
    val_set: data.TensorImages
    test_set: data.TensorImages
    sampler: DistributedSampler
    batches: BatchSampler          # lists of indices: this process's share of each global batch
    model: nn.Module               # the plain model: evaluated and saved
    trained: nn.Module             # the model the training steps call: DDP-wrapped under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    share: int                     # images per process in each step
    source: str                    # where the data came from


def save_state(path: Path, t: Training, epoch: int, config: dict) -> None:
    """Write everything needed to continue after `epoch` (rank 0 only), atomically: a crash leaves the old file."""
    meta = checkpoint.ModelMeta(model_name=RECIPE.model, model_args={"num_classes": len(data.FASHION_CLASSES)},
                                class_names=data.FASHION_CLASSES, input_size=28, mean=data.FASHION_MEAN,
                                std=data.FASHION_STD)
    checkpoint.save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "model": t.model.state_dict(),
                                      "optimizer": t.optimizer.state_dict(), "scheduler": t.scheduler.state_dict(),
                                      "epoch": epoch, "config": config, "meta": meta.to_dict()})


def resume(path: str, t: Training, config: dict, device: torch.device) -> int:
    """Load a checkpoint written by any number of processes; return how many epochs it had finished."""
    state = checkpoint.load_checkpoint(path, map_location=device)
    if state.get("format") != CHECKPOINT_FORMAT:   # e.g. a bundle (model.pt) or fit's last.pt
        raise checkpoint.CheckpointError(f"{path} is not a checkpoint written by ddp_train (its format is "
                                         f"{state.get('format')!r}, not {CHECKPOINT_FORMAT!r}); --resume needs "
                                         f"one of its checkpoints/epoch_N.pt.")
    current = {key: value for key, value in config.items() if key != "data"}   # --data is a folder, which may move
    train.check_same_settings(state.get("config", {}), current, path,
                              describe=lambda key, was, now: f"{key}: saved {was}, now {now}", error=SetupError,
                              advice="Resume with the saved settings, since the data order and the schedule follow "
                                     "from them.", none_is_unknown=False)
    t.model.load_state_dict(state["model"])        # plain keys: rank 0 saved the model inside the DDP wrapper
    t.optimizer.load_state_dict(state["optimizer"])
    t.scheduler.load_state_dict(state["scheduler"])
    return state["epoch"]


class WeightTrace:
    """Every `every` optimizer steps, a copy of all the weights (lesson 09 plots how two runs drift apart)."""

    def __init__(self, model: nn.Module, every: int):
        self.model, self.every, self.steps, self.weights = model, every, [], []

    def __call__(self, step: int) -> None:
        if step % self.every == 0:
            self.steps.append(step)
            self.weights.append(torch.cat([p.detach().flatten() for p in self.model.parameters()]).cpu())

    def save(self, path: Path) -> None:
        """Write the steps and the weights (steps x parameters) to `path`, atomically."""
        files.atomic_write(path, lambda tmp: torch.save({"steps": self.steps, "weights": torch.stack(self.weights)}, tmp))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command-line options (the defaults are lesson 03's recipe; smaller in smoke mode)."""
    smoke = env.smoke_mode()
    parser = argparse.ArgumentParser(prog="python -m helpers.ddp_train", description=__doc__.split("\n\n")[0],
                                     epilog=f"On N processes: {LAUNCH} [options]")
    parser.add_argument("--epochs", type=positive_int, default=2 if smoke else RECIPE.epochs)
    parser.add_argument("--batch-size", type=positive_int, default=64 if smoke else RECIPE.batch_size,
                        help="the global batch: all processes together (default %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=RECIPE.lr, help="the peak rate of the one-cycle schedule (default %(default)s)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads per process (default: the cores divided among the processes)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: under torchrun NCCL on CUDA where there is a GPU for every process, else Gloo "
                             "on the CPU; one process: CUDA, else MPS, else the CPU")
    parser.add_argument("--micro-batches", type=positive_int, default=1,
                        help="one process only: cut each batch in this many parts, as that many processes would")
    parser.add_argument("--train-images", type=positive_int, default=SMOKE_TRAIN_IMAGES if smoke else None,
                        help="train on the first this many images of the training part (default: all)")
    parser.add_argument("--data", type=existing_dir, default=None,
                        help="a folder holding Fashion-MNIST's idx files (default: the course's finder)")
    parser.add_argument("--out", default="runs/ddp", help="where rank 0 writes (default %(default)s)")
    parser.add_argument("--resume", default=None, help="a checkpoint (checkpoints/epoch_N.pt) to continue from")
    parser.add_argument("--trace-every", type=positive_int, default=None, help="save the weights every this many steps")
    return parser.parse_args(argv)


def setup_training(args: argparse.Namespace, d: Dist) -> Training:
    """Load the data (the first process of each machine first), cut it into this process's shares, build the model."""
    with main_process_first(d):
        train_set, val_set, test_set, source = load_fashion_parts(args.data, args.train_images)
    parts = d.world_size * args.micro_batches
    share = check_shards(len(train_set), min(len(val_set), len(test_set)), parts, args.batch_size)
    sampler = DistributedSampler(train_set, num_replicas=d.world_size, rank=d.rank, shuffle=True, seed=args.seed,
                                 drop_last=True)
    batches = BatchSampler(sampler, share * args.micro_batches, drop_last=True)
    torch.manual_seed(args.seed)                   # the same initial weights everywhere (DDP also copies rank 0's)
    model = models.build_model(RECIPE.model, len(data.FASHION_CLASSES)).to(d.device, memory_format=torch.channels_last)
    trained = model
    if d.backend is not None:                      # from here on, backward() averages the gradients of all processes
        trained = DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=RECIPE.weight_decay,
                                  fused=RECIPE.fused_adam or None)
    scheduler = train.make_scheduler(RECIPE.schedule, optimizer, total_steps=args.epochs * len(batches))
    return Training(train_set, val_set, test_set, sampler, batches, model, trained, optimizer, scheduler, share,
                    source)


def train_and_validate(epoch: int, t: Training, args: argparse.Namespace, d: Dist, trace=None) -> dict:
    """Train `epoch` on this process's shares, validate, and return the epoch's figures summed over all processes."""
    t.sampler.set_epoch(epoch)                     # a new order every epoch, the same on every process
    flips = flip_mask(len(t.train_set), args.seed, epoch)
    start = time.perf_counter()
    totals = train_epoch(t.trained, t.train_set, t.batches, flips, t.optimizer, t.scheduler, args.micro_batches, trace)
    loss_sum, correct, images = all_sum(totals, d).tolist()
    seconds = time.perf_counter() - start
    share_buffers(t.model, d)
    val = evaluate_sharded(t.model, t.val_set, d)
    return {"epoch": epoch + 1, "train_loss": loss_sum / images, "train_acc": correct / images,
            "val_loss": val["loss"], "val_acc": val["acc"], "images": int(images), "seconds": seconds}


def run(args: argparse.Namespace, d: Dist) -> dict:
    """Train, validate every epoch and test at the end; return the summary (rank 0 also writes the files)."""
    say = print if d.is_main else (lambda *_, **__: None)
    if d.backend is None:
        say(f"Not started by torchrun: training as one process. For N processes: {LAUNCH} [options]")
    elif args.micro_batches > 1:
        raise SetupError("--micro-batches imitates several processes in one; under torchrun leave it at 1")
    if d.note:                                     # GPUs left unused: say why
        say(d.note)
    t = setup_training(args, d)
    config = {**vars(args), "train_images": len(t.train_set), "world_size": d.world_size, "backend": d.backend,
              "threads": torch.get_num_threads(), "device": str(d.device), "data_source": t.source}
    say(f"{d.world_size} process(es) on {d.device} ({d.backend or 'no process group'}), {config['threads']} "
        f"threads each; global batch {args.batch_size} = {args.batch_size // t.share} x {t.share}; "
        f"{len(t.batches)} steps an epoch; data: {t.source}")
    start_epoch = resume(args.resume, t, config, d.device) if args.resume else 0
    out = Path(args.out)
    if d.is_main:
        files.atomic_write_text(out / "config.json", json.dumps(config, indent=2) + "\n")
    trace = WeightTrace(t.model, args.trace_every) if args.trace_every and d.is_main else None
    if trace is not None:
        trace(t.scheduler.last_epoch)              # the weights before the first step (or at the resumed step)
    history = []
    for epoch in range(start_epoch, args.epochs):
        history.append(train_and_validate(epoch, t, args, d, trace))
        h = history[-1]
        say(f"epoch {h['epoch']}/{args.epochs}  train_loss {h['train_loss']:.4f}  val_loss {h['val_loss']:.4f}  "
            f"val_acc {h['val_acc']:.4f}  {h['seconds']:.1f} s ({h['images'] / h['seconds']:,.0f} images/s)")
        if d.is_main:                              # one process writes; the others hold the same weights
            with open(out / "log.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps({**h, "rank": d.rank}) + "\n")
            save_state(out / "checkpoints" / f"epoch_{epoch + 1}.pt", t, epoch + 1, config)
    test = evaluate_sharded(t.model, t.test_set, d, flips=RECIPE.tta)
    train_s = sum(h["seconds"] for h in history)
    say(f"test accuracy {test['acc']:.4f} (with test-time flips); {train_s:.1f} s of training")
    summary = {**config, "hardware": env.hardware_summary(d.device), "history": history, "train_time_s": train_s,
               "images_per_s": sum(h["images"] for h in history) / train_s if history else None,
               "test_acc": test["acc"], "test_loss": test["loss"]}
    if d.is_main:
        files.atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        if trace is not None:
            trace.save(out / "trace.pt")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run the script: parse the options, join the processes, train; return the exit status."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads or default_threads())   # before any work: N processes x T threads <= cores
    try:
        d = setup_distributed(args.device)
    except SetupError as err:                      # before the group exists: each process's own message
        if os.environ.get("LOCAL_RANK", "0") == "0":
            print(f"helpers.ddp_train: error: {err}", file=sys.stderr)
        return 2
    try:
        run(args, d)
        return 0
    except (SetupError, checkpoint.CheckpointError, finder.DataNotFoundError) as err:
        if d.is_main:                              # every process meets the same error; one message is enough
            print(f"helpers.ddp_train: error: {err}", file=sys.stderr)
        return 2
    finally:
        if d.backend is not None:
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
