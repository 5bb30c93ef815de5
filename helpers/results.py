"""The course's measured results: ``figures/results.json``, one entry per lesson run."""
from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import torch

from helpers import env

RESULTS_FILE = "results.json"


def results_path() -> Path:
    """Return the path of results.json (in the scratch figures folder in smoke mode)."""
    return env.figures_dir() / RESULTS_FILE


def read_results(path: Path | None = None) -> dict:
    """Return the recorded results as {lesson: {...}}, or {} when none were recorded yet."""
    path = path or results_path()
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and ``os.replace``: never half-written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def record_result(lesson: str, device: torch.device, **figures) -> dict:
    """Merge `figures` (accuracy, wall time, ...) for `lesson` into results.json and return the entry."""
    entry = {**figures, "hardware": env.hardware_summary(device), "torch": torch.__version__,
             "date": dt.date.today().isoformat()}
    path = results_path()
    results = read_results(path)
    results[lesson] = entry
    atomic_write_text(path, json.dumps(results, indent=2, sort_keys=True) + "\n")
    return entry
