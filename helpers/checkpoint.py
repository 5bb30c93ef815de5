"""Checkpoints: written atomically, loaded safely (``weights_only=True``), checked against the model.

A checkpoint is a plain dict of tensors and Python values (numbers, strings, lists, tuples, dicts),
so ``torch.load(..., weights_only=True)`` can read it without running any code from the file.
"""
from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

ZIP_MAGIC = b"PK\x03\x04"           # torch.save writes a zip archive that starts with these bytes
WRAPPER_PREFIXES = ("_orig_mod.", "module.")   # torch.compile and DataParallel/DDP wrappers


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, unsafe to load, or does not fit the model."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the plain model inside a ``torch.compile`` or DataParallel/DDP wrapper (or `model` itself)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write `state` with ``torch.save`` to a temporary file beside `path`, then rename it into place.

    A crash while writing leaves the previous file at `path` untouched (``os.replace`` is atomic).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)  # by path: a retried save (ultralytics wraps torch.save) starts afresh
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # on disk before the rename
        os.chmod(tmp, 0o644)      # mkstemp makes files only their owner can read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _unsafe_global(message: str) -> str | None:
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return match.group(1) if match else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Return the dict saved at `path`, loaded with ``weights_only=True``; raise CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file. Check the path, or train first "
                              f"(fit writes last.pt and best.pt into its checkpoint_dir).")
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch.load raises RuntimeError, UnpicklingError, EOFError, KeyError, ...
        if (name := _unsafe_global(str(err))) is not None:
            raise CheckpointError(
                f"{path} needs to unpickle {name}, which is not on torch's allow-list, so it was not "
                f"loaded. We always load with weights_only=True: only tensors and plain Python values, "
                f"never code from the file (a whole pickled model or object can run arbitrary code when "
                f"unpickled). Load only files you trust. If you trust this one and {name} is a class you "
                f"know, allow exactly that class: torch.serialization.add_safe_globals([{name}]), or "
                f"`with torch.serialization.safe_globals([{name}]):` around the load. Better: save "
                f"model.state_dict() instead of the model object.") from err
        if head == ZIP_MAGIC:
            raise CheckpointError(f"{path} is a damaged checkpoint (truncated or corrupt: "
                                  f"{type(err).__name__}). It was probably copied or written only "
                                  f"partly; use another copy (e.g. last.pt instead of best.pt) or "
                                  f"save it again.") from err
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save writes a zip archive; "
                              f"this file starts with {head!r}). Pass the .pt file written by "
                              f"save_checkpoint or torch.save.") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint dict; "
                              f"save a dict such as {{'model': model.state_dict(), ...}}.")
    return state


def _strip_wrapper_prefix(state_dict: dict) -> dict:
    for prefix in WRAPPER_PREFIXES:
        if state_dict and all(key.startswith(prefix) for key in state_dict):
            return {key[len(prefix):]: value for key, value in state_dict.items()}
    return state_dict


def _list(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else shown or "none"


def load_weights(model: nn.Module, state_dict: dict) -> nn.Module:
    """Load `state_dict` into `model` strictly (all keys, all shapes) and return the model.

    Keys saved from a ``torch.compile`` or DataParallel wrapper (``_orig_mod.``/``module.``) are
    accepted. Any other mismatch raises CheckpointError listing missing keys, unexpected keys and
    shape mismatches.
    """
    target = unwrap_model(model)
    state_dict = _strip_wrapper_prefix(dict(state_dict))
    own = target.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"The checkpoint does not fit this {type(target).__name__}. Missing keys: {_list(missing)}. "
            f"Unexpected keys: {_list(unexpected)}. Shape mismatches: {_list(shapes, 5)}. Build the "
            f"same architecture with the same constructor arguments (e.g. num_classes) as the saved "
            f"model: the checkpoint's 'model_name' and 'model_args' say which.")
    target.load_state_dict(state_dict, strict=True)
    return model


def check_compatible(state: dict, model_name: str | None = None,
                     class_names: Iterable[str] | None = None, path: str | Path = "checkpoint") -> None:
    """Raise CheckpointError if `state` was saved for another model name or another class list."""
    saved = state.get("meta", {})
    if model_name is not None and saved.get("model_name") != model_name:
        raise CheckpointError(f"{path} holds a {saved.get('model_name', 'unnamed')!r} model "
                              f"(args {saved.get('model_args')}), not {model_name!r}. Build that model "
                              f"to load it, or pick the checkpoint of a {model_name}.")
    if class_names is not None and list(saved.get("class_names", [])) != list(class_names):
        raise CheckpointError(f"{path} was trained on classes {list(saved.get('class_names', []))}, "
                              f"but the data has {list(class_names)}. Its outputs would be read as the "
                              f"wrong classes: use a checkpoint trained on these classes, or retrain.")


# ---------------------------------------------------------------- random number generators

def rng_state(generator: torch.Generator | None = None) -> dict:
    """Return the states of Python's, NumPy's and torch's RNGs (and `generator`) as weights_only-safe values."""
    version, keys, gauss = random.getstate()
    name, np_keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": [version, list(keys), gauss],
        "numpy": [name, np_keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state() if generator is not None else None,
    }
    return state


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Restore the RNG states saved by ``rng_state`` (and `generator`'s, when both are there)."""
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(np_keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"].cpu())
