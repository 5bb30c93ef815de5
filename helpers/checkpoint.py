"""Checkpoints and model files: what they describe (``ModelMeta``), written atomically, loaded safely
(``weights_only=True``), checked against the model, and rebuilt into a model (``load_model``).

A checkpoint is a plain dict of tensors and Python values (numbers, strings, lists, tuples, dicts),
so ``torch.load(..., weights_only=True)`` can read it without running any code from the file.

``save_checkpoint`` stores a SHA-256 checksum of every tensor beside them (under ``"checksum"``) and
``load_checkpoint`` checks it, because torch itself checks nothing: a file with one changed byte in a
weight would otherwise load and quietly give other answers. A file without a checksum (saved by plain
``torch.save``, by other code, or by an older version of this course) still loads, with an
UnverifiedCheckpointWarning that says so; saving it again with ``save_checkpoint`` adds one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from helpers import files, models

ZIP_MAGIC = b"PK\x03\x04"           # torch.save writes a zip archive that starts with these bytes
WRAPPER_PREFIXES = ("_orig_mod.", "module.")   # torch.compile and DataParallel/DDP wrappers
META_VERSION = 1                    # bump when ModelMeta's fields change meaning
CHECKSUM_KEY = "checksum"           # where save_checkpoint stores the tensors' checksums in the saved dict
CHECKSUM_ALGORITHM = "sha256"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, unsafe to load, damaged, or does not fit the model."""


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint was loaded without a checksum to check its tensors against."""


@dataclass(frozen=True)
class ModelMeta:
    """What a saved model is and how to feed it: enough to rebuild it and prepare an image without the notebook.

    `model_name` and `model_args` rebuild the network (``models.build_model(name, **model_args)``);
    `class_names` give its outputs their meaning; `input_size`, `mean`, `std`, `image_mode` ("L" or
    "RGB", how an image file is read) and `background` (the 0-255 grey that transparent pixels become)
    prepare an image exactly as the evaluation data was prepared.
    """
    model_name: str
    model_args: dict
    class_names: tuple[str, ...]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_mode: str = "L"
    background: int = 0
    version: int = META_VERSION

    def __post_init__(self):
        if self.model_name not in models.MODELS:
            raise ValueError(f"model_name={self.model_name!r} is not in the registry; use one of {sorted(models.MODELS)}")
        if not isinstance(self.model_args, dict) or "num_classes" not in self.model_args:
            raise ValueError(f"model_args={self.model_args!r} must be a dict of constructor arguments that "
                             f"includes num_classes, e.g. {{'num_classes': {len(self.class_names)}}}")
        if len(self.class_names) != self.model_args["num_classes"]:
            raise ValueError(f"{len(self.class_names)} class names but model_args num_classes="
                             f"{self.model_args['num_classes']}; give one name per output")
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean {self.mean} and std {self.std} need one value per channel each")
        if self.image_mode not in ("L", "RGB"):
            raise ValueError(f"image_mode={self.image_mode!r}; use 'L' (grayscale) or 'RGB'")
        if not 0 <= self.background <= 255:
            raise ValueError(f"background={self.background}; give a grey level 0-255")
        for name in ("class_names", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict:
        """Return the meta as plain Python values (safe for ``weights_only`` loading)."""
        return {**dataclasses.asdict(self), "class_names": list(self.class_names),
                "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, meta: dict, path: str | Path = "checkpoint") -> "ModelMeta":
        """Return the ModelMeta stored in a file's ``meta`` dict; raise CheckpointError naming what is missing."""
        known = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        if missing := sorted(required - set(meta)):
            raise CheckpointError(f"{path}: its meta lacks {missing}, so the model cannot be rebuilt from it. "
                                  f"Save it with checkpoint.ModelMeta(...) (fit's FitConfig(meta=...) or "
                                  f"predict.save_bundle).")
        if meta.get("version", META_VERSION) > META_VERSION:
            raise CheckpointError(f"{path} was written by a newer course (meta version {meta['version']}, this "
                                  f"one reads {META_VERSION}); update the course's helpers.")
        try:
            return cls(**{key: value for key, value in meta.items() if key in known})
        except (ValueError, TypeError) as err:                # a field of the wrong kind
            raise CheckpointError(f"{path}: its meta cannot describe a model: {err}") from err


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the plain model inside a ``torch.compile`` or DataParallel/DDP wrapper (or `model` itself)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _tensors(value, where: str = ""):
    """Yield (path, tensor) for every tensor inside nested dicts, lists and tuples, in their stored order.

    A path joins the keys and indices with "/", e.g. ``model/conv.weight`` or ``optimizer/state/0/exp_avg``.
    """
    if isinstance(value, torch.Tensor):
        yield where or "(the whole file)", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}/{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{where}/{index}" if where else str(index))


def tensor_sha256(tensor: torch.Tensor) -> str:
    """Return the SHA-256 (hex) of a tensor's dtype, shape and values, the same for any memory layout or device."""
    t = tensor.detach()
    if t.layout != torch.strided:                          # sparse tensors: their dense values
        t = t.to_dense()
    if t.is_quantized:
        t = t.int_repr()
    t = t.resolve_conj().resolve_neg().cpu().contiguous().reshape(-1)
    digest = hashlib.sha256(f"{t.dtype}{tuple(tensor.shape)}".encode())
    digest.update(t.view(torch.uint8).numpy().data)         # the raw bytes, without a copy on the CPU
    return digest.hexdigest()


def tensor_checksums(state: dict) -> dict:
    """Return the checksum record of every tensor in `state`: ``{"algorithm": "sha256", "tensors": {path: hex}}``.

    Tensors are found in `state`'s own order (see ``_tensors`` for their paths); a ``"checksum"`` entry
    already in `state` is left out.
    """
    digests = {}
    for where, tensor in _tensors({k: v for k, v in state.items() if k != CHECKSUM_KEY}):
        while where in digests:                              # two keys that print alike, e.g. 0 and "0"
            where += "'"
        digests[where] = tensor_sha256(tensor)
    return {"algorithm": CHECKSUM_ALGORITHM, "tensors": digests}


def verify_checksums(state: dict, path: str | Path = "checkpoint") -> bool:
    """Check `state`'s tensors against the checksums saved with them; return False when it has none.

    Raise CheckpointError naming the file and every tensor whose bytes changed, is missing or was
    added since it was saved.
    """
    record = state.get(CHECKSUM_KEY)
    if record is None:
        return False
    if (not isinstance(record, dict) or record.get("algorithm") != CHECKSUM_ALGORITHM
            or not isinstance(record.get("tensors"), dict)):
        algorithm = record.get("algorithm") if isinstance(record, dict) else None
        raise CheckpointError(f"{path}: its {CHECKSUM_KEY!r} entry is not a {CHECKSUM_ALGORITHM} checksum record "
                              f"this course can check (algorithm {algorithm!r}), so its tensors cannot be verified. "
                              f"If the file comes from a newer course, update the course's helpers; otherwise "
                              f"download it again or train again.")
    saved = record["tensors"]
    now = tensor_checksums(state)["tensors"]
    changed = [where for where, digest in now.items() if where in saved and saved[where] != digest]
    added = [where for where in now if where not in saved]
    missing = [where for where in saved if where not in now]
    if changed or added or missing:
        parts = [f"{len(changed)} changed: {_list(changed)}" if changed else "",
                 f"{len(missing)} missing: {_list(missing)}" if missing else "",
                 f"{len(added)} not in the checksum: {_list(added)}" if added else ""]
        raise CheckpointError(
            f"{path} is damaged: its tensors do not match the {CHECKSUM_ALGORITHM} checksum saved with them "
            f"({'; '.join(p for p in parts if p)}). The file changed after it was written (a bad download, "
            f"copy or disk), and a model loaded from it would give wrong answers without any other error, "
            f"so nothing was loaded. Download it again, use another copy (e.g. last.pt instead of best.pt), "
            f"or train again.")
    return True


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write `state` with ``torch.save`` atomically (``files.atomic_write``): a crash leaves the old file.

    The file also holds the SHA-256 checksum of every tensor in `state` under ``"checksum"`` (computed
    afresh, replacing any such entry in `state`), which ``load_checkpoint`` checks. `state` itself is
    not changed.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state is a {type(state).__name__}; save a dict such as {{'model': model.state_dict()}}")
    stored = {**{k: v for k, v in state.items() if k != CHECKSUM_KEY}, CHECKSUM_KEY: tensor_checksums(state)}
    return files.atomic_write(path, lambda tmp: torch.save(stored, tmp))


def _unsafe_global(message: str) -> tuple[str, bool] | None:
    """Return (the global a refused pickle names, whether torch blocks its whole module), or None."""
    match = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", message)
    return (match.group(1), "is blocked" in message) if match else None


def _unsafe_error(path: Path, name: str, blocked: bool) -> CheckpointError:
    start = (f"{path} asks to run {name} while it is loaded, which safe loading (weights_only=True) refuses, so "
             f"nothing was loaded and nothing ran. ")
    if blocked:
        return CheckpointError(
            start + f"torch blocks {name.split('.')[0]} outright: its functions can run programs and touch "
            f"files, and no checkpoint needs them. Treat the file as hostile: do not load it with "
            f"weights_only=False, and get the model from its author as a state_dict.")
    return CheckpointError(
        start + f"A checkpoint of plain tensors and values needs no code; a pickled object (a whole model, "
        f"a class of your own) does, and unpickling a file can run any function it names. Load only files "
        f"you trust. If you trust this one and {name} is a class you know, allow exactly that class: "
        f"torch.serialization.add_safe_globals([{name}]), or `with torch.serialization.safe_globals([{name}]):` "
        f"around the load. Better: save model.state_dict() instead of the model object.")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *, verify: bool = True) -> dict:
    """Return the dict saved at `path`, loaded with ``weights_only=True``; raise CheckpointError naming the file.

    The tensors are checked against the checksum ``save_checkpoint`` stored with them (unless
    ``verify=False``); a damaged file raises CheckpointError naming the changed tensors. A file saved
    without a checksum loads with an UnverifiedCheckpointWarning. The returned dict is what was saved,
    without the checksum entry.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; pass the .pt file inside it "
                              f"(fit writes last.pt and best.pt).")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file. Check the path, or train first "
                              f"(fit writes last.pt and best.pt into its checkpoint_dir).")
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch.load raises RuntimeError, UnpicklingError, EOFError, KeyError, ...
        if (refused := _unsafe_global(str(err))) is not None:   # zip or torch's legacy format alike
            raise _unsafe_error(path, *refused) from err
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
    if verify and not verify_checksums(state, path):
        warnings.warn(f"{path} has no checksum, so its tensors were loaded without a check that they are the "
                      f"ones that were saved (files written by torch.save, or by an older course, have none). "
                      f"If you trust the file, save it again with checkpoint.save_checkpoint to add one.",
                      UnverifiedCheckpointWarning, stacklevel=2)
    state.pop(CHECKSUM_KEY, None)
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


def check_compatible(meta: ModelMeta, model_name: str | None = None,
                     class_names: Sequence[str] | None = None, path: str | Path = "checkpoint") -> None:
    """Raise CheckpointError if `meta` describes another model name or another class list."""
    if model_name is not None and meta.model_name != model_name:
        raise CheckpointError(f"{path} holds a {meta.model_name!r} model (args {meta.model_args}), not "
                              f"{model_name!r}. Load it as a {meta.model_name!r}, or pick a checkpoint that "
                              f"holds a {model_name!r}.")
    if class_names is not None and list(meta.class_names) != list(class_names):
        raise CheckpointError(f"{path} was trained on classes {list(meta.class_names)}, but the data has "
                              f"{list(class_names)}. Its outputs would be read as the wrong classes: use a "
                              f"checkpoint trained on these classes, or retrain.")


def load_model(path: str | Path, device: torch.device | str = "cpu", *, model_name: str | None = None,
               class_names: Sequence[str] | None = None) -> tuple[nn.Module, ModelMeta]:
    """Return (model in eval mode on `device`, its ModelMeta) rebuilt from a training checkpoint or a bundle.

    The model is built from the file's meta through ``models.build_model`` and must fit the weights
    exactly; `model_name` and `class_names`, when given, must match the file's, else CheckpointError.
    """
    state = load_checkpoint(path, map_location=device)
    if "model" not in state or not isinstance(state.get("meta"), dict):
        raise CheckpointError(f"{path} has no 'model' weights with a 'meta' description: it is not an inference "
                              f"bundle or a training checkpoint of this course. Save one with "
                              f"predict.save_bundle(path, model, meta) or train.fit(..., FitConfig(meta=...)).")
    meta = ModelMeta.from_dict(state["meta"], path)
    check_compatible(meta, model_name, class_names, path)
    try:
        model = models.build_model(meta.model_name, **meta.model_args)
    except TypeError as err:                                 # an argument this model does not take
        raise CheckpointError(f"{path}: its meta's model_args {meta.model_args} do not build a "
                              f"{meta.model_name!r}: {err}") from err
    try:
        load_weights(model, state["model"])
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err
    return model.to(device).eval(), meta


# ---------------------------------------------------------------- random number generators

def rng_state(generator: torch.Generator | None = None) -> dict:
    """Return the states of Python's, NumPy's and torch's RNGs (and `generator`) as weights_only-safe values.

    torch's include every CUDA GPU's (an empty list without CUDA) and, on a Mac whose GPU torch can use,
    the MPS generator's under ``"mps"`` (the key is left out elsewhere).
    """
    version, keys, gauss = random.getstate()
    name, np_keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": [version, list(keys), gauss],
        "numpy": [name, np_keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state() if generator is not None else None,
    }
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Restore the RNG states saved by ``rng_state`` (and `generator`'s, when both are there).

    A GPU's state is restored where that GPU is available; one saved without it (a checkpoint written
    on a CPU, or before MPS states were saved) leaves that GPU's generator as it is.
    """
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(np_keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if state.get("mps") is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"].cpu())
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"].cpu())
