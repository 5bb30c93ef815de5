"""The machine and the run: device, seeds, smoke mode, data and cache folders.

This is the only module that reads environment variables:

- ``COURSE_SMOKE=1``   smoke mode: tiny real subsets, one short epoch (the tests set it).
- ``COURSE_DATA=DIR``  a folder that holds the datasets (see README, "Getting the data").
- ``COURSE_OFFLINE=1`` never try a download (the tests set it; also useful on a plane).
- ``COURSE_CACHE=DIR`` where unpacked data goes (default ``~/.cache/pytorch-course``).
"""
from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

TRUE_WORDS = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS


def smoke_mode() -> bool:
    """Return True when ``COURSE_SMOKE`` asks for a tiny, fast run (the tests set it)."""
    return _flag("COURSE_SMOKE")


def offline_forced() -> bool:
    """Return True when ``COURSE_OFFLINE`` forbids any download attempt."""
    return _flag("COURSE_OFFLINE")


def data_root() -> Path | None:
    """Return the ``COURSE_DATA`` folder, or None when it is not set."""
    value = os.environ.get("COURSE_DATA", "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Return (and create) the folder for unpacked data: ``COURSE_CACHE`` or ``~/.cache/pytorch-course``."""
    value = os.environ.get("COURSE_CACHE", "").strip()
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "pytorch-course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_device(prefer: str | None = None) -> torch.device:
    """Return CUDA if available, else Apple MPS, else CPU (or `prefer`, e.g. "cpu")."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 42) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a torch.Generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS
    return torch.Generator().manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and random from the worker's torch seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def cpu_bf16_units() -> str | None:
    """Return "AVX512-BF16" or "AMX" when this x86 CPU reports bfloat16 units, "none" when it reports none,
    or None where the flags cannot be read (not Linux, not x86)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return None
    names = set(flags.split(":", 1)[1].split())
    return "AMX" if "amx_bf16" in names else "AVX512-BF16" if "avx512_bf16" in names else "none"


def hardware_summary(device: torch.device) -> str:
    """Return a one-line description of the device, e.g. 'NVIDIA H100 (CUDA 12.8)' or
    'CPU: 2 cores (x86_64, bf16 units: none), 2 torch threads'."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    cores = os.cpu_count() or 1
    name = platform.processor() or platform.machine()
    units = cpu_bf16_units()
    bf16 = f", bf16 units: {units}" if units is not None else ""
    return f"CPU: {cores} cores ({name}{bf16}), {torch.get_num_threads()} torch threads"


def project_dir() -> Path:
    """Return the course checkout (the folder holding helpers/ and notebooks/), else the working folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "notebooks").is_dir() else Path.cwd()


def figures_dir() -> Path:
    """Return (and create) ``figures/`` of the checkout; in smoke mode a scratch folder in the cache,
    so that test runs never overwrite the figures of the committed full run."""
    path = cache_dir() / "smoke-figures" if smoke_mode() else project_dir() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
