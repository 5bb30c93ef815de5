"""Inference: a bundle (weights + class names + preprocessing) and predicting image files.

A *training checkpoint* (``helpers.train.fit``'s last.pt / best.pt) holds everything needed to go on
training: optimizer, scheduler, RNG states. An *inference bundle* holds only what prediction needs,
so a file can be handed to someone who never saw the notebook. Command line:

    python -m helpers.predict model.pt image.png [more.png ...] [--top-k 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from helpers import checkpoint, data, models

BUNDLE_FORMAT = "course-inference-bundle-1"
PREPROCESSING_KEYS = ("input_size", "mean", "std")


def make_bundle(model: nn.Module, meta: dict) -> dict:
    """Return an inference bundle: the model's weights plus `meta` (model_name, model_args,
    class_names, input_size, mean, std), checked to be complete."""
    needed = ("model_name", "model_args", "class_names", *PREPROCESSING_KEYS)
    if missing := [key for key in needed if key not in meta]:
        raise ValueError(f"meta lacks {missing}; a bundle needs {list(needed)} to rebuild the model "
                         f"and preprocess images exactly as in training")
    meta = {key: meta[key] for key in needed}
    return {"format": BUNDLE_FORMAT, "model": checkpoint.unwrap_model(model).state_dict(), "meta": meta}


def save_bundle(path: str | Path, model: nn.Module, meta: dict) -> Path:
    """Write the inference bundle of `model` to `path` atomically and return the path."""
    return checkpoint.save_checkpoint(path, make_bundle(model, meta))


def load_bundle(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Return (model in eval mode on `device`, meta) from a bundle or a training checkpoint, loaded safely."""
    state = checkpoint.load_checkpoint(path, map_location=device)
    meta = state.get("meta", {})
    if "model" not in state or "model_name" not in meta:
        raise checkpoint.CheckpointError(
            f"{path} has no 'model' weights with a 'meta' model_name: it is not an inference bundle or a "
            f"training checkpoint of this course. Save one with predict.save_bundle(path, model, meta).")
    model = models.build_model(meta["model_name"], **meta.get("model_args", {}))
    checkpoint.load_weights(model, state["model"])
    return model.to(device).eval(), meta


def preprocess(image_path: str | Path, meta: dict) -> torch.Tensor:
    """Return the image at `image_path` as a 1 x C x H x W tensor, prepared exactly as the evaluation data was."""
    mode = "L" if len(meta["mean"]) == 1 else "RGB"
    image = data.load_image(image_path, mode=mode)
    return data.eval_transforms(meta["input_size"], tuple(meta["mean"]), tuple(meta["std"]))(image).unsqueeze(0)


def predict_file(model: nn.Module, meta: dict, image_path: str | Path, top_k: int = 3) -> list[tuple[str, float]]:
    """Return the `top_k` (class name, probability) pairs for one image file, most likely first."""
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        probs = model(preprocess(image_path, meta).to(device)).softmax(dim=1)[0].cpu()
    values, indices = probs.topk(min(top_k, len(probs)))
    return [(meta["class_names"][i], p) for p, i in zip(values.tolist(), indices.tolist())]


def main(argv: list[str] | None = None) -> int:
    """Command line: print the top-k classes of each image file; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m helpers.predict",
                                     description="Classify image files with a saved course model.")
    parser.add_argument("model", type=Path, help="an inference bundle or training checkpoint (.pt)")
    parser.add_argument("images", type=Path, nargs="+", help="image files to classify")
    parser.add_argument("--top-k", type=int, default=3, help="how many classes to show per image (default 3)")
    args = parser.parse_args(argv)
    try:
        model, meta = load_bundle(args.model)
    except checkpoint.CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            ranked = predict_file(model, meta, path, args.top_k)
        except (data.BadImageError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{path.name}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranked))
    return status


if __name__ == "__main__":
    sys.exit(main())
