"""The course's measured results: ``figures/results.json``, one entry per lesson run."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import torch

from helpers import env, files

RESULTS_FILE = "results.json"


def results_path() -> Path:
    """Return the path of results.json (in the scratch figures folder in smoke mode)."""
    return env.figures_dir() / RESULTS_FILE


def committed_results() -> dict:
    """Return the results of the committed full runs (``figures/results.json`` of the checkout), also in smoke mode."""
    return read_results(env.project_dir() / "figures" / RESULTS_FILE)


def read_results(path: Path | None = None) -> dict:
    """Return the recorded results as {lesson: {...}}, or {} when none were recorded yet."""
    path = path or results_path()
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def record_result(lesson: str, device: torch.device, **figures) -> dict:
    """Write `figures` (accuracy, wall time, ...) as `lesson`'s entry of results.json and return the entry.

    The entry replaces the lesson's previous one as a whole (with the hardware, torch version and date
    added); the other lessons' entries are kept. The file is rewritten atomically.
    """
    entry = {**figures, "hardware": env.hardware_summary(device), "torch": torch.__version__,
             "date": dt.date.today().isoformat()}
    path = results_path()
    results = read_results(path)
    results[lesson] = entry
    files.atomic_write_text(path, json.dumps(results, indent=2, sort_keys=True) + "\n")
    return entry
