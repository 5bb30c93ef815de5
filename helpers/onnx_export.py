"""Exporting a course model to ONNX and checking it against PyTorch (lesson 08).

Lesson 08 writes each of these functions in its own cells and explains them; they live here too so
that its worked solutions and the tests can use them (``tests/test_onnx.py`` checks that the
notebook's code and this module's stay the same). Predicting with the exported file needs none of
this: ``helpers.onnx_predict`` runs it with ONNX Runtime, NumPy and Pillow only.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from helpers import checkpoint, files


def preprocessing_metadata(meta: checkpoint.ModelMeta) -> dict[str, str]:
    """Return what preparing an image needs (class names, size, mean, std, mode, background) as ONNX metadata strings."""
    fields = {"class_names": list(meta.class_names), "input_size": meta.input_size, "mean": list(meta.mean),
              "std": list(meta.std), "image_mode": meta.image_mode, "background": meta.background,
              "model_name": meta.model_name}
    return {key: json.dumps(value) for key, value in fields.items()}


def export_onnx(model: nn.Module, meta: checkpoint.ModelMeta, path: str | Path) -> Path:
    """Export `model` to an ONNX file at `path` with a free batch dimension and `meta`'s preprocessing; return the path."""
    model = model.eval()
    device = next(model.parameters()).device
    example = torch.zeros(2, len(meta.mean), meta.input_size, meta.input_size, device=device)
    program = torch.onnx.export(model, (example,), input_names=["images"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    program.model.metadata_props.update(preprocessing_metadata(meta))
    return files.atomic_write(path, lambda tmp: program.save(tmp, external_data=False))


def torch_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Return `model`'s float32 logits for prepared `images` (N x C x H x W), computed on the CPU in batches."""
    model = model.eval().cpu()
    with torch.inference_mode():
        return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]).numpy()


def onnx_logits(session: ort.InferenceSession, images: torch.Tensor | np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Return the ONNX model's logits for the same prepared `images`, in batches of `batch_size`."""
    images = images.numpy() if isinstance(images, torch.Tensor) else images
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: images[i:i + batch_size]})[0]
                           for i in range(0, len(images), batch_size)])


def compare_logits(reference: np.ndarray, other: np.ndarray) -> dict:
    """Return how far `other`'s logits are from `reference`'s: largest and mean absolute difference, share of
    identical top-1 classes, and the smallest top-1/top-2 gap of the reference among images whose class changed."""
    diff = np.abs(reference.astype(np.float64) - other.astype(np.float64))
    changed = reference.argmax(1) != other.argmax(1)
    top2 = np.sort(reference, axis=1)[:, -2:]
    gaps = top2[:, 1] - top2[:, 0]
    return {"images": len(reference), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "same_class": float(1 - changed.mean()), "changed": int(changed.sum()),
            "smallest_gap_changed": float(gaps[changed].min()) if changed.any() else None}


def latencies_ms(run: Callable[[], object], repeats: int, warmup: int = 10) -> np.ndarray:
    """Return the wall time of each of `repeats` calls of `run` in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        run()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        run()
        times[i] = (time.perf_counter() - start) * 1000
    return times
