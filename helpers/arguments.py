"""argparse types shared by the course's command-line programs (course-train, course-predict, ddp_train).

Each checks one kind of value and, when it is wrong, raises ``argparse.ArgumentTypeError`` with a
sentence that names the value, which argparse prints under the usage line. ``onnx_predict`` keeps its
own copy because it must run where torch, and so the rest of ``helpers``, is not installed.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1" if kind is int
                                         else f"{text!r} is not a number") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number greater than 0."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1 (a share of something, never none or all of it)."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} must lie between 0 and 1")
    return value


def fraction_or_zero(text: str) -> float:
    """argparse type: a number in 0 <= x < 1 (a strength that may be off: label smoothing, weight decay)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} must lie in 0 <= x < 1")
    return value


def existing_dir(text: str) -> Path:
    """argparse type: a folder that exists."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"the data folder {text} does not exist" if not path.exists()
                                         else f"{text} is a file, not a data folder")
    return path
