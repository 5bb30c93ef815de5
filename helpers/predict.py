"""Inference: a bundle (weights + class names + preprocessing) and predicting image files.

A *training checkpoint* (``helpers.train.fit``'s last.pt / best.pt) holds everything needed to go on
training: optimizer, scheduler, RNG states. An *inference bundle* holds only what prediction needs,
so a file can be handed to someone who never saw the notebook. Both carry a checksum of their tensors
that loading checks (see ``helpers.checkpoint``), so a damaged file is refused, never used. Command line:

    course-predict model.pt image.png [more.png ...] [--top-k 3]     (or: python -m helpers.predict ...)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from helpers import checkpoint, data, transforms
from helpers.arguments import positive_int

BUNDLE_FORMAT = "course-inference-bundle-1"


def make_bundle(model: nn.Module, meta: checkpoint.ModelMeta, half: bool = False) -> dict:
    """Return an inference bundle: the model's weights plus its ModelMeta (as plain values).

    With ``half=True`` floating-point weights are stored as float16 (half the file; loading puts them
    back into the model's float32 parameters, where the rounding is at most 1 part in 2,048).
    """
    if not isinstance(meta, checkpoint.ModelMeta):
        raise TypeError(f"meta is a {type(meta).__name__}; describe the model with checkpoint.ModelMeta(...), "
                        f"so that the bundle holds everything needed to rebuild it and prepare its images")
    weights = checkpoint.unwrap_model(model).state_dict()
    if half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    weights = {k: v.contiguous() for k, v in weights.items()}     # channels_last models store plain layout
    return {"format": BUNDLE_FORMAT, "model": weights, "meta": meta.to_dict()}


def save_bundle(path: str | Path, model: nn.Module, meta: checkpoint.ModelMeta, half: bool = False) -> Path:
    """Write the inference bundle of `model` to `path` atomically and return the path (see make_bundle).

    The file holds the SHA-256 checksum of every weight tensor, which ``checkpoint.load_model`` checks
    when it loads the bundle.
    """
    return checkpoint.save_checkpoint(path, make_bundle(model, meta, half))


def preprocess(image_path: str | Path, meta: checkpoint.ModelMeta) -> torch.Tensor:
    """Return the image at `image_path` as a 1 x C x H x W tensor, prepared exactly as the evaluation data was."""
    image = data.load_image(image_path, mode=meta.image_mode, background=meta.background)
    pipeline = transforms.eval_transforms(meta.input_size, meta.mean, meta.std)
    if meta.image_mode == "L" and len(meta.mean) == 3:       # grayscale images fed to an RGB network
        pipeline = transforms.face_transforms(meta.input_size, meta.mean, meta.std, train=False)
    return pipeline(image).unsqueeze(0)


def predict_file(model: nn.Module, meta: checkpoint.ModelMeta, image_path: str | Path,
                 top_k: int = 3) -> list[tuple[str, float]]:
    """Return the `top_k` (class name, probability) pairs for one image file, most likely first."""
    if top_k < 1:
        raise ValueError(f"top_k={top_k}; ask for at least 1 class")
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        probs = model(preprocess(image_path, meta).to(device)).softmax(dim=1)[0].cpu()
    values, indices = probs.topk(min(top_k, len(probs)))
    return [(meta.class_names[i], p) for p, i in zip(values.tolist(), indices.tolist())]


def main(argv: list[str] | None = None) -> int:
    """Command line: print the top-k classes of each image file; return the exit status."""
    parser = argparse.ArgumentParser(prog="course-predict",
                                     description="Classify image files with a saved course model (lesson 03, 04 "
                                                 "or 06). Also runs as python -m helpers.predict.")
    parser.add_argument("model", type=Path, help="an inference bundle or training checkpoint (.pt)")
    parser.add_argument("images", type=Path, nargs="+", help="image files to classify")
    parser.add_argument("--top-k", type=positive_int, default=3, help="how many classes to show per image (default 3)")
    args = parser.parse_args(argv)
    try:
        model, meta = checkpoint.load_model(args.model)
    except checkpoint.CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            ranked = predict_file(model, meta, path, args.top_k)
        except (data.BadImageError, OSError) as err:      # missing file, a folder, an unreadable image
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{path.name}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked))
    return status


if __name__ == "__main__":
    sys.exit(main())
