"""Predicting with an exported ONNX model and nothing but ONNX Runtime, NumPy and Pillow (lesson 08).

This module never imports torch, torchvision or the course's torch-based helpers, so it runs on a
machine where only ``pip install onnxruntime numpy pillow`` was done. Everything it needs to prepare an
image (input size, mean, std, grey or colour, the background for transparent pixels, class names) is
read from the ONNX model's metadata, which ``onnx_export.export_onnx`` writes. Command line:

    course-onnx-predict model.onnx image.png [more.png ...] [--top-k 3]   (or: python -m helpers.onnx_predict ...)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, UnidentifiedImageError

PREPROCESSING_KEYS = ("class_names", "input_size", "mean", "std", "image_mode", "background")
NUMPY_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
                "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}
_ORT_ERRORS = ort.capi.onnxruntime_pybind11_state
ORT_LOAD_ERRORS = (_ORT_ERRORS.Fail, _ORT_ERRORS.InvalidProtobuf, _ORT_ERRORS.NoSuchFile, _ORT_ERRORS.InvalidGraph,
                   _ORT_ERRORS.InvalidArgument)     # what InferenceSession raises for a file it cannot load


class BadInputError(ValueError):
    """An image file or a batch does not fit the model; the message says what the model expects."""


@dataclass(frozen=True)
class Preprocessing:
    """How the model's images were prepared in training, as stored in the ONNX model's metadata."""
    class_names: tuple[str, ...]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_mode: str          # "L" (grey) or "RGB": how an image file is read
    background: int          # the 0-255 grey that transparent pixels are laid on


def make_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """Return an ONNX Runtime session on the CPU for the model at `path`, with `threads` threads per operator."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1   # threads that split one operator's work
    options.inter_op_num_threads = 1          # only the parallel execution mode uses it; the default is sequential
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def read_preprocessing(session: ort.InferenceSession) -> Preprocessing:
    """Return the Preprocessing stored in the model's metadata; raise BadInputError naming what is missing."""
    stored = session.get_modelmeta().custom_metadata_map
    if missing := [key for key in PREPROCESSING_KEYS if key not in stored]:
        raise BadInputError(f"the ONNX model's metadata lacks {missing}, so this program cannot know how to "
                            f"prepare an image for it. Export it with helpers.onnx_export.export_onnx, which "
                            f"stores {list(PREPROCESSING_KEYS)}.")
    values = {key: json.loads(stored[key]) for key in PREPROCESSING_KEYS}
    return Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def open_image(path: str | Path, mode: str, background: int) -> Image.Image:
    """Return the image file at `path` in `mode` ("L" or "RGB"), transparent pixels laid on a `background` grey."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{path} is a folder, not an image file; pass the image files inside it.")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file; check the path.")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                plain = Image.new("RGBA", rgba.size, (background, background, background, 255))
                image = Image.alpha_composite(plain, rgba)
            return image.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise BadInputError(f"{path} is not a readable image ({type(err).__name__}: {err}).") from err


def prepare_image(path: str | Path, prep: Preprocessing) -> np.ndarray:
    """Return the image file as a 1 x C x H x W float32 batch, prepared as in training (resize, centre crop, normalise)."""
    image = open_image(path, prep.image_mode, prep.background)
    width, height = image.size
    short, long = min(width, height), max(width, height)
    scaled = prep.input_size, int(prep.input_size * long / short)      # the shorter side becomes input_size
    new_size = scaled if width <= height else scaled[::-1]
    if new_size != image.size:
        image = image.resize(new_size, Image.Resampling.BILINEAR)
    left = int(round((new_size[0] - prep.input_size) / 2))
    top = int(round((new_size[1] - prep.input_size) / 2))
    image = image.crop((left, top, left + prep.input_size, top + prep.input_size))
    pixels = np.asarray(image, dtype=np.float32) / 255                  # H x W or H x W x C, 0-1
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    mean, std = np.array(prep.mean, np.float32), np.array(prep.std, np.float32)
    return ((pixels - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)


def check_batch(session: ort.InferenceSession, batch: np.ndarray) -> None:
    """Raise BadInputError if `batch` does not have the type and shape the model's first input declares."""
    declared = session.get_inputs()[0]
    expected_dtype = NUMPY_DTYPES.get(declared.type)
    shape = ["N" if not isinstance(d, int) else d for d in declared.shape]     # a named dimension is free
    wanted = f"a {np.dtype(expected_dtype).name} batch of shape ({', '.join(map(str, shape))})"
    if not isinstance(batch, np.ndarray):
        raise BadInputError(f"got a {type(batch).__name__}; the model's input {declared.name!r} takes {wanted}, "
                            f"as a NumPy array (prepare_image returns one)")
    if batch.dtype != expected_dtype:
        raise BadInputError(f"got a {batch.dtype} batch; the model's input {declared.name!r} takes {wanted}, "
                            f"scaled to 0-1 and normalised (prepare_image does it; a uint8 image needs /255 first)")
    if batch.ndim != len(shape):
        hint = " (one image? add the batch dimension: image[None])" if batch.ndim == len(shape) - 1 else ""
        raise BadInputError(f"got {batch.ndim} dimensions {batch.shape}; the model's input {declared.name!r} "
                            f"takes {wanted}{hint}")
    for axis, (got, want) in enumerate(zip(batch.shape, shape)):
        if isinstance(want, int) and got != want:
            what = {1: "channels", 2: "pixels high", 3: "pixels wide"}.get(axis, f"in dimension {axis}")
            raise BadInputError(f"got shape {batch.shape}: {got} {what} where the model's input {declared.name!r} "
                                f"takes {want}; it takes {wanted} (prepare_image resizes and converts an image file)")


def predict_batch(session: ort.InferenceSession, batch: np.ndarray) -> np.ndarray:
    """Return the model's logits (N x classes) for a prepared float batch, after checking it fits the model."""
    check_batch(session, batch)
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Return the probabilities of each row of `logits` (computed stably, in float64)."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)


def predict_image(session: ort.InferenceSession, path: str | Path, top_k: int = 3) -> list[tuple[str, float]]:
    """Return the `top_k` (class name, probability) pairs for one image file, most likely first."""
    if top_k < 1:
        raise ValueError(f"top_k={top_k}; ask for at least 1 class")
    prep = read_preprocessing(session)
    probs = softmax(predict_batch(session, prepare_image(path, prep)))[0]
    order = np.argsort(-probs)[:top_k]
    return [(prep.class_names[i], float(probs[i])) for i in order]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small: show at least 1 class")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command line: print the top-k classes of each image file with an ONNX model; return the exit status."""
    parser = argparse.ArgumentParser(prog="course-onnx-predict",
                                     description="Classify image files with an ONNX model exported by lesson 08, "
                                                 "using only onnxruntime, NumPy and Pillow (no torch). Also runs "
                                                 "as python -m helpers.onnx_predict.")
    parser.add_argument("model", type=Path, help="an .onnx file written by helpers.onnx_export.export_onnx")
    parser.add_argument("images", type=Path, nargs="+", help="image files to classify")
    parser.add_argument("--top-k", type=_positive_int, default=3, help="how many classes to show per image (default 3)")
    parser.add_argument("--threads", type=_positive_int, default=None, help="threads per operator (default: all cores)")
    args = parser.parse_args(argv)
    try:
        session = make_session(args.model, args.threads)
        read_preprocessing(session)
    except (BadInputError, *ORT_LOAD_ERRORS) as err:       # not an ONNX file, a missing file, no metadata
        print(f"error: {args.model}: {err}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            ranked = predict_image(session, path, args.top_k)
        except (BadInputError, OSError) as err:           # missing file, a folder, an unreadable image
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{path.name}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked))
    return status


if __name__ == "__main__":
    sys.exit(main())
