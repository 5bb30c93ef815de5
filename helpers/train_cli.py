"""course-train: train and test the course's classifiers from the command line (lesson 07).

    course-train train --data fashion-csv --model fashion_cnn --epochs 9 --out runs/fashion
    course-train test --checkpoint runs/fashion/model.pt --data fashion-csv
    course-train train --data-dir my_images --out runs/mine      (a folder of your own images)
    course-train test --checkpoint runs/mine/model.pt --data-dir my_images
    course-train train --help                       (every option, with its default)

``python -m helpers.train_cli ...`` runs the same program. The datasets are those of the registry
(``helpers.datasets``): ``--data`` names one, or ``--data-dir`` alone says which by what the folder holds
(a folder that holds none of the course's datasets is read as a folder of your own images,
``train/<class>/`` and ``test/<class>/`` or one folder of ``<class>/`` folders to be split). ``train``
finds the data with the course's finder, trains a model of the registry with ``train.fit`` and writes into ``--out``: ``config.json``
(the settings it ran with), ``last.pt`` and ``best.pt`` (training checkpoints), ``model.pt`` (the
inference bundle of the best epoch, for ``test`` and ``course-predict``) and TensorBoard logs in
``tensorboard/``. Ctrl-C leaves the ``last.pt`` of the last finished epoch; the same command with
``--resume`` continues it exactly. ``test`` loads a checkpoint or bundle, prints the test accuracy
and the classification report and saves the confusion matrix. With ``COURSE_SMOKE=1`` (the tests)
each split is cut to a few hundred images, so a run takes seconds.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers import checkpoint, data, datasets, env, files, finder, metrics, models, predict, recipes, train, transforms
from helpers.arguments import existing_dir, fraction, fraction_or_zero, positive_float, positive_int

PROG = "course-train"
DEFAULT_DATA = "fashion-csv"                               # without --data and --data-dir
SMOKE_IMAGES = {"train": 512, "val": 128, "test": 256}    # per split, in smoke mode
CONFIG_FILE, BUNDLE_FILE, LOG_DIR = "config.json", "model.pt", "tensorboard"
INTERRUPTED = 130                                          # the exit status of a program stopped by Ctrl-C
# the settings of a run, saved in its config.json; a resume checks them with train.check_same_settings
SETTINGS = ("data", "classes", "model", "epochs", "batch_size", "lr", "schedule", "weight_decay",
            "label_smoothing", "input_size", "val_fraction", "seed")


# ---------------------------------------------------------------- the data

@dataclass
class RunData:
    """The three parts of a run's data, held in memory, where they came from, and the dataset's spec."""
    train: data.TensorImages
    val: data.TensorImages
    test: data.TensorImages
    source: str
    spec: datasets.DatasetSpec


class UsageError(ValueError):
    """A command-line argument that cannot work; the message is one sentence for argparse's error line."""


def dataset_name(data: str | None, data_dir: Path | None) -> str:
    """Return the dataset a run uses: `data` when given, else what `data_dir` holds (``datasets.identify``),
    else DEFAULT_DATA."""
    if data is not None:
        return data
    return datasets.identify(data_dir) if data_dir is not None else DEFAULT_DATA


def select_classes(dataset: data.TensorImages, names: Sequence[str] | None) -> data.TensorImages:
    """Return the images of the classes `names` only, relabelled 0..len(names)-1 in that order (all when None)."""
    if not names:
        return dataset
    if unknown := [n for n in names if n not in dataset.classes]:
        raise UsageError(f"class {unknown[0]!r} is not in this dataset, whose classes are {', '.join(dataset.classes)}")
    if len(set(names)) != len(names) or len(names) < 2:
        raise UsageError(f"--classes needs at least two different class names, got {', '.join(names)}")
    old = torch.tensor([dataset.classes.index(n) for n in names])
    keep = torch.isin(dataset.labels, old)
    new_label = torch.full((len(dataset.classes),), -1, dtype=torch.long)
    new_label[old] = torch.arange(len(names))
    return data.TensorImages(dataset.images[keep], new_label[dataset.labels[keep]], names)


def cut(dataset: data.TensorImages, max_items: int | None, seed: int) -> data.TensorImages:
    """Return at most `max_items` images of `dataset`, drawn per class in proportion (all when None)."""
    keep = data.subsample(range(len(dataset)), dataset.targets, max_items, torch.Generator().manual_seed(seed))
    return dataset.subset(keep)


def load_run_data(name: str, data_dir: Path | None, classes: Sequence[str] | None, val_fraction: float,
                  smoke: bool, *, image_mode: str | None = None, input_size: int | None = None) -> RunData:
    """Return the training, validation (a stratified part of the training file) and test parts of dataset
    `name` (a folder of one's own images is read in `image_mode` at `input_size` px, inferred when None)."""
    found = datasets.load_dataset(name, data_dir, smoke, image_mode=image_mode, size=input_size)
    train_file, test_file = select_classes(found.train, classes), select_classes(found.test, classes)
    train_idx, val_idx = data.split_indices(train_file.targets, torch.Generator().manual_seed(recipes.SPLIT_SEED),
                                            (1 - val_fraction, val_fraction))
    limit = SMOKE_IMAGES if smoke else dict.fromkeys(SMOKE_IMAGES)
    return RunData(cut(train_file.subset(train_idx), limit["train"], 0), cut(train_file.subset(val_idx), limit["val"], 1),
                   cut(test_file, limit["test"], 2), found.source, found.spec)


class BatchPipeline(nn.Module):
    """Turn a uint8 batch into the model's input: augmented (if `augment`), resized, normalised, channels_last.

    'flip' mirrors half the images (Fashion-MNIST, as lesson 03); 'faces' is lesson 04's random zoom,
    rotation, shift, flip, contrast and erasing; 'none' or None leaves them as they are. A 3-value mean
    feeds a gray image to all three channels.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], augment: str | None = None):
        super().__init__()
        self.augment = augment
        erase = recipes.FER_COURSE.erase if augment == "faces" else 0.0
        self.finish = transforms.FaceBatchTransform(size, mean, std, train=augment == "faces", erase=erase)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment == "flip":
            images = transforms.random_crop_flip(images, padding=0, flip=True)
        return self.finish(images).contiguous(memory_format=torch.channels_last)


def describe_model(model_name: str, spec: datasets.DatasetSpec, class_names: Sequence[str],
                   input_size: int) -> checkpoint.ModelMeta:
    """Return the ModelMeta of a `model_name` network for dataset `spec` at `input_size` px (how to rebuild and
    feed it): the registry entry says what input the network takes, the dataset how its images are read."""
    args = models.model_args(model_name, len(class_names), spec.channels, input_size)
    repeat = models.MODELS[model_name].input_channels(spec.channels) // spec.channels   # gray into an RGB network
    return checkpoint.ModelMeta(model_name, args, tuple(class_names), input_size, spec.mean * repeat,
                                spec.std * repeat, image_mode=spec.image_mode)


# ---------------------------------------------------------------- TensorBoard

class BoardLogger:
    """Write a run's figures to TensorBoard: scalars every epoch, images of a batch and of the mistakes,
    and the hyper-parameters with their final metrics."""

    def __init__(self, log_dir: Path):
        self.log_dir, self._writer = log_dir, None

    @property
    def writer(self):
        """The SummaryWriter, opened at the first thing logged."""
        return self._open(purge_step=None)

    def _open(self, purge_step: int | None):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)
        return self._writer

    def epoch(self, epoch: int, history: train.History) -> None:
        """Log the metrics of `epoch` (1-based) from `history`: losses, accuracies, learning rate, time."""
        # the first epoch of a resumed run opens the writer with purge_step: it drops whatever the interrupted
        # run logged after its last checkpoint
        self._open(purge_step=epoch if epoch > 1 else None)
        i = epoch - 1
        for tag, values in (("loss/train", history.train_loss), ("loss/val", history.val_loss),
                            ("accuracy/train", history.train_acc), ("accuracy/val", history.val_acc),
                            ("lr", history.lr), ("time/epoch_s", history.epoch_time_s)):
            self.writer.add_scalar(tag, values[i], epoch)
        self.writer.flush()

    def images(self, tag: str, images: torch.Tensor, titles: Sequence[str], step: int = 0) -> None:
        """Log uint8 `images` (B x 1 x H x W) as one figure with a title over each."""
        from helpers import plots
        if len(images):
            self.writer.add_figure(tag, plots.show_images(images, list(titles), ncols=8, size=1.4), step)

    def hparams(self, settings: dict, final: dict) -> None:
        """Log the run's settings with its final metrics (TensorBoard's HPARAMS tab compares runs by them)."""
        plain = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in settings.items()}
        self.writer.add_hparams(plain, {f"hparam/{k}": v for k, v in final.items()}, run_name=".")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


# ---------------------------------------------------------------- train

def settings_of(args: argparse.Namespace) -> dict:
    """Return the run's settings (the SETTINGS of `args`, the image mode and the augmentation), with the dataset
    resolved; the input size, image mode and augmentation stay None until the data says what they are."""
    settings = {key: getattr(args, key) for key in SETTINGS}
    settings["data"] = dataset_name(args.data, args.data_dir)
    settings["classes"] = list(settings["classes"]) if settings["classes"] else None
    settings["image_mode"], settings["augment"] = args.image_mode, args.augment
    if args.image_mode is not None and settings["data"] != datasets.FOLDER:
        raise UsageError(f"--image-mode applies to a folder of your own images; {settings['data']} is read as "
                         f"{datasets.DATASETS[settings['data']].image_mode}, so drop the option")
    return settings


def resumed_settings(out: Path, settings: dict, given: set[str]) -> dict:
    """Return the settings saved in `out`'s config.json; raise UsageError if a given option differs from them."""
    if not (out / "last.pt").is_file() or not (out / CONFIG_FILE).is_file():
        raise UsageError(f"--resume found no run to continue in {out} (it needs the last.pt and {CONFIG_FILE} "
                         f"that train writes there); check --out, or drop --resume to start a new run")
    saved = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))["settings"]
    train.check_same_settings(saved, {key: settings[key] for key in SETTINGS if key in given}, out / CONFIG_FILE,
                              describe=lambda key, was, now: f"--{key.replace('_', '-')} {now} differs from the {was} "
                                                             f"that the run started with",
                              advice="--resume continues that run as it was, so drop the option or start a new run "
                                     "with another --out", error=UsageError, none_is_unknown=False)
    return saved


def train_command(args: argparse.Namespace, given: set[str]) -> int:
    """Train as `args` say; return the exit status (0, or 130 when interrupted)."""
    out, smoke = Path(args.out), env.smoke_mode()
    settings = settings_of(args)
    if args.resume:
        settings = resumed_settings(out, settings, given)
    elif (out / "last.pt").exists():
        raise UsageError(f"{out} already holds a run (last.pt); add --resume to continue it, or choose another --out")
    splits = load_run_data(settings["data"], args.data_dir, settings["classes"], settings["val_fraction"], smoke,
                           image_mode=settings.get("image_mode"), input_size=settings["input_size"])
    settings["input_size"] = settings["input_size"] or splits.spec.size
    settings["image_mode"] = splits.spec.image_mode
    settings["augment"] = settings.get("augment") or splits.spec.augment
    class_names = splits.train.classes
    meta = describe_model(settings["model"], splits.spec, class_names, settings["input_size"])
    device = env.get_device(args.device)
    print(f"{PROG} train: {settings['model']} on {settings['data']} ({splits.source}): {len(splits.train):,} "
          f"training, {len(splits.val):,} validation images, {len(class_names)} classes, "
          f"{'gray' if meta.image_mode == 'L' else 'RGB'} at {meta.input_size} px, {device}")
    if not args.resume:
        out.mkdir(parents=True, exist_ok=True)
        config = {"settings": settings, "data_source": splits.source, "data_dir": args.data_dir and str(args.data_dir),
                  "mean": list(meta.mean), "std": list(meta.std), "device": str(device),
                  "torch": torch.__version__, "quick_subsets": smoke}
        files.atomic_write_text(out / CONFIG_FILE, json.dumps(config, indent=2) + "\n")

    generator = env.seed_everything(settings["seed"])
    train_loader = data.DeviceLoader(
        data.batch_loader(splits.train, settings["batch_size"], shuffle=True, generator=generator, drop_last=True),
        device, BatchPipeline(meta.input_size, meta.mean, meta.std, settings["augment"]).to(device))
    if len(train_loader) == 0:
        raise UsageError(f"--batch-size {settings['batch_size']} is larger than the {len(splits.train)} training "
                         f"images, so an epoch has no full batch; choose a smaller batch size")
    val_loader = data.DeviceLoader(data.batch_loader(splits.val, 512), device,
                                   BatchPipeline(meta.input_size, meta.mean, meta.std).to(device))
    model = models.build_model(meta.model_name, **meta.model_args).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    scheduler = train.make_scheduler(settings["schedule"], optimizer, settings["epochs"] * len(train_loader))

    resume_from = out / "last.pt" if args.resume else None      # fit reads it
    board = BoardLogger(out / LOG_DIR)
    if resume_from is None:                                # the first images, in file order (no random numbers drawn)
        board.images("batch/train", splits.train.images[:16], [class_names[i] for i in splits.train.labels[:16]])
    config = train.FitConfig(
        num_epochs=settings["epochs"], monitor="val_acc", scheduler_step="batch", checkpoint_dir=out,
        resume_from=resume_from, meta=meta, progress=args.progress, on_epoch_end=board.epoch,
        loss_fn=lambda logits, labels: F.cross_entropy(logits, labels, label_smoothing=settings["label_smoothing"]))
    try:
        history = train.fit(model, train_loader, val_loader, optimizer, device, config, scheduler)
    except KeyboardInterrupt:
        board.close()
        return interrupted(out)
    finish_run(model, meta, out, history, val_loader, splits, settings, board, device)
    return 0


def interrupted(out: Path) -> int:
    """Say what an interrupted run left behind and how to continue it; return the exit status 130."""
    last = out / "last.pt"
    if last.is_file():
        state = checkpoint.load_checkpoint(last)
        print(f"\ninterrupted: {last} holds epoch {state['epoch']}; run the same command with --resume to "
              f"continue exactly from there", file=sys.stderr)
    else:
        print(f"\ninterrupted before the first epoch ended: nothing to resume in {out}; start the run again",
              file=sys.stderr)
    return INTERRUPTED


def finish_run(model: nn.Module, meta: checkpoint.ModelMeta, out: Path, history: train.History, val_loader,
               splits: RunData, settings: dict, board: BoardLogger, device: torch.device) -> None:
    """Save the best epoch as the inference bundle, and log its validation mistakes and the hyper-parameters."""
    best = checkpoint.load_checkpoint(out / "best.pt", map_location=device)
    checkpoint.load_weights(model, best["model"])
    predict.save_bundle(out / BUNDLE_FILE, model, meta)
    result = train.evaluate(model, val_loader, device)
    wrong = (result.preds != result.labels).nonzero().flatten()[:16]
    names = splits.val.classes
    board.images("mistakes/val", splits.val.images[wrong],
                 [f"{names[p]}\n(true: {names[t]})" for p, t in zip(result.preds[wrong], result.labels[wrong])],
                 history.best_epoch)
    board.hparams(settings, {"best_val_acc": result.acc, "best_val_loss": result.loss,
                             "best_epoch": history.best_epoch})
    board.close()
    print(f"best epoch {history.best_epoch}: validation accuracy {result.acc:.4f}; wrote {out / BUNDLE_FILE}, "
          f"last.pt, best.pt, {CONFIG_FILE} and TensorBoard logs in {out / LOG_DIR}")


# ---------------------------------------------------------------- test

def test_command(args: argparse.Namespace) -> int:
    """Score a checkpoint or bundle on the test split; print accuracy and the report, save the confusion matrix."""
    from sklearn.metrics import classification_report

    from helpers import plots
    if not args.checkpoint.is_file():
        raise UsageError(f"--checkpoint {args.checkpoint} is not a file; pass the model.pt or best.pt that train wrote")
    meta = checkpoint.ModelMeta.from_dict(checkpoint.load_checkpoint(args.checkpoint).get("meta") or {}, args.checkpoint)
    if args.classes and list(args.classes) != list(meta.class_names):
        raise UsageError(f"{args.checkpoint} was trained on {len(meta.class_names)} classes "
                         f"({', '.join(meta.class_names)}), not on the {len(args.classes)} that --classes names")
    name = dataset_name(args.data, args.data_dir)
    found = datasets.load_dataset(name, args.data_dir, env.smoke_mode(), image_mode=meta.image_mode,
                                  size=meta.input_size)
    test_file, source = found.test, found.source
    if missing := [n for n in meta.class_names if n not in test_file.classes]:
        raise UsageError(f"{args.checkpoint} was trained on another dataset: its class {missing[0]!r} is not "
                         f"one of {name}'s classes ({', '.join(test_file.classes)})")
    test_set = select_classes(test_file, None if list(meta.class_names) == test_file.classes else meta.class_names)
    test_set = cut(test_set, SMOKE_IMAGES["test"] if env.smoke_mode() else None, 2)
    device = env.get_device(args.device)
    model, meta = checkpoint.load_model(args.checkpoint, device)
    model = model.to(memory_format=torch.channels_last)
    loader = data.DeviceLoader(data.batch_loader(test_set, 512), device,
                               BatchPipeline(meta.input_size, meta.mean, meta.std).to(device))
    result = train.evaluate(model, loader, device)
    report = metrics.classification_metrics(result.labels, result.preds, meta.class_names)
    out = args.out or args.checkpoint.parent
    out.mkdir(parents=True, exist_ok=True)
    ax = plots.plot_confusion_matrix(result.labels, result.preds, meta.class_names,
                                     title=f"{args.checkpoint.name} on the {name} test split (rows: true class)")
    files.atomic_write(out / "confusion_matrix.png",
                       lambda tmp: ax.figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    files.atomic_write_text(out / "test_metrics.json", json.dumps(
        {"checkpoint": args.checkpoint.name, "data": name, "data_source": source, "images": len(test_set),
         "loss": result.loss, **report}, indent=2) + "\n")
    print(f"{PROG} test: {args.checkpoint.name} on {len(test_set):,} test images of {name} ({source})")
    print(f"test accuracy {result.acc:.4f}, macro-F1 {report['macro_f1']:.4f}, loss {result.loss:.4f}")
    print(classification_report(result.labels, result.preds, target_names=list(meta.class_names), digits=3,
                                zero_division=0))
    print(f"saved {out / 'confusion_matrix.png'} and {out / 'test_metrics.json'}")
    return 0


# ---------------------------------------------------------------- the command line

def _device(text: str) -> str:
    try:
        torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda, cuda:1 or mps") from None
    return text


def _class_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--data", choices=datasets.NAMES, default=None,
                     help="dataset: Fashion-MNIST from the Kaggle CSVs or the idx files, FER2013, or 'folder': a "
                          "folder of your own images, train/<class>/ and test/<class>/ or <class>/ folders to be "
                          f"split (None: what --data-dir holds, else {DEFAULT_DATA})")
    sub.add_argument("--data-dir", type=existing_dir, default=None,
                     help="folder that holds the dataset (None: COURSE_DATA, else the download; see README)")
    sub.add_argument("--classes", type=_class_list, default=None,
                     help="comma-separated class names to keep, e.g. 'Pullover,Shirt' (None: all classes)")
    sub.add_argument("--device", type=_device, default=None, help="cpu, cuda, cuda:1, mps (None: CUDA, else MPS, else CPU)")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``course-train`` with its ``train`` and ``test`` subcommands."""
    parser = argparse.ArgumentParser(prog=PROG, description="Train and test the course's image classifiers "
                                     "(lesson 07). Also runs as python -m helpers.train_cli.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,test}")
    formatter = argparse.ArgumentDefaultsHelpFormatter
    tr = commands.add_parser("train", help="train a model, writing checkpoints, a bundle, the config and "
                             "TensorBoard logs", formatter_class=formatter, allow_abbrev=False)
    _common(tr)
    tr.add_argument("--model", choices=sorted(models.MODELS), default="fashion_cnn", help="network of the registry")
    tr.add_argument("--epochs", type=positive_int, default=recipes.FASHION_COURSE.epochs, help="training epochs")
    tr.add_argument("--batch-size", type=positive_int, default=recipes.FASHION_COURSE.batch_size,
                    help="training images per step")
    tr.add_argument("--lr", type=positive_float, default=recipes.FASHION_COURSE.lr,
                    help="AdamW learning rate (the peak of the one-cycle schedule)")
    tr.add_argument("--schedule", choices=recipes.SCHEDULES, default="onecycle",
                    help="learning-rate schedule, stepped every batch")
    tr.add_argument("--weight-decay", type=fraction_or_zero, default=0.0, help="AdamW weight decay")
    tr.add_argument("--label-smoothing", type=fraction_or_zero, default=recipes.FASHION_COURSE.label_smoothing,
                    help="label smoothing of the training loss")
    tr.add_argument("--input-size", type=positive_int, default=None,
                    help="side of the square model input in pixels (None: the dataset's own, 28 or 48; for your "
                         "own folder the longer side of its most common image size, at most 224)")
    tr.add_argument("--image-mode", choices=("L", "RGB"), default=None,
                    help="your own folder only: read the images gray (L) or in colour (None: L when every "
                         "training image is gray, else RGB)")
    tr.add_argument("--augment", choices=datasets.AUGMENTATIONS, default=None,
                    help="training augmentation: none, flip (mirror half the images) or faces (lesson 04's) "
                         "(None: the dataset's own; flip for your own folder)")
    tr.add_argument("--val-fraction", type=fraction, default=recipes.VAL_FRACTION,
                    help="share of the training file held out for validation (stratified, fixed split seed)")
    tr.add_argument("--seed", type=int, default=42, help="seed of the weights, the shuffling and the augmentation")
    tr.add_argument("--out", type=Path, default=Path("runs") / "train", help="folder the run writes into")
    tr.add_argument("--resume", action="store_true",
                    help="continue the interrupted run in --out exactly, from its last.pt")
    tr.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(),
                    help="progress bars (on in a terminal)")
    te = commands.add_parser("test", help="score a checkpoint or bundle on the test split",
                             formatter_class=formatter, allow_abbrev=False)
    te.add_argument("--checkpoint", type=Path, default=Path("runs") / "train" / BUNDLE_FILE,
                    help="inference bundle or training checkpoint written by train")
    _common(te)
    te.add_argument("--out", type=Path, default=None,
                    help="folder for confusion_matrix.png and test_metrics.json (None: the checkpoint's folder)")
    return parser


def given_options(parser: argparse.ArgumentParser, argv: Sequence[str], command: str) -> set[str]:
    """Return the `dest` of every option of `command` that `argv` sets explicitly."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {action.dest for action in sub._actions for option in action.option_strings
            for token in argv if token == option or token.startswith(option + "=")}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``course-train``; return the exit status (argument errors exit with argparse's status 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    try:
        if args.command == "train":
            return train_command(args, given_options(parser, argv, "train"))
        return test_command(args)
    except (UsageError, datasets.DatasetError, finder.DataNotFoundError, checkpoint.CheckpointError) as err:
        sub.error(str(err).splitlines()[0])          # prints the usage line and the message, exits with 2
    except KeyboardInterrupt:                         # Ctrl-C before or after the epochs
        return interrupted(Path(args.out)) if args.command == "train" else INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
