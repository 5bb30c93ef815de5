"""Exercises that check themselves: your answer gets a verdict, a hint on request, and the worked solution.

In a lesson::

    from helpers import exercises
    ex = exercises.lesson(3)
    ex.q5.check(per_class_recall)   # Correct / Not yet (what is wrong) / Not attempted
    ex.q5.hint()                    # the next hint, one step at a time
    ex.q5.solution()                # the worked solution

A check runs your code on real data (the course's shipped samples under the tests, the lesson's data in a
full run) and compares what it *does* with a reference: any correct answer passes, whatever its code looks
like. Where a common mistake is recognised, "Not yet" names it. Every check is tested with the solution
below it and with at least two wrong answers (tests/test_exercises.py).

One section per lesson; each check is a function that returns a message when the answer is right and raises
``NotYet`` (or ``NotAttempted``) when it is not.
"""
from __future__ import annotations

import functools
import math
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable
from unittest import mock

import numpy as np
import torch
from torch import nn

from helpers import data, env, fashion_csv, finder


class NotYet(Exception):
    """The answer runs but is not right yet; the message says what is wrong."""


class NotAttempted(Exception):
    """The answer cell is still the empty template."""


@dataclass(frozen=True)
class Verdict:
    """What a check says: `status` is "correct", "not yet" or "not attempted"; `message` says why."""
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == "correct"

    def __repr__(self) -> str:
        return f"{self.status.capitalize()}: {self.message}"


@dataclass
class Exercise:
    """One checked exercise: `checker(*answer)` returns a message or raises NotYet / NotAttempted."""
    lesson: int
    number: int
    title: str
    checker: Callable[..., str]
    hints: tuple[str, ...]
    solution_code: str
    answer_names: tuple[str, ...]        # the names the learner's cell defines, in the order check() takes them
    _hints_given: int = field(default=0, repr=False)

    @property
    def name(self) -> str:
        return f"exercise {self.lesson:02d}.{self.number}"

    def check(self, *answer) -> Verdict:
        """Run the checker on `answer` and return its verdict (shown as text under the cell)."""
        if len(answer) != len(self.answer_names):
            raise TypeError(f"check() takes {len(self.answer_names)} answer(s): {', '.join(self.answer_names)}")
        where = f"ex.q{self.number}"
        empty = [n for n, a in zip(self.answer_names, answer) if a is None or a is Ellipsis]
        if empty:
            return Verdict("not attempted", f"{' and '.join(empty)} {'is' if len(empty) == 1 else 'are'} still "
                                            f"empty: write your answer in the cell above and run both cells "
                                            f"again. {where}.hint() gives a hint.")
        try:
            return Verdict("correct", self.checker(*answer))
        except NotAttempted as err:
            return Verdict("not attempted", f"{err} {where}.hint() gives a hint.")
        except NotYet as err:
            return Verdict("not yet", f"{err} ({where}.hint() for a hint, {where}.solution() for the solution.)")
        except NotImplementedError:
            return Verdict("not attempted", f"your code still raises NotImplementedError. {where}.hint() gives a hint.")
        except Exception as err:  # the learner's code failed: say how, without a traceback to dig through
            return Verdict("not yet", f"running your answer raised {type(err).__name__}: {err} "
                                      f"({where}.hint() for a hint.)")

    def hint(self, step: int | None = None) -> str:
        """Return the next hint (or hint `step`, counting from 1)."""
        if step is None:
            self._hints_given = min(self._hints_given + 1, len(self.hints))
            step = self._hints_given
        if not 1 <= step <= len(self.hints):
            raise ValueError(f"{self.name} has hints 1 to {len(self.hints)}")
        more = "" if step == len(self.hints) else f" (run hint() again for hint {step + 1})"
        return _Text(f"Hint {step} of {len(self.hints)}: {self.hints[step - 1]}{more}")

    def solution(self) -> str:
        """Return the worked solution's code (shown as code in Jupyter)."""
        return _Text(self.solution_code, code=True)


class _Text(str):
    """A string that Jupyter shows as Markdown (code in a code block) and Python prints as it is."""
    def __new__(cls, text: str, code: bool = False):
        obj = super().__new__(cls, text)
        obj.code = code
        return obj

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return f"```python\n{self}\n```" if self.code else str(self)


EXERCISES: dict[int, dict[int, Exercise]] = {}


def _exercise(lesson: int, number: int, title: str, answers: str, hints: list[str], solution: str):
    """Register the decorated checker as exercise `lesson`.`number`; `answers` names what check() takes."""
    def register(checker: Callable[..., str]) -> Callable[..., str]:
        EXERCISES.setdefault(lesson, {})[number] = Exercise(
            lesson, number, title, checker, tuple(hints), textwrap.dedent(solution).strip(),
            tuple(a.strip() for a in answers.split(",")))
        return checker
    return register


def lesson(number: int) -> SimpleNamespace:
    """Return lesson `number`'s checked exercises as ``q<N>`` attributes (``ex.q5.check(...)``)."""
    if number not in EXERCISES:
        raise ValueError(f"lesson {number} has no checked exercises; lessons with them: {sorted(EXERCISES)}")
    return SimpleNamespace(**{f"q{n}": e for n, e in sorted(EXERCISES[number].items())})


# ---------------------------------------------------------------- shared helpers

def _returned(value, what: str):
    """Raise NotAttempted when a function answer returned None (the template's `...` body)."""
    if value is None:
        raise NotAttempted(f"{what} returned None: write its body (ending with `return ...`) and run both cells again.")
    return value


def _floats(value, what: str) -> np.ndarray:
    """`value` (list, tuple, array, tensor or number) as a float64 NumPy array."""
    try:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().double().numpy()
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise NotYet(f"{what} should be numbers, got {type(value).__name__}: {err}") from err


@functools.cache
def _fashion(rows: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `rows` Fashion-MNIST training images (uint8 N x 1 x 28 x 28) and labels: the lesson's data."""
    found = finder.find_fashion_mnist_csv(smoke=env.smoke_mode())
    return fashion_csv.read_fashion_csv(found.train, max_rows=rows)


def _fashion_csv_path(split: str = "test") -> Path:
    found = finder.find_fashion_mnist_csv(smoke=env.smoke_mode())
    return Path(found.test if split == "test" else found.train)


@functools.cache
def _fer(split: str) -> data.TensorImages:
    """Every FER2013 face of `split` ("train" or "test"), decoded once: the lesson's data."""
    found = finder.find_fer2013(smoke=env.smoke_mode())
    return data.preload_faces(found.test if split == "test" else found.train)


# The class sizes of FER2013's training folder (Kaggle layout: angry, disgust, fear, happy, neutral, sad, surprise),
# counted from the full data. The shipped sample has the same number of faces in every class, so the
# imbalance exercises use these real labels, in ImageFolder's order, whichever data the lesson found.
FER_TRAIN_SIZES = (3995, 436, 4097, 7215, 4965, 4830, 3171)


def _fer_train_targets() -> torch.Tensor:
    """The class index of each of FER2013's 28,709 training faces, in ImageFolder's order."""
    return torch.repeat_interleave(torch.arange(7), torch.tensor(FER_TRAIN_SIZES))


def _pil_images(images: torch.Tensor) -> list:
    from torchvision.transforms.v2 import functional as TF
    return [TF.to_pil_image(image) for image in images]


def _nearest_mean_predictions(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Predictions of a nearest-class-mean classifier on pixels: real, imperfect predictions in no time."""
    flat = images.flatten(1).float()
    means = torch.stack([flat[labels == c].mean(0) for c in range(num_classes)])
    return torch.cdist(flat, means).argmin(1)


# ================================================================ lesson 01: install, device, the four steps

@_exercise(1, 4, "pick the device", "pick_device", [
    "Ask torch in the order of preference: `torch.cuda.is_available()`, then "
    "`torch.backends.mps.is_available()`, else the CPU.",
    "Return a `torch.device`: `torch.device(\"cuda\")`, `torch.device(\"mps\")` or `torch.device(\"cpu\")`.",
], """
    def pick_device():
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
""")
def _check_pick_device(pick_device) -> str:
    machines = [("a machine with neither CUDA nor MPS", False, False, "cpu"),
                ("a machine with a CUDA GPU", True, False, "cuda"),
                ("a Mac with Apple silicon (MPS)", False, True, "mps")]
    for where, cuda, mps, expected in machines:
        with mock.patch("torch.cuda.is_available", return_value=cuda), \
                mock.patch("torch.cuda.device_count", return_value=int(cuda)), \
                mock.patch("torch.backends.mps.is_available", return_value=mps), \
                mock.patch("torch.backends.mps.is_built", return_value=mps):
            got = _returned(pick_device(), "pick_device()")
        try:
            kind = torch.device(got).type
        except (TypeError, RuntimeError) as err:
            raise NotYet(f"pick_device() returned {got!r}, which is not a device: return torch.device(...).") from err
        if kind != expected:
            raise NotYet(f"on {where} pick_device() returns {str(got)!r}; it should be {expected!r}.")
    return "pick_device() chose CUDA, MPS and the CPU correctly on the three kinds of machine (simulated)."


@_exercise(1, 5, "optimizer steps in an epoch", "steps_per_epoch", [
    "One optimizer step per batch: the question is how many batches a DataLoader makes.",
    "Without `drop_last` the last, smaller batch counts too (round up); with `drop_last=True` it is "
    "dropped (round down). `math.ceil` and `//` are all you need.",
], """
    import math

    def steps_per_epoch(num_images, batch_size, drop_last=False):
        return num_images // batch_size if drop_last else math.ceil(num_images / batch_size)
""")
def _check_steps(steps_per_epoch) -> str:
    from torch.utils.data import DataLoader
    cases = [(54_000, 256, False), (54_000, 256, True), (60_000, 16, False), (60_000, 512, True),
             (100, 10, False), (100, 10, True), (5, 64, False), (5, 64, True)]
    for n, batch, drop_last in cases:
        expected = len(DataLoader(range(n), batch_size=batch, drop_last=drop_last))
        got = _returned(steps_per_epoch(n, batch, drop_last), "steps_per_epoch(...)")
        if isinstance(got, float) and not float(got).is_integer():
            raise NotYet(f"steps_per_epoch({n}, {batch}, drop_last={drop_last}) returned {got}: a number of "
                         "steps is a whole number.")
        if got != expected:
            raise NotYet(f"steps_per_epoch({n}, {batch}, drop_last={drop_last}) returned {got}; a DataLoader "
                         f"makes {expected} batches.")
    return "steps_per_epoch agrees with len(DataLoader) for all 8 cases, drop_last or not."


@_exercise(1, 6, "accuracy from logits", "accuracy", [
    "The predicted class of each image is the index of its largest logit: `logits.argmax(dim=1)`.",
    "Compare with the labels and take the mean of the matches as a float: "
    "`(predictions == labels).float().mean().item()`.",
], """
    def accuracy(logits, labels):
        return (logits.argmax(dim=1) == labels).float().mean().item()
""")
def _check_accuracy(accuracy) -> str:
    images, labels = _fashion()
    predictions = _nearest_mean_predictions(images, labels, 10)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(len(labels), 10, generator=generator)
    logits[torch.arange(len(labels)), predictions] += 5          # real, imperfect predictions as logits
    for n in (10, len(labels)):                                  # 10 images and 10 classes: a square case first
        expected = (logits[:n].argmax(1) == labels[:n]).float().mean().item()
        got = float(_floats(_returned(accuracy(logits[:n], labels[:n]), "accuracy(...)"), "accuracy"))
        if math.isclose(got, 100 * expected, rel_tol=1e-6) and expected > 0:
            raise NotYet(f"accuracy is {got}: that is a percentage; return the fraction {expected:.4f}.")
        if math.isclose(got, expected * n, rel_tol=1e-6) and n > 1:
            raise NotYet(f"accuracy is {got}: that is the number of right answers; divide by the number of images.")
        if not math.isclose(got, expected, abs_tol=1e-6):
            raise NotYet(f"accuracy on {n} real images is {got:.4f}; expected {expected:.4f}. Is the argmax "
                         "taken over the classes (dim=1)?")
    return f"accuracy matches on {len(labels)} real Fashion-MNIST images and on a 10 x 10 case."


# ================================================================ lesson 02: transforms

@_exercise(2, 2, "the mean and std of the FER test split", "test_mean, test_std", [
    "Put every test face in one tensor: `data.preload_faces(fer.test).images` (with the `fer` this lesson found) "
    "decodes them to uint8 N x 1 x 48 x 48.",
    "Scale to 0-1 first (divide by 255), then take the mean and the std over *all* pixels of all images, "
    "not per image.",
], """
    found = finder.find_fer2013(smoke=env.smoke_mode())
    test_pixels = data.preload_faces(found.test).images.float() / 255
    test_mean, test_std = test_pixels.mean().item(), test_pixels.std().item()
""")
def _check_test_stats(test_mean, test_std) -> str:
    values = []
    for what, value in (("test_mean", test_mean), ("test_std", test_std)):
        array = _floats(value, what).reshape(-1)
        if array.size != 1:
            raise NotYet(f"{what} has {array.size} numbers; FER faces are grayscale: one number each.")
        values.append(float(array[0]))
    mean, std = values
    pixels = _fer("test").images.float() / 255
    true_mean, true_std = pixels.mean().item(), pixels.std().item()
    if mean > 1.5 or std > 1.5:
        raise NotYet(f"mean {mean:.1f}, std {std:.1f}: these are on the 0-255 scale; Normalize works on "
                     "ToDtype(scale=True)'s 0-1 scale, so divide by 255.")
    if math.isclose(mean, 0.485, abs_tol=0.002) or math.isclose(std, 0.229, abs_tol=0.002):
        raise NotYet("these are ImageNet's numbers (of its red channel); measure the FER test faces themselves.")
    per_image_std = pixels.flatten(1).std(1).mean().item()
    if abs(std - per_image_std) < 5e-4 < abs(std - true_std):
        raise NotYet(f"std {std:.4f} is the mean of each image's own std; the std over all pixels is larger, "
                     "because the images' brightness differs too.")
    if abs(mean - true_mean) > 5e-4 or abs(std - true_std) > 5e-4:
        train = _fer("train").images.float() / 255
        if abs(mean - train.mean().item()) < 5e-4:
            raise NotYet("these are the training split's numbers; the exercise asks for the test split's.")
        raise NotYet(f"mean {mean:.4f}, std {std:.4f}; the FER test faces have mean {true_mean:.3f} and "
                     f"std {true_std:.3f}.")
    return (f"the {len(pixels):,} test faces have mean {true_mean:.4f} and std {true_std:.4f} (pixels scaled to "
            "0-1). We still normalise test images with the *training* numbers: the model was trained on inputs "
            "scaled that way, and the test set must not shape the model or its preprocessing.")


def _check_pipelines(train_tf, eval_tf, pil_images: list, size: int, channels: int, what: str) -> str:
    """Shared by the pipeline exercises: behaviour of a training and an evaluation transform on real images."""
    def run(tf, image, name):
        out = _returned(tf(image), name)
        if not isinstance(out, torch.Tensor):
            raise NotYet(f"{name} returns {type(out).__name__}; the model needs a tensor: end with v2.ToImage() "
                         "and v2.ToDtype(torch.float32, scale=True) (then Normalize).")
        if out.dtype != torch.float32:
            raise NotYet(f"{name} returns a {out.dtype} tensor; add v2.ToDtype(torch.float32, scale=True).")
        if tuple(out.shape) != (channels, size, size):
            raise NotYet(f"{name} returns shape {tuple(out.shape)}; {what} needs {(channels, size, size)}.")
        return out
    evaluated = torch.stack([run(eval_tf, image, "eval_tf(image)") for image in pil_images])
    again = torch.stack([run(eval_tf, image, "eval_tf(image)") for image in pil_images])
    if not torch.equal(evaluated, again):
        raise NotYet("eval_tf gives a different result for the same image each time: random augmentation belongs "
                     "in the training pipeline only; evaluation must be repeatable.")
    mean, std = evaluated.mean().item(), evaluated.std().item()
    if not (abs(mean) < 0.25 and 0.75 < std < 1.3):
        scale = " (the 0-1 scale: add v2.Normalize with the training mean and std)" if 0 <= evaluated.min() and \
            evaluated.max() <= 1 else ""
        raise NotYet(f"eval_tf's outputs have mean {mean:.2f} and std {std:.2f} over {len(pil_images)} real "
                     f"images{scale}; normalised with the training set's own mean and std they are near 0 and 1.")
    changed, upside_down = 0, 0
    for image, reference in zip(pil_images, evaluated):
        for _ in range(4):
            out = run(train_tf, image, "train_tf(image)")
            changed += not torch.equal(out, reference)
            upside_down += torch.equal(out, reference.flip(-2)) and not torch.equal(reference, reference.flip(-2))
    if upside_down:
        raise NotYet("train_tf turns images upside down (a vertical flip): no test image is upside down, so the "
                     "model would spend capacity on views it never meets. Mirror left-right only.")
    if changed == 0:
        raise NotYet("train_tf never changes an image: add a random augmentation such as v2.RandomHorizontalFlip().")
    train_mean = torch.stack([run(train_tf, image, "train_tf(image)") for image in pil_images]).mean().item()
    if abs(train_mean - mean) > 0.25:
        raise NotYet(f"train_tf's outputs average {train_mean:.2f} but eval_tf's {mean:.2f}: both pipelines must "
                     "scale and normalise the same way.")
    return (f"on {len(pil_images)} real images both pipelines give float32 {channels} x {size} x {size} tensors "
            f"normalised near mean 0 / std 1 (here {mean:.2f} / {std:.2f}); eval_tf is repeatable, train_tf "
            f"varies the images ({changed} of {4 * len(pil_images)} draws differed) and never flips them upside down.")


@_exercise(2, 3, "Fashion-MNIST pipelines you would defend", "train_tf, eval_tf", [
    "Both pipelines take a PIL image (what `datasets.FashionMNIST` returns) and end with "
    "`v2.ToImage()`, `v2.ToDtype(torch.float32, scale=True)` and `v2.Normalize(...)`.",
    "Normalise with Fashion-MNIST's own training mean and std: `data.FASHION_MEAN` and `data.FASHION_STD`.",
    "Augment the training pipeline only, with what a garment photo can plausibly vary by: "
    "`v2.RandomHorizontalFlip()`, maybe a small `v2.RandomCrop(28, padding=2)`. No vertical flips.",
], """
    from torchvision.transforms import v2

    MEAN, STD = data.FASHION_MEAN, data.FASHION_STD              # measured on the training images
    to_input = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    train_tf = v2.Compose([v2.RandomCrop(28, padding=2), v2.RandomHorizontalFlip(), *to_input])
    eval_tf = v2.Compose(to_input)
""")
def _check_fashion_pipelines(train_tf, eval_tf) -> str:
    images, _ = _fashion()
    return _check_pipelines(train_tf, eval_tf, _pil_images(images[:64]), 28, 1, "a Fashion-MNIST model")


@_exercise(2, 4, "undo Normalize to show an image", "denormalize", [
    "Normalize computes `(x - mean) / std` per channel; undo it in the opposite order: `x * std + mean`.",
    "Shape mean and std as (C, 1, 1) so that they line up with the channels of a C x H x W image (and of an "
    "N x C x H x W batch): `torch.tensor(std).view(-1, 1, 1)`.",
    "Return a new tensor; do not change the one you were given (`mul_`/`add_` would).",
], """
    def denormalize(images, mean, std):
        mean = torch.tensor(mean, dtype=images.dtype).view(-1, 1, 1)
        std = torch.tensor(std, dtype=images.dtype).view(-1, 1, 1)
        return images * std + mean
""")
def _check_denormalize(denormalize) -> str:
    from torchvision.transforms import v2
    faces = _fer("test").images[:8].float() / 255
    clothes = _fashion()[0][:8].float() / 255
    colour = torch.cat([clothes, clothes.flip(-1), clothes.flip(-2)], dim=1)    # 3 channels that differ
    cases = [("8 grayscale faces (a batch)", faces, data.FER_MEAN, data.FER_STD),
             ("one 3-channel image", colour[0], (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
             ("a batch of 3-channel images", colour, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    for what, original, mean, std in cases:
        normalised = v2.Normalize(mean, std)(original)
        given = normalised.clone()
        try:
            back = _returned(denormalize(given, mean, std), "denormalize(...)")
        except RuntimeError as err:
            raise NotYet(f"for {what} of shape {tuple(original.shape)} denormalize raised: {err}. Shape mean and std "
                         "(C, 1, 1) so that they broadcast over the channels.") from err
        if not torch.equal(given, normalised):
            raise NotYet("denormalize changed the tensor it was given (an in-place operation such as mul_ or add_); "
                         "a caller may still need it. Return a new tensor.")
        if not isinstance(back, torch.Tensor) or back.shape != original.shape:
            raise NotYet(f"for {what} of shape {tuple(original.shape)} denormalize returns "
                         f"{tuple(back.shape) if isinstance(back, torch.Tensor) else type(back).__name__}; "
                         "shape mean and std (C, 1, 1) so that they broadcast over the channels.")
        if not torch.allclose(back, original, atol=1e-5):
            error = (back - original).abs().max().item()
            raise NotYet(f"on {what}, denormalize(Normalize(x)) differs from x by up to {error:.3f}: "
                         "undo the subtraction and the division, in reverse order.")
    return "denormalize undoes Normalize exactly on real grayscale faces and on 3-channel images, batched or not."


@_exercise(2, 5, "face pipelines for lesson 04", "face_train_tf, face_eval_tf", [
    "Both take a 48 x 48 grayscale PIL face and end with `v2.ToImage()`, `v2.ToDtype(torch.float32, "
    "scale=True)`, `v2.Normalize(MEAN, STD)` with the FER training mean and std (`data.FER_MEAN`, `data.FER_STD`).",
    "Keep the faces' own 48 px, the size lesson 04 trains at: resizing to 224 (source 000's choice) costs about "
    "20 times the compute and adds no detail.",
    "Augment the training pipeline with what real faces vary by: a left-right mirror "
    "(`v2.RandomHorizontalFlip()`), a small shift or rotation. A face is never upside down.",
], """
    from torchvision.transforms import v2

    MEAN, STD = data.FER_MEAN, data.FER_STD                      # measured on the training faces
    to_input = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    face_train_tf = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomRotation(10), *to_input])
    face_eval_tf = v2.Compose(to_input)
""")
def _check_face_pipelines(face_train_tf, face_eval_tf) -> str:
    faces = _fer("test").images
    return _check_pipelines(face_train_tf, face_eval_tf, _pil_images(faces[:: max(1, len(faces) // 48)][:48]),
                            48, 1, "lesson 04's EmotionNet, which trains on the faces' own 48 px,")


# ================================================================ lesson 03: a Dataset, the loops, mixed precision, the metrics

@_exercise(3, 5, "per-class recall from the confusion matrix", "per_class_recall", [
    "In scikit-learn's confusion matrix, row i holds the images whose *true* class is i.",
    "Recall of class i: the right answers on the diagonal divided by that row's sum: "
    "`confusion.diagonal() / confusion.sum(axis=1)`.",
], """
    import numpy as np

    def per_class_recall(confusion):
        confusion = np.asarray(confusion, dtype=float)
        return confusion.diagonal() / confusion.sum(axis=1)
""")
def _check_recall(per_class_recall) -> str:
    from sklearn.metrics import confusion_matrix, recall_score
    images, labels = _fashion()
    predictions = _nearest_mean_predictions(images, labels, 10)
    confusion = confusion_matrix(labels, predictions, labels=range(10))
    expected = recall_score(labels, predictions, average=None, labels=range(10), zero_division=0)
    got = _floats(_returned(per_class_recall(confusion.copy()), "per_class_recall(...)"), "the recalls").reshape(-1)
    if got.size == 1:
        raise NotYet(f"one number ({got[0]:.3f}) for ten classes; return one recall per class.")
    if got.size != 10:
        raise NotYet(f"{got.size} numbers for 10 classes.")
    if np.allclose(got, expected, atol=1e-6):
        return ("per_class_recall matches scikit-learn's on the confusion matrix of a simple classifier's "
                f"predictions for {len(labels)} real Fashion-MNIST images.")
    precision = confusion.diagonal() / np.maximum(confusion.sum(axis=0), 1)
    if np.allclose(got, precision):
        raise NotYet("these are the precisions: you divided by the column sums (how often each class was "
                     "*predicted*). Recall divides by the row sums (how many images truly are of that class).")
    if np.allclose(got, confusion.diagonal()):
        raise NotYet("these are counts of right answers; divide each by the number of images of its class.")
    raise NotYet(f"recalls {np.round(got, 3).tolist()}; expected {np.round(expected, 3).tolist()}.")


@_exercise(3, 8, "a Dataset over the Kaggle CSV", "CSVImages", [
    "Read the CSV once in `__init__` with pandas; column 0 is the label, the other 784 are the pixels.",
    "Keep the pixels as one uint8 tensor of shape N x 1 x 28 x 28 (`.reshape(-1, 1, 28, 28)`) and the "
    "labels as an int64 tensor.",
    "`__len__` returns N; `__getitem__(i)` returns `(images[i].float() / 255, int(labels[i]))`.",
], """
    import pandas as pd
    from torch.utils.data import Dataset

    class CSVImages(Dataset):
        def __init__(self, path):
            table = pd.read_csv(path).to_numpy()
            self.labels = torch.from_numpy(table[:, 0]).long()
            self.images = torch.from_numpy(table[:, 1:].astype("uint8")).reshape(-1, 1, 28, 28)

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, index):
            return self.images[index].float() / 255, int(self.labels[index])
""")
def _check_csv_dataset(CSVImages) -> str:
    from torch.utils.data import DataLoader
    path = _fashion_csv_path("test")
    images, labels = fashion_csv.read_fashion_csv(path)
    dataset = CSVImages(path)
    n = _returned(dataset.__len__(), "len(dataset)")
    if n != len(labels):
        raise NotYet(f"len(dataset) is {n}, but {path.name} holds {len(labels)} images (one per row after the header).")
    for index in (0, 1, n // 2, n - 1):
        item = _returned(dataset[index], f"dataset[{index}]")
        if not isinstance(item, tuple) or len(item) != 2:
            raise NotYet(f"dataset[{index}] should be a pair (image, label), got {type(item).__name__}.")
        image, label = item
        if not isinstance(image, torch.Tensor) or image.dtype != torch.float32:
            raise NotYet(f"dataset[{index}]'s image is {type(image).__name__} "
                         f"{getattr(image, 'dtype', '')}; return a float32 tensor, the dtype of the network's "
                         "weights (`.float()`; NumPy divides in float64).")
        if image.numel() == 785:
            raise NotYet("the image has 785 values: the label column was taken as a pixel.")
        if tuple(image.shape) != (1, 28, 28):
            raise NotYet(f"the image has shape {tuple(image.shape)}; a convolution needs channels x height x width: "
                         "(1, 28, 28).")
        expected = images[index].float() / 255
        if image.max() > 1.5:
            raise NotYet("pixel values go up to 255; scale them to 0-1 (divide by 255).")
        if not torch.allclose(image, expected, atol=1e-6):
            raise NotYet(f"dataset[{index}]'s image differs from row {index} of the file.")
        if int(label) != int(labels[index]):
            raise NotYet(f"dataset[{index}]'s label is {label}, but row {index} says {int(labels[index])}.")
    batch_images, batch_labels = next(iter(DataLoader(dataset, batch_size=64, shuffle=False)))
    if tuple(batch_images.shape) != (min(64, n), 1, 28, 28) or batch_labels.dtype != torch.int64:
        raise NotYet(f"a DataLoader batch is {tuple(batch_images.shape)} / {batch_labels.dtype}; expected "
                     f"{(min(64, n), 1, 28, 28)} images and int64 labels.")
    return (f"CSVImages reads all {n:,} rows of {path.name}: float 1 x 28 x 28 images scaled 0-1, the right labels, "
            "and DataLoader batches of the right shape.")


def _small_model(seed: int = 0, num_classes: int = 10) -> nn.Module:
    from helpers import models
    torch.manual_seed(seed)
    return models.build_model("fashion_cnn", num_classes, widths=(8, 16, 16))


@functools.cache
def _evaluate_reference():
    """300 real images, a small CNN's weights (BatchNorm statistics from real data), and its mean loss, accuracy
    and mean of batch-mean losses (batches of 128) on them."""
    images, labels = _fashion(300)
    images = images.float() / 255
    model = _small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(30):                                            # a little training: confident, real logits
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images[:256]), labels[:256]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(images)
    losses = nn.functional.cross_entropy(logits, labels, reduction="none")
    batch_mean = float(np.mean([chunk.mean().item() for chunk in losses.split(128)]))
    return (images, labels, {k: v.clone() for k, v in model.state_dict().items()}, losses.mean().item(),
            (logits.argmax(1) == labels).float().mean().item(), batch_mean)


@_exercise(3, 9, "an evaluation function", "mean_loss_and_accuracy", [
    "Evaluation changes nothing: `model.eval()` (BatchNorm uses its running statistics and does not update "
    "them) and `with torch.no_grad():` (no graph is recorded).",
    "Sum the loss over images (`F.cross_entropy(logits, labels, reduction=\"sum\")`) and the right answers, "
    "then divide both by the number of images: the last batch is usually smaller, so a mean of batch means is off.",
], """
    import torch.nn.functional as F

    def mean_loss_and_accuracy(model, loader, device):
        model.eval()
        total_loss, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                logits = model(images)
                total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
                correct += (logits.argmax(1) == labels).sum().item()
                count += len(labels)
        return total_loss / count, correct / count
""")
def _check_evaluate(mean_loss_and_accuracy) -> str:
    from torch.utils.data import DataLoader, TensorDataset
    images, labels, saved, true_loss, true_acc, batch_mean = _evaluate_reference()
    loader = DataLoader(TensorDataset(images, labels), batch_size=128)   # batches of 128, 128, 44
    model = _small_model()
    model.load_state_dict(saved)
    grad_seen = []
    hook = model.register_forward_hook(lambda *_: grad_seen.append(torch.is_grad_enabled()))
    model.train()                                                  # as after a training epoch
    try:
        result = _returned(mean_loss_and_accuracy(model, loader, torch.device("cpu")), "mean_loss_and_accuracy(...)")
    finally:
        hook.remove()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, saved[k])]
    if changed:
        raise NotYet(f"evaluating changed the model ({changed[0]}, ...): in train mode BatchNorm updates its running "
                     "statistics from the batches it sees. Call model.eval() first.")
    if any(grad_seen):
        raise NotYet("the forward passes recorded gradients: wrap the loop in `with torch.no_grad():` "
                     "(it saves memory and time; model.eval() does not do that).")
    try:
        loss, acc = (float(v) for v in result)
    except (TypeError, ValueError) as err:
        raise NotYet(f"mean_loss_and_accuracy should return (mean loss, accuracy), got {result!r}") from err
    if math.isclose(loss, batch_mean, rel_tol=1e-5) and not math.isclose(loss, true_loss, rel_tol=1e-5):
        raise NotYet(f"loss {loss:.4f} is the mean of the batch means; with batches of 128, 128 and 44 images that "
                     f"weighs the last images more. Sum over images and divide by their number: {true_loss:.4f}.")
    if not math.isclose(loss, true_loss, rel_tol=5e-3):          # room for autocast's rounding
        model.eval()
        with torch.no_grad():
            logits = model(images)
        for wrong, why in ((nn.functional.cross_entropy(logits, labels, label_smoothing=0.1).item(),
                            "with label smoothing; measure the plain cross-entropy"),
                           (nn.functional.cross_entropy(logits.softmax(1), labels).item(),
                            "on softmax probabilities; give the loss the logits")):
            if math.isclose(loss, wrong, rel_tol=5e-3):
                raise NotYet(f"mean loss {loss:.4f} is the cross-entropy {why} (expected {true_loss:.4f}).")
        raise NotYet(f"mean loss {loss:.4f}; expected {true_loss:.4f} (cross-entropy on the logits, per image).")
    if not math.isclose(acc, true_acc, abs_tol=1.5 / len(labels)):   # one image may flip under autocast
        raise NotYet(f"accuracy {acc:.4f}; expected {true_acc:.4f} (a fraction of the images).")
    return ("mean_loss_and_accuracy leaves the model unchanged, records no gradients and gives the per-image mean loss and the "
            f"accuracy on 300 real images in batches of 128, 128 and 44 ({true_loss:.3f}, {true_acc:.3f}).")


_STEP_SCALE = 2.0 ** 10                    # the GradScaler's scale in the check: large, so that mistakes show


def _step_setup():
    model = _small_model(1, 7)
    return model, torch.optim.SGD(model.parameters(), lr=0.1), torch.amp.GradScaler("cpu", init_scale=_STEP_SCALE)


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@functools.cache
def _step_reference() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """16 real faces, their labels, the model's starting weights, and its true bfloat16 gradients on them with
    the loss on logits (right) and on probabilities (wrong)."""
    faces = _fer("test")
    every = max(1, len(faces) // 16)
    images, labels = faces.images[::every][:16].float() / 255, faces.labels[::every][:16]

    def grads(probabilities: bool) -> torch.Tensor:
        model = _step_setup()[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):           # the same rounding as a correct answer's
            logits = model(images)
            loss = nn.functional.cross_entropy(logits.softmax(1) if probabilities else logits, labels)
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])
    return images, labels, _flat(_step_setup()[0]), grads(False), grads(True)


@_exercise(3, 10, "a training step with autocast, a GradScaler and clipping", "train_step", [
    "The order: `optimizer.zero_grad()`; the forward pass and the loss under "
    "`torch.autocast(device_type=images.device.type, dtype=...)`; `scaler.scale(loss).backward()`.",
    "The gradients are now multiplied by the scale. `scaler.unscale_(optimizer)` divides them back *before* "
    "`torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)`, or you clip the scaled values.",
    "Then `scaler.step(optimizer)` (it skips the step if a gradient is inf or NaN) and `scaler.update()`. "
    "The loss sees the model's raw logits, never softmax probabilities. On a CPU the autocast dtype is "
    "`torch.bfloat16`, on CUDA `torch.float16`.",
], """
    import torch.nn.functional as F

    def train_step(model, images, labels, optimizer, scaler, max_norm=1.0):
        device_type = images.device.type                       # "cuda", "cpu" or "mps": the type autocast asks for
        dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device_type, dtype=dtype):
            loss = F.cross_entropy(model(images), labels)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)                             # true gradients again, before clipping
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.step(optimizer)
        scaler.update()
        return loss.item()
""")
def _check_train_step(train_step) -> str:
    images, labels, start, grads, wrong = _step_reference()
    max_norm = 0.5 * grads.norm().item()                   # clipping halves the true gradient
    expected = -0.1 * grads * (max_norm / grads.norm())
    model, optimizer, scaler = _step_setup()
    autocast_on = []
    hook = model.register_forward_hook(lambda *_: autocast_on.append(torch.is_autocast_enabled("cpu")))
    loss = _returned(train_step(model, images, labels, optimizer, scaler, max_norm), "train_step(...)")
    hook.remove()
    update = _flat(model) - start
    if not autocast_on or not all(autocast_on):
        raise NotYet("the forward pass did not run under autocast on this CPU: use "
                     "torch.autocast(device_type=images.device.type, ...). A fixed 'cuda' does nothing on a CPU, "
                     "and a torch.device is refused.")
    ratio = update.norm().item() / expected.norm().item()
    cosine = torch.nn.functional.cosine_similarity(update, expected, dim=0).item()
    if ratio < 0.01:
        raise NotYet(f"the update is {1 / ratio:.0f} times too small: you clipped the *scaled* gradients. Call "
                     "scaler.unscale_(optimizer) before clip_grad_norm_.")
    if ratio > 100:
        raise NotYet(f"the update is {ratio:.0f} times too large: optimizer.step() applied the scaled gradients. "
                     "Step through the scaler: scaler.step(optimizer).")
    cosine_wrong = torch.nn.functional.cosine_similarity(update, -wrong, dim=0).item()
    if cosine_wrong > 0.95 and cosine_wrong > cosine + 0.1:
        raise NotYet("the gradients are those of the loss on softmax probabilities: CrossEntropyLoss applies "
                     "log-softmax itself, so give it the raw logits.")
    if 1.6 < ratio < 2.5 and cosine > 0.95:
        raise NotYet(f"the update is {ratio:.1f} times the clipped one: the gradients were not clipped to "
                     "max_norm (clip after unscale_, before scaler.step).")
    if not (0.85 < ratio < 1.15 and cosine > 0.95):
        raise NotYet(f"the update differs from a correct step (size x{ratio:.2f}, direction cosine {cosine:.3f}).")
    try:
        loss = float(loss)
    except (TypeError, ValueError) as err:
        raise NotYet(f"train_step should return the loss as a number, got {type(loss).__name__}") from err
    second_start = _flat(model)
    for p in model.parameters():              # make what the first step left in .grad (if anything) stand out
        if p.grad is not None:
            p.grad.mul_(1e3 * _STEP_SCALE)
    train_step(model, images, labels, optimizer, scaler, 1e9)        # a second step, no clipping: did it reset?
    second = _flat(model) - second_start
    if second.norm().item() > 10 * (0.1 * grads).norm().item():     # a correct step is about 0.1 * |gradient|
        raise NotYet("the second step is far too large: the first step's gradients, still stored in the model, "
                     "were added to the new ones. Call optimizer.zero_grad() in every step.")
    return ("one step under bfloat16 autocast on real faces moved the weights as a correct step does, the true "
            f"gradients clipped (size x{ratio:.3f}, direction cosine {cosine:.4f}), and a second step started from "
            "fresh gradients.")


@_exercise(3, 11, "autocast's settings for any device", "amp_settings", [
    "`torch.autocast` asks for the device *type*: `torch.device(device).type` turns `\"cuda:0\"` or "
    "`torch.device(\"cuda\", 1)` into `\"cuda\"` (torch 2.14 takes \"cuda:0\" too, but then skips its "
    "CUDA-only checks; lesson 04 measures that).",
    "On CUDA: float16 with a GradScaler (small float16 gradients would underflow). Elsewhere (CPU, MPS): "
    "bfloat16, which has float32's range, so no scaler.",
], """
    def amp_settings(device):
        device_type = torch.device(device).type
        if device_type == "cuda":
            return device_type, torch.float16, True
        return device_type, torch.bfloat16, False
""")
def _check_amp_settings(amp_settings) -> str:
    cases = [("cuda:0", "cuda"), (torch.device("cuda", 1), "cuda"), ("cuda", "cuda"), (torch.device("cpu"), "cpu"),
             ("cpu", "cpu"), ("mps", "mps")]
    for device, kind in cases:
        got = _returned(amp_settings(device), f"amp_settings({device!r})")
        try:
            device_type, dtype, use_scaler = got
        except (TypeError, ValueError) as err:
            raise NotYet(f"amp_settings({device!r}) should return (device_type, dtype, use_scaler), got {got!r}") from err
        if not isinstance(device_type, str):
            raise NotYet(f"amp_settings({device!r}) gives device_type {device_type!r}, a {type(device_type).__name__}; "
                         "torch.autocast wants a string such as 'cuda' and refuses a torch.device.")
        if device_type != kind:
            raise NotYet(f"amp_settings({device!r}) gives device_type {device_type!r}; autocast asks for the type, "
                         f"{kind!r} (torch.device(device).type): with {device_type!r} it skips its checks.")
        if kind == "cuda" and not (dtype == torch.float16 and use_scaler or dtype == torch.bfloat16 and not use_scaler):
            raise NotYet(f"on CUDA, {dtype} with use_scaler={use_scaler}: float16 needs a GradScaler; bfloat16 "
                         "(on GPUs that have it) does not.")
        if kind != "cuda" and dtype != torch.bfloat16:
            raise NotYet(f"on {kind!r}, dtype {dtype}: the course uses bfloat16 off CUDA; it has float32's range, "
                         "so it needs no scaler (float16 does).")
        if kind != "cuda" and use_scaler:
            raise NotYet(f"on {kind!r}, use_scaler=True: bfloat16 has float32's range, so gradients do not "
                         "underflow and no scaler is needed.")
    return "amp_settings gives autocast a device type and the right dtype and scaler for cuda:0, cuda:1, cpu and mps."


# ================================================================ lesson 05: saving, loading, predicting

def _saved_fashion_model(folder: Path) -> tuple[Path, nn.Module]:
    """A FashionCNN with real BatchNorm statistics saved as a state_dict in `folder`."""
    from helpers import models
    torch.manual_seed(5)
    model = models.build_model("fashion_cnn", 10)
    images = _fashion()[0][:256].float() / 255
    model.train()
    with torch.no_grad():
        model(images)
    model.eval()
    path = folder / "fashion_cnn_state_dict.pt"
    torch.save(model.state_dict(), path)
    return path, model


@_exercise(5, 4, "load a state_dict for inference", "load_for_inference", [
    "A state_dict holds only tensors: build the same architecture first "
    "(`models.build_model(\"fashion_cnn\", 10)`), then `model.load_state_dict(...)`.",
    "Read the file with `torch.load(path, map_location=\"cpu\", weights_only=True)`: it works on a machine "
    "without the GPU the file was saved on, and runs no code from the file.",
    "Before predicting, `model.eval()`: BatchNorm must use its saved running statistics.",
], """
    from helpers import models

    def load_for_inference(path):
        model = models.build_model("fashion_cnn", 10)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
""")
def _check_load_for_inference(load_for_inference) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path, saved = _saved_fashion_model(Path(folder))
        try:
            model = _returned(load_for_inference(path), "load_for_inference(path)")
        except RuntimeError as err:
            if "state_dict" not in str(err):
                raise
            raise NotYet("the saved tensors do not fit the model you built: build the same architecture "
                         f"(models.build_model('fashion_cnn', 10)). PyTorch said: {str(err).splitlines()[0]}") from err
    if not isinstance(model, nn.Module):
        raise NotYet(f"load_for_inference returns {type(model).__name__}; return the model (an nn.Module).")
    theirs, ours = model.state_dict(), saved.state_dict()
    if theirs.keys() != ours.keys() or any(theirs[k].shape != ours[k].shape for k in ours):
        raise NotYet("the model's layers do not match the saved ones: build the same architecture "
                     "(models.build_model('fashion_cnn', 10)).")
    different = [k for k in ours if not torch.equal(theirs[k].cpu(), ours[k])]
    if different:
        raise NotYet(f"{len(different)} of {len(ours)} tensors ({different[0]}, ...) are not the saved ones: "
                     "call model.load_state_dict(torch.load(...)).")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise NotYet("the model is not on the CPU; the exercise asks for a CPU model (map_location='cpu').")
    if model.training:
        raise NotYet("the model is in training mode: BatchNorm would normalise each batch with its own statistics "
                     "and predictions would depend on the batch. Return model.eval().")
    return "the loaded model has every saved tensor, is on the CPU and in eval mode."


@_exercise(5, 5, "a checkpoint that resumes exactly", "save_training_state, resume_training_state", [
    "A run continues exactly only if everything that changes during training is saved: the model's and the "
    "optimizer's `state_dict()` (Adam keeps two moving averages per weight) and the scheduler's.",
    "Save them in one dict with the epoch just finished: `torch.save({\"model\": ..., \"optimizer\": ..., "
    "\"scheduler\": ..., \"epoch\": epoch}, path)`.",
    "`resume_training_state` loads each `state_dict` into the object built afresh and returns the *next* "
    "epoch, `saved[\"epoch\"] + 1`, so the finished one is not trained twice.",
], """
    def save_training_state(path, model, optimizer, scheduler, epoch):
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch}, path)

    def resume_training_state(path, model, optimizer, scheduler):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        return saved["epoch"] + 1
""")
def _check_resume(save_training_state, resume_training_state) -> str:
    images, labels = _fashion(192)
    inputs = images.float().flatten(1) / 255
    batches = list(zip(inputs.split(32), labels.split(32)))        # 6 steps: 3 before saving, 3 after

    def build(seed):
        torch.manual_seed(seed)
        model = nn.Linear(784, 10)
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
        return model, optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=6)

    def steps(model, optimizer, scheduler, part):
        for x, y in part:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            scheduler.step()

    model, optimizer, scheduler = build(0)
    steps(model, optimizer, scheduler, batches[:3])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "last.pt"
        save_training_state(path, model, optimizer, scheduler, 1)
        steps(model, optimizer, scheduler, batches[3:])              # the run that was never interrupted
        fresh = build(1)
        start = _returned(resume_training_state(path, *fresh), "resume_training_state(...)")
    lr_now, lr_expected = fresh[1].param_groups[0]["lr"], scheduler.get_last_lr()[0]
    state = fresh[1].state_dict()["state"]
    if not state:
        raise NotYet("after resuming the optimizer has no state: AdamW's moving averages were not saved "
                     "(save optimizer.state_dict() and load it).")
    steps(*fresh, batches[3:])
    lr_end = fresh[1].param_groups[0]["lr"]
    if not math.isclose(lr_end, lr_expected, rel_tol=1e-9) or not math.isclose(lr_now, _lr_after(3), rel_tol=1e-6):
        raise NotYet(f"the resumed run's learning rate went from {lr_now:.2e} to {lr_end:.2e}; the uninterrupted "
                     f"run's from {_lr_after(3):.2e} to {lr_expected:.2e}: the schedule did not continue. Save and "
                     "load the scheduler's state_dict too.")
    if not all(torch.equal(a, b) for a, b in zip(fresh[0].state_dict().values(), model.state_dict().values())):
        raise NotYet("the resumed run's weights differ from the uninterrupted run's after the same steps: "
                     "save and load the model's, the optimizer's and the scheduler's state_dict.")
    if start != 2:
        raise NotYet(f"resume_training_state returns {start!r} after epoch 1 was saved; return the next epoch, 2, "
                     "or epoch 1 is trained twice.")
    return "the resumed run took the same 3 steps as the uninterrupted one, bit for bit, and starts at epoch 2."


def _lr_after(steps_taken: int) -> float:
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=6)
    for _ in range(steps_taken):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


@_exercise(5, 6, "predict one image with its probability", "predict_one", [
    "Prepare the image as in training: a float tensor scaled to 0-1 and normalised with the training mean and "
    "std, with a batch dimension in front (1 x 1 x 28 x 28).",
    "In eval mode and under `torch.no_grad()`, `model(x).softmax(dim=1)` gives the probabilities; the class is "
    "the largest one's index.",
], """
    from torchvision.transforms import v2

    def predict_one(model, image, mean, std, class_names):
        prepare = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
        model.eval()
        with torch.no_grad():
            probabilities = model(prepare(image).unsqueeze(0)).softmax(dim=1)[0]
        best = int(probabilities.argmax())
        return class_names[best], float(probabilities[best])
""")
def _check_predict_one(predict_one) -> str:
    from helpers.data import FASHION_CLASSES
    mean, std = data.FASHION_MEAN, data.FASHION_STD
    with tempfile.TemporaryDirectory() as folder:
        _, model = _saved_fashion_model(Path(folder))
    images = _fashion()[0][:6]
    for image in images:
        x = ((image.float() / 255 - mean[0]) / std[0]).unsqueeze(0)
        model.eval()
        with torch.no_grad():
            probabilities = model(x).softmax(1)[0]
        best = int(probabilities.argmax())
        model.train()                                             # as left by training: predict_one must switch
        got = _returned(predict_one(model, _pil_images(image[None])[0], mean, std, FASHION_CLASSES), "predict_one(...)")
        try:
            name, probability = got
            probability = float(probability)
        except (TypeError, ValueError) as err:
            raise NotYet(f"predict_one should return (class name, probability), got {got!r}") from err
        with torch.no_grad():
            logits = model.eval()(x)[0]
        if not 0 <= probability <= 1 or math.isclose(probability, logits.max().item(), abs_tol=1e-4):
            raise NotYet(f"the probability is {probability:.3f}: that is a logit; apply softmax(dim=1) first.")
        if name != FASHION_CLASSES[best] or not math.isclose(probability, probabilities[best].item(), abs_tol=1e-4):
            raise NotYet(f"predict_one says {name!r} with {probability:.3f}; the model says "
                         f"{FASHION_CLASSES[best]!r} with {probabilities[best].item():.3f}. Scale to 0-1, normalise "
                         "with the training mean and std, and predict in eval mode.")
    return "predict_one gives the model's class and probability for 6 real Fashion-MNIST images."


# ================================================================ lesson 06: imbalance

def _weights_vs(got, targets: torch.Tensor, num_classes: int, what: str) -> np.ndarray:
    """`got` as per-face weights normalised to sum 1, with messages for per-class vectors and bad values."""
    weights = _floats(_returned(got, what), "the weights").reshape(-1)
    if weights.size == num_classes and len(targets) != num_classes:
        raise NotYet(f"{what} returned {num_classes} numbers, one per class; WeightedRandomSampler needs one weight "
                     f"per face ({len(targets):,}): index the class weights with the targets.")
    if weights.size != len(targets):
        raise NotYet(f"{what} returned {weights.size} weights for {len(targets):,} faces.")
    if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise NotYet("the weights must be finite and non-negative, and not all zero.")
    return weights / weights.sum()


def _imbalanced_faces() -> tuple[torch.Tensor, torch.Tensor]:
    """Real test faces, fewer of some classes (like FER's test folder), and a simple classifier's scores for them."""
    faces = _fer("test")
    rank = torch.zeros(len(faces.labels), dtype=torch.long)     # each face's place within its class
    for c in range(7):
        rank[faces.labels == c] = torch.arange(int((faces.labels == c).sum()))
    keep = rank < torch.tensor([40, 4, 40, 70, 50, 50, 30])[faces.labels]
    flat = faces.images.flatten(1).float() / 255
    means = torch.stack([flat[faces.labels == c].mean(0) for c in range(7)])
    return -torch.cdist(flat[keep], means).double() * 2, faces.labels[keep]


@_exercise(6, 2, "choose tau on the validation part", "choose_tau", [
    "For each tau: adjust the validation logits (`logits - tau * prior.log()`), take the argmax as the "
    "prediction and score it with macro-F1 (`sklearn.metrics.f1_score(labels, predictions, average=\"macro\")`).",
    "Return the tau itself (not its score) whose macro-F1 is highest. Accuracy would choose differently: it "
    "rewards predicting the large classes.",
], """
    from sklearn.metrics import f1_score

    def choose_tau(logits, labels, prior, taus):
        def score(tau):
            predictions = (logits - tau * prior.log()).argmax(dim=1)
            return f1_score(labels, predictions, average="macro")
        return max(taus, key=score)
""")
def _check_choose_tau(choose_tau) -> str:
    from sklearn.metrics import accuracy_score, f1_score
    scores, labels = _imbalanced_faces()
    prior = torch.tensor(FER_TRAIN_SIZES, dtype=torch.float64) / sum(FER_TRAIN_SIZES)
    logits = scores + prior.log()                      # a model that learned FER's training prior
    taus = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0]

    def f1(tau):
        return f1_score(labels, (logits - tau * prior.log()).argmax(1), average="macro")
    got = _returned(choose_tau(logits.clone(), labels.clone(), prior.clone(), list(taus)), "choose_tau(...)")
    got = float(_floats(got, "tau"))
    best = max(f1(t) for t in taus)
    if not any(math.isclose(got, t) for t in taus):
        raise NotYet(f"choose_tau returned {got:.4f}, which is not one of the taus tried: return the tau, not its score.")
    if math.isclose(f1(got), best, abs_tol=1e-12):
        return (f"tau = {got:g} gives the best macro-F1 ({best:.3f}) on {len(labels)} real faces of unequal classes; "
                "by accuracy you would have chosen "
                f"{max(taus, key=lambda t: accuracy_score(labels, (logits - t * prior.log()).argmax(1))):g}.")
    by_accuracy = max(taus, key=lambda t: accuracy_score(labels, (logits - t * prior.log()).argmax(1)))
    if math.isclose(got, by_accuracy):
        raise NotYet(f"tau = {got:g} has the best accuracy, but its macro-F1 is {f1(got):.3f} against {best:.3f}: "
                     "choose by macro-F1, which counts every class alike.")
    raise NotYet(f"tau = {got:g} gives macro-F1 {f1(got):.3f}; another tau gives {best:.3f}.")


@_exercise(6, 4, "square-root sampling weights", "sqrt_weights", [
    "Count the faces of each class from the targets (a list, like `ImageFolder.targets`): "
    "`torch.bincount(torch.as_tensor(targets), minlength=num_classes)`.",
    "A face's weight is 1 / sqrt(its class's count): `(1 / counts.sqrt())[targets]`; one weight per face.",
], """
    def sqrt_weights(targets, num_classes):
        targets = torch.as_tensor(targets)
        counts = torch.bincount(targets, minlength=num_classes).float()
        return (1 / counts.sqrt())[targets]
""")
def _check_sqrt_weights(sqrt_weights) -> str:
    targets = _fer_train_targets()
    counts = torch.bincount(targets, minlength=7).double()
    got = _weights_vs(sqrt_weights(list(targets.tolist()), 7), targets, 7, "sqrt_weights(targets, 7)")

    def normalised(per_class):
        w = per_class[targets].numpy()
        return w / w.sum()
    if np.allclose(got, normalised(1 / counts), rtol=1e-4):
        raise NotYet("these weights are 1 / count, which balances the classes fully (the sampler's arm); "
                     "square-root sampling uses 1 / sqrt(count).")
    if np.allclose(got, normalised(counts.sqrt()), rtol=1e-4):
        raise NotYet("these weights grow with the class size (sqrt(count)); the weight is 1 / sqrt(count).")
    if not np.allclose(got, normalised(1 / counts.sqrt()), rtol=1e-4):
        raise NotYet("these weights are not proportional to 1 / sqrt(class count) for each face.")
    share = (counts.sqrt() / counts.sqrt().sum()).numpy()
    return ("each face weighs 1 / sqrt(its class's size); the classes are drawn in proportion to sqrt(size): "
            + ", ".join(f"{name} {s:.1%}" for name, s in zip(data.FER_CLASSES, share)) + ".")


@_exercise(6, 6, "a balanced sampler from the targets", "balanced_sampler", [
    "Weights come from the labels you already have (`dataset.targets`, a list: `torch.as_tensor` it), not from "
    "iterating the dataset, which would decode every image: 1 / count of each face's class.",
    "`WeightedRandomSampler(weights, num_samples=len(targets), replacement=True, generator=generator)`: "
    "without replacement each face is drawn once per epoch and the classes keep their sizes.",
], """
    from torch.utils.data import WeightedRandomSampler

    def balanced_sampler(targets, num_classes, generator):
        targets = torch.as_tensor(targets)
        counts = torch.bincount(targets, minlength=num_classes).float()
        return WeightedRandomSampler((1 / counts)[targets], num_samples=len(targets), replacement=True,
                                     generator=generator)
""")
def _check_balanced_sampler(balanced_sampler) -> str:
    targets = _fer_train_targets()
    sampler = _returned(balanced_sampler(targets.tolist(), 7, torch.Generator().manual_seed(0)),
                        "balanced_sampler(...)")
    drawn = torch.tensor([int(i) for _ in range(max(1, 20_000 // len(targets))) for i in sampler])
    if len(drawn) % len(targets):
        raise NotYet(f"an epoch of the sampler has {len(drawn)} indices; draw as many as there are faces "
                     f"({len(targets):,}): num_samples=len(targets).")
    if drawn.max() < 7 <= len(targets):
        raise NotYet("the sampler draws only the indices 0-6: it was given one weight per class; give one per face.")
    shares = torch.bincount(targets[drawn], minlength=7).double() / len(drawn)
    natural = torch.bincount(targets, minlength=7).double() / len(targets)
    if len(set(drawn.tolist())) == len(drawn) and torch.allclose(shares, natural):
        raise NotYet("every face was drawn exactly once per epoch (replacement=False), so the classes kept their "
                     "sizes; a balanced sampler draws with replacement.")
    if (shares - 1 / 7).abs().max() > 0.03:
        worst = int((shares - 1 / 7).abs().argmax())
        raise NotYet(f"the drawn faces are not balanced: {data.FER_CLASSES[worst]} is {shares[worst]:.1%} of "
                     "them, where each class should be about 14.3% (weights 1 / count of the face's class).")
    again = [int(i) for i in balanced_sampler(targets.tolist(), 7, torch.Generator().manual_seed(0))]
    if again != drawn[:len(targets)].tolist():
        raise NotYet("two samplers built with the same seeded generator draw different faces: pass the "
                     "generator to WeightedRandomSampler so that a run can be repeated.")
    return (f"over {len(drawn):,} draws from {len(targets):,} real training faces each class is "
            f"{shares.min():.1%}-{shares.max():.1%} of the faces (1/7 = 14.3%), and a seeded generator repeats them.")


@_exercise(6, 7, "a stratified, reproducible three-way split", "stratified_split", [
    "Split each class on its own: for every class, shuffle its indices with a `torch.Generator` seeded with "
    "`seed` and cut them at the fractions.",
    "Put the pieces of all classes together: three lists that share no index and together hold every face. "
    "A random split of all faces at once (random_split) does not keep each class's share, and without a "
    "generator it differs on every run.",
], """
    def stratified_split(targets, fractions, seed):
        targets = torch.as_tensor(targets)
        generator = torch.Generator().manual_seed(seed)
        parts = [[] for _ in fractions]
        for c in targets.unique().tolist():
            members = (targets == c).nonzero().flatten()
            members = members[torch.randperm(len(members), generator=generator)].tolist()
            start = 0
            for k, fraction in enumerate(fractions):
                end = len(members) if k == len(fractions) - 1 else start + round(fraction * len(members))
                parts[k] += members[start:end]
                start = end
        return [sorted(part) for part in parts]
""")
def _check_stratified_split(stratified_split) -> str:
    targets = _fer_train_targets()
    fractions = (0.7, 0.15, 0.15)
    parts = _returned(stratified_split(targets.tolist(), fractions, 42), "stratified_split(...)")
    parts = [[int(i) for i in part] for part in parts]
    if len(parts) != 3:
        raise NotYet(f"stratified_split returned {len(parts)} parts; three were asked for (train, validation, test).")
    seen = [i for part in parts for i in part]
    if len(seen) != len(set(seen)):
        shared = len(seen) - len(set(seen))
        raise NotYet(f"{shared} faces are in more than one part: a face in training and in validation or test "
                     "leaks, and the scores overstate the model. The parts must not share an index.")
    if set(seen) != set(range(len(targets))):
        raise NotYet(f"the parts hold {len(set(seen)):,} of the {len(targets):,} faces: every face belongs to one part.")
    for c in range(7):
        size = int((targets == c).sum())
        for fraction, part, name in zip(fractions, parts, ("train", "validation", "test")):
            count = int((targets[part] == c).sum())
            if abs(count - fraction * size) >= 2:
                raise NotYet(f"the {name} part holds {count} {data.FER_CLASSES[c]} faces of {size}; a stratified "
                             f"split gives it {fraction:.0%} of each class ({fraction * size:.1f}).")
    again = [[int(i) for i in part] for part in stratified_split(targets.tolist(), fractions, 42)]
    if sorted(map(sorted, again)) != sorted(map(sorted, parts)):
        raise NotYet("the same seed gave a different split: use a torch.Generator seeded with `seed`, so that every "
                     "run (and the test at the end) sees the same parts.")
    other = [[int(i) for i in part] for part in stratified_split(targets.tolist(), fractions, 7)]
    if sorted(map(sorted, other)) == sorted(map(sorted, parts)):
        raise NotYet("another seed gave the same split: the seed should choose the split.")
    return (f"the {len(targets):,} real training faces split 70/15/15 within every class (to one face), with no face "
            "in two parts, the same split for the same seed and another for another seed.")


@_exercise(6, 8, "macro-F1 from labels and predictions", "macro_f1", [
    "For each class: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R) (0 when P + R is 0).",
    "Macro-F1 is the plain mean of the classes' F1, so disgust counts as much as happy; a mean weighted by "
    "class size, or accuracy, lets the large classes dominate.",
], """
    def macro_f1(labels, predictions, num_classes):
        labels, predictions = torch.as_tensor(labels), torch.as_tensor(predictions)
        scores = []
        for c in range(num_classes):
            tp = ((predictions == c) & (labels == c)).sum().item()
            fp = ((predictions == c) & (labels != c)).sum().item()
            fn = ((predictions != c) & (labels == c)).sum().item()
            scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        return sum(scores) / num_classes
""")
def _check_macro_f1(macro_f1) -> str:
    from sklearn.metrics import accuracy_score, f1_score
    scores, labels = _imbalanced_faces()
    predictions = scores.argmax(1)
    expected = f1_score(labels, predictions, average="macro", labels=range(7), zero_division=0)
    got = float(_floats(_returned(macro_f1(labels.clone(), predictions.clone(), 7), "macro_f1(...)"), "macro-F1"))
    if math.isclose(got, expected, abs_tol=1e-6):
        return (f"macro_f1 matches scikit-learn's ({expected:.4f}) on a simple classifier's predictions for "
                f"{len(labels):,} real test faces of unequal classes.")
    if math.isclose(got, accuracy_score(labels, predictions.tolist()), abs_tol=1e-6):
        raise NotYet(f"{got:.4f} is the accuracy; macro-F1 is the mean of the classes' F1 scores.")
    if math.isclose(got, f1_score(labels, predictions.tolist(), average="weighted"), abs_tol=1e-6):
        raise NotYet(f"{got:.4f} weighs each class by its size; macro-F1 is the plain mean over classes.")
    raise NotYet(f"macro-F1 {got:.4f}; expected {expected:.4f}.")


# ================================================================ lesson 07: schedules, two classes, logs

def _lrs(make, total_steps: int, peak: float = 0.1, name: str = "the function") -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
    scheduler = _returned(make(optimizer, total_steps), name)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(total_steps):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@_exercise(7, 4, "a linear schedule down to zero", "linear_schedule", [
    "`torch.optim.lr_scheduler.LinearLR` multiplies the optimizer's rate by a factor that moves in a straight "
    "line from `start_factor` to `end_factor` over `total_iters` scheduler steps.",
    "From the peak to 0: `start_factor=1.0, end_factor=0.0`; the course steps the scheduler once per batch, so "
    "`total_iters` is the number of steps, not of epochs.",
], """
    def linear_schedule(optimizer, total_steps):
        return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0,
                                                 total_iters=total_steps)
""")
def _check_linear_schedule(linear_schedule) -> str:
    total = 40
    lrs = _lrs(linear_schedule, total, name="linear_schedule(optimizer, total_steps)")
    expected = [0.1 * (1 - k / total) for k in range(total + 1)]
    if not math.isclose(lrs[0], 0.1, rel_tol=1e-6):
        raise NotYet(f"the schedule starts at {lrs[0]:.4g}, not at the optimizer's rate 0.1: LinearLR's default "
                     "start_factor is 1/3; set start_factor=1.0.")
    if lrs[-1] > 1e-9:
        raise NotYet(f"after all {total} steps the rate is {lrs[-1]:.4g}, not 0: set end_factor=0.0 and "
                     "total_iters to the number of steps.")
    reached = next(k for k, lr in enumerate(lrs) if lr <= 1e-12)
    if reached < total:
        raise NotYet(f"the rate reaches 0 after {reached} of {total} steps: total_iters counts scheduler steps "
                     "(batches), not epochs.")
    if not np.allclose(lrs, expected, atol=1e-9):
        raise NotYet("the rate does not fall in a straight line from the peak to 0.")
    return f"the rate falls in a straight line from 0.1 to 0 over exactly {total} steps."


@_exercise(7, 6, "predictions from one logit", "binary_predictions", [
    "With one logit per image and BCEWithLogitsLoss, the probability of class 1 is sigmoid(logit): it is above "
    "0.5 exactly when the logit is above 0.",
    "`(logits.reshape(-1) > 0).long()`: a vector of 0s and 1s, one per image. An argmax over a single column "
    "is always 0.",
], """
    def binary_predictions(logits):
        return (logits.reshape(-1) > 0).long()
""")
def _check_binary_predictions(binary_predictions) -> str:
    logits = torch.cat([torch.randn(46, 1, generator=torch.Generator().manual_seed(7)) * 3,
                        torch.tensor([[0.01], [0.3], [-0.2], [0.49]])])             # some near the boundary
    expected = (logits.reshape(-1) > 0).long()
    got = torch.as_tensor(_returned(binary_predictions(logits.clone()), "binary_predictions(...)")).reshape(-1)
    if got.numel() != 50:
        raise NotYet(f"{got.numel()} predictions for 50 images.")
    if bool((got == 0).all()):
        raise NotYet("every prediction is 0: an argmax over one column always answers 0. Compare the logit with 0.")
    if bool((got == 1).all()):
        raise NotYet("every prediction is 1: sigmoid(logit) is always above 0; compare the logit with 0 "
                     "(or the probability with 0.5).")
    if not torch.equal(got.long(), expected):
        raise NotYet(f"{int((got.long() != expected).sum())} of 50 predictions are wrong: class 1 when the logit "
                     "is above 0.")
    return "class 1 exactly when the logit is above 0 (probability above 0.5), for 50 logits."


@_exercise(7, 7, "read a TensorBoard log back", "read_scalars", [
    "`from tensorboard.backend.event_processing.event_accumulator import EventAccumulator`; "
    "`accumulator = EventAccumulator(str(logdir))`, then `accumulator.Reload()`: it reads nothing before.",
    "`accumulator.Scalars(tag)` is a list of events with `.step`, `.value` and `.wall_time`; return the steps "
    "and the values as two lists.",
], """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def read_scalars(logdir, tag):
        accumulator = EventAccumulator(str(logdir))
        accumulator.Reload()
        events = accumulator.Scalars(tag)
        return [e.step for e in events], [e.value for e in events]
""")
def _check_read_scalars(read_scalars) -> str:
    from torch.utils.tensorboard import SummaryWriter
    values = [0.61, 0.72, 0.78, 0.81, 0.83]
    with tempfile.TemporaryDirectory() as folder:
        writer = SummaryWriter(folder)
        for epoch, value in enumerate(values, start=1):
            writer.add_scalar("val/acc", value, epoch)
            writer.add_scalar("train/loss", 1.0 / epoch, epoch)
        writer.close()
        got = _returned(read_scalars(folder, "val/acc"), "read_scalars(...)")
    try:
        steps, read = got
        steps, read = [int(s) for s in steps], [float(v) for v in read]
    except (TypeError, ValueError) as err:
        raise NotYet(f"read_scalars should return (steps, values), two lists; got {got!r:.80}") from err
    if steps != [1, 2, 3, 4, 5]:
        raise NotYet(f"the steps read are {steps}; the log holds epochs 1-5.")
    if any(v > 1e6 for v in read):
        raise NotYet("the values look like times (wall_time); take each event's .value.")
    if not np.allclose(read, values, atol=1e-6):
        raise NotYet(f"the values read are {np.round(read, 3).tolist()}; the log holds {values} for 'val/acc'.")
    return "read_scalars reads the 5 steps and values of 'val/acc' from a real event file, not those of another tag."


@_exercise(7, 8, "the cosine schedule's formula", "cosine_lr", [
    "Half a cosine wave from the peak down to 0: at step 0 the rate is the peak, at the last step 0, at the "
    "middle half the peak.",
    "`peak * (1 + math.cos(math.pi * step / total_steps)) / 2`: the angle is in radians, and the /2 keeps the "
    "rate between 0 and the peak.",
], """
    import math

    def cosine_lr(step, total_steps, peak):
        return peak * (1 + math.cos(math.pi * step / total_steps)) / 2
""")
def _check_cosine_lr(cosine_lr) -> str:
    total = 30
    lrs = _lrs(lambda optimizer, n: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n), total)
    got = [float(_returned(cosine_lr(step, total, 0.1), f"cosine_lr({step}, {total}, 0.1)")) for step in range(total + 1)]
    if math.isclose(got[0], 0.2, rel_tol=1e-6):
        raise NotYet(f"cosine_lr(0, ...) is {got[0]:.3g}, twice the peak: divide (1 + cos) by 2.")
    if not np.allclose(got, lrs, atol=1e-9):
        worst = int(np.argmax(np.abs(np.array(got) - np.array(lrs))))
        raise NotYet(f"at step {worst} of {total} your rate is {got[worst]:.4g}, CosineAnnealingLR's {lrs[worst]:.4g} "
                     "(math.cos takes radians: pi * step / total_steps).")
    return f"cosine_lr matches torch's CosineAnnealingLR at all {total + 1} steps."


# ================================================================ lesson 08: ONNX

def _fashion_model_eval() -> nn.Module:
    with tempfile.TemporaryDirectory() as folder:
        return _saved_fashion_model(Path(folder))[1].eval()


@_exercise(8, 4, "an ONNX export with a free batch dimension", "export_free_batch", [
    "Export in eval mode (`model.eval()`): in training mode BatchNorm uses each batch's statistics and the "
    "graph would compute something else.",
    "`torch.onnx.export(model, (example,), path, dynamo=True, input_names=[\"images\"], "
    "dynamic_shapes=({0: torch.export.Dim(\"batch\")},))`: without dynamic_shapes the batch size of "
    "`example` is written into the file.",
], """
    def export_free_batch(model, example, path):
        model.eval()
        torch.onnx.export(model, (example,), path, dynamo=True, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
""")
def _check_export(export_free_batch) -> str:
    import onnxruntime as ort
    model = _fashion_model_eval()
    images = (_fashion()[0][:7].float() / 255 - data.FASHION_MEAN[0]) / data.FASHION_STD[0]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        model.train()                                  # as after training: the export must switch to eval
        with mock.patch.object(torch.onnx, "export", wraps=torch.onnx.export) as export:
            export_free_batch(model, images[:2].clone(), str(path))
        if not path.is_file() and not export.called:
            raise NotAttempted("export_free_batch wrote no file and returned None: write its body and run both "
                               "cells again.")
        if not path.is_file():
            raise NotYet("export_free_batch wrote no file at the path it was given: pass the path to "
                         "torch.onnx.export (or save the program it returns).")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch_dim = session.get_inputs()[0].shape[0]
    if isinstance(batch_dim, int):
        raise NotYet(f"the file's batch dimension is fixed at {batch_dim}: pass "
                     "dynamic_shapes=({0: torch.export.Dim('batch')},) when exporting.")
    model.eval()
    name = session.get_inputs()[0].name
    for n in (1, 7):
        with torch.no_grad():
            expected = model(images[:n]).numpy()
        got = session.run(None, {name: images[:n].numpy()})[0]
        if not np.allclose(got, expected, atol=1e-4):
            raise NotYet(f"at batch {n} the ONNX logits differ from the model's by up to "
                         f"{np.abs(got - expected).max():.3f}: export in eval mode (model.eval()).")
    return f"the file takes any batch (dimension {batch_dim!r}) and gives the model's logits at batch 1 and 7."


@_exercise(8, 5, "preprocessing without torch", "preprocess", [
    "ONNX Runtime takes NumPy arrays: scale the uint8 pixels to 0-1 (/ 255), then subtract the mean and divide "
    "by the std, as the training pipeline did.",
    "Give the batch the layout the model was exported with, N x 1 x 28 x 28 (`images[:, None]`), and the "
    "dtype it expects: `.astype(np.float32)` (NumPy computes in float64 by default).",
], """
    import numpy as np

    def preprocess(images, mean, std):
        x = images.astype(np.float32) / 255
        return ((x - mean) / std).astype(np.float32)[:, None]
""")
def _check_preprocess(preprocess) -> str:
    images = _fashion()[0][:16, 0].numpy()                                   # N x 28 x 28 uint8, as from PIL
    mean, std = data.FASHION_MEAN, data.FASHION_STD
    expected = ((images.astype(np.float32) / 255 - mean[0]) / std[0])[:, None]
    got = _returned(preprocess(images.copy(), mean, std), "preprocess(...)")
    if isinstance(got, torch.Tensor):
        raise NotYet("preprocess returns a torch tensor; the point is to serve without torch: use NumPy.")
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise NotYet(f"preprocess returns shape {got.shape}; the model takes N x 1 x 28 x 28 {expected.shape}: "
                     "add the channel axis.")
    if got.dtype != np.float32:
        raise NotYet(f"preprocess returns {got.dtype}; ONNX Runtime refuses anything but the float32 the model "
                     "was exported with.")
    if got.max() > 50:
        raise NotYet("values reach the hundreds: scale the pixels to 0-1 (divide by 255) before normalising.")
    if not np.allclose(got, expected, atol=1e-5):
        raise NotYet("the values differ from (pixels / 255 - mean) / std.")
    return "preprocess turns 16 real uint8 images into the float32 N x 1 x 28 x 28 batch the ONNX model takes."


# ================================================================ lesson 09: DDP

@_exercise(9, 1, "set_epoch: how many batches repeat", "same_batches_without_set_epoch, same_batches_with_set_epoch", [
    "Build the sampler as the exercise says and batch it as the script does, "
    "`BatchSampler(sampler, batch_size=128, drop_last=True)`; `first = list(batches)` reads an epoch. For the "
    "second run call `sampler.set_epoch(1)` before reading the second epoch.",
    "Count the batches that are the same in both epochs: `sum(a == b for a, b in zip(first, second))`.",
], """
    from torch.utils.data import BatchSampler, DistributedSampler

    def batches_repeated(call_set_epoch):
        sampler = DistributedSampler(range(54_000), num_replicas=2, rank=0, shuffle=True, seed=42, drop_last=True)
        batches = BatchSampler(sampler, batch_size=128, drop_last=True)
        first = list(batches)
        if call_set_epoch:
            sampler.set_epoch(1)
        return sum(a == b for a, b in zip(first, list(batches)))

    same_batches_without_set_epoch = batches_repeated(False)
    same_batches_with_set_epoch = batches_repeated(True)
""")
def _check_set_epoch(same_batches_without_set_epoch, same_batches_with_set_epoch) -> str:
    from torch.utils.data import DistributedSampler
    sampler = DistributedSampler(range(54_000), num_replicas=2, rank=0, shuffle=True, seed=42, drop_last=True)

    def batches():
        order = list(sampler)
        return [order[i:i + 128] for i in range(0, len(order), 128)]
    first = batches()
    without = sum(a == b for a, b in zip(first, batches()))             # 211 with the last, smaller batch
    sampler.set_epoch(1)
    with_ = sum(a == b for a, b in zip(first, batches()))
    got = (int(same_batches_without_set_epoch), int(same_batches_with_set_epoch))
    if got[0] == without - 1:                                # the script's BatchSampler drops the last batch
        without -= 1
    if got[0] == 0:
        raise NotYet("without set_epoch the second epoch is not reshuffled: the sampler's permutation is seeded "
                     "with seed + epoch, and the epoch stays 0. Count again.")
    if got[1] == without:
        raise NotYet("with set_epoch(1) the permutation changes, so the batches are not all the same again.")
    if got != (without, with_):
        raise NotYet(f"you found {got[0]:,} and {got[1]:,} repeated batches; count the batches of 128 that hold "
                     "the same indices, in the same place, in both epochs.")
    return (f"without set_epoch all {without} batches of rank 0's second epoch repeat the first's, in the same "
            f"order; with set_epoch(1), {with_} do.")


@_exercise(9, 2, "DistributedSampler on 7 processes", "scored_twice, never_scored", [
    "Without drop_last, DistributedSampler makes every rank's share equal by repeating images from the start: "
    "each of 7 ranks gets ceil(6000 / 7) indices.",
    "With drop_last=True each rank gets floor(6000 / 7) and the remainder is never scored. Build the 7 samplers "
    "(`rank=0..6`) and count with a `collections.Counter` if you prefer to see it.",
], """
    from collections import Counter
    from torch.utils.data import DistributedSampler

    def counts(drop_last):
        return Counter(i for rank in range(7) for i in DistributedSampler(
            range(6000), num_replicas=7, rank=rank, shuffle=False, drop_last=drop_last))

    scored_twice = sum(1 for n in counts(False).values() if n == 2)
    never_scored = 6000 - len(counts(True))
""")
def _check_sampler_padding(scored_twice, never_scored) -> str:
    twice, never = 7 * math.ceil(6000 / 7) - 6000, 6000 - 7 * (6000 // 7)
    got = (int(scored_twice), int(never_scored))
    if got[0] == 0:
        raise NotYet("6,000 does not divide by 7: DistributedSampler pads the shares to equal length by repeating "
                     "indices, so some images are scored twice.")
    if got[0] == 6006 or got[0] == 7 * math.ceil(6000 / 7):
        raise NotYet("that is the number of images scored in all; the question is how many are scored twice.")
    if got != (twice, never):
        raise NotYet(f"you found {got[0]} scored twice and {got[1]} never scored with drop_last; count again "
                     "(7 ranks x ceil(6000 / 7) indices, and 7 x floor(6000 / 7)).")
    return (f"{twice} images are scored twice (padding), and with drop_last {never} is never scored: either way "
            "the metric is not over the 6,000 images. evaluate_sharded splits them by hand so that each counts once.")


@_exercise(9, 5, "a shard for each process, every image once", "shard", [
    "Give rank r the indices r, r + world_size, r + 2 * world_size, ...: `list(range(rank, num_items, world_size))`.",
    "Or cut contiguous blocks whose sizes differ by at most one (`torch.tensor_split`). Do not pad (an image "
    "counted twice) and do not drop the remainder (an image never counted).",
], """
    def shard(num_items, rank, world_size):
        return list(range(rank, num_items, world_size))
""")
def _check_shard(shard) -> str:
    for num_items, world in ((6000, 7), (10_000, 2), (10, 4), (3, 5)):
        shards = [[int(i) for i in _returned(shard(num_items, rank, world), f"shard({num_items}, {rank}, {world})")]
                  for rank in range(world)]
        everything = [i for s in shards for i in s]
        if len(everything) > len(set(everything)):
            raise NotYet(f"with {num_items} items on {world} processes, {len(everything) - len(set(everything))} "
                         "indices are in two shards (padding, as DistributedSampler does): those images count twice.")
        if set(everything) != set(range(num_items)):
            missing = num_items - len(set(everything) & set(range(num_items)))
            raise NotYet(f"with {num_items} items on {world} processes, {missing} items are in no shard "
                         "(the remainder was dropped, or an index is out of range).")
        sizes = [len(s) for s in shards]
        if max(sizes) - min(sizes) > 1:
            raise NotYet(f"with {num_items} items on {world} processes the shards have {sizes} items: keep them "
                         "within one of each other, so that no process waits long for the others.")
    return "every item in exactly one shard, shard sizes within one of each other (6000 on 7, 10 on 4, 3 on 5, ...)."


@_exercise(9, 6, "the learning rate for a larger global batch", "scaled_lr", [
    "In DDP each process takes its own batch; one optimizer step averages all of them, so the global batch is "
    "per_process_batch * world_size.",
    "The square-root rule (section 2 names it for Adam): lr = base_lr * sqrt(global_batch / base_batch).",
], """
    import math

    def scaled_lr(base_lr, base_batch, per_process_batch, world_size):
        return base_lr * math.sqrt(per_process_batch * world_size / base_batch)
""")
def _check_scaled_lr(scaled_lr) -> str:
    cases = [(4e-3, 256, 256, 2), (4e-3, 256, 128, 2), (1e-3, 64, 64, 8), (4e-3, 256, 512, 1)]
    for base_lr, base_batch, per_process, world in cases:
        got = float(_returned(scaled_lr(base_lr, base_batch, per_process, world), "scaled_lr(...)"))
        expected = base_lr * math.sqrt(per_process * world / base_batch)
        if world > 1 and math.isclose(got, base_lr * math.sqrt(per_process / base_batch), rel_tol=1e-6) \
                and not math.isclose(got, expected, rel_tol=1e-6):
            raise NotYet("the world size is missing: the global batch is per_process_batch * world_size.")
        if math.isclose(got, base_lr * per_process * world / base_batch, rel_tol=1e-6) \
                and not math.isclose(got, expected, rel_tol=1e-6):
            raise NotYet("that is the linear rule; this lesson scales Adam's rate by the square root of the "
                         "batch ratio.")
        if not math.isclose(got, expected, rel_tol=1e-6):
            raise NotYet(f"scaled_lr{(base_lr, base_batch, per_process, world)} = {got:.3g}; expected {expected:.3g}.")
    return "scaled_lr scales by the square root of the global batch's ratio, world size included (4 cases)."
