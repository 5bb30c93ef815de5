"""Rewrite the results table in README.md from figures/results.json (run after a full notebook run).

    python scripts/update_readme.py
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import files

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
COLUMNS = [  # (key in results.json, column title, format string)
    ("test_acc", "test accuracy", "{:.1%}"),
    ("macro_f1", "macro-F1", "{:.3f}"),
    ("epochs", "epochs", "{}"),
    ("input_size", "input px", "{}"),
    ("wall_time_s", "training time", "{:.0f} s"),
    ("images_per_s", "train images/s", "{:,.0f}"),
    ("mixed_precision", "mixed precision", "{}"),       # see mixed_precision()
    ("hardware", "hardware", "{}"),
    ("date", "date", "{}"),
]


def mixed_precision(entry: dict) -> str | None:
    """Return "bf16", "fp16" or "off" from a lesson's `bf16` flag (lesson 03) or its `amp`, the repr of a
    ``train.Amp`` (lessons using ``fit``); None when the lesson records neither."""
    if entry.get("bf16") is not None:
        return "bf16" if entry["bf16"] else "off"
    amp = entry.get("amp")
    if amp is None:
        return None
    return "off" if amp.startswith("Amp(off") else "bf16" if "bfloat16" in amp else "fp16"


def results_table(results: dict) -> str:
    """Return a Markdown table with one row per lesson and the columns in COLUMNS."""
    lines = ["| lesson | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for lesson in sorted(results):
        entry = {**results[lesson], "mixed_precision": mixed_precision(results[lesson])}
        cells = ["–" if entry.get(key) is None else fmt.format(entry[key])
                 for key, _, fmt in COLUMNS]
        lines.append(f"| `{lesson}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    results = json.loads((ROOT / "figures" / "results.json").read_text(encoding="utf-8"))
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = f"{START}\n{results_table(results)}\n{END}"
    new, count = re.subn(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if count != 1:
        raise SystemExit(f"README.md must contain exactly one {START} ... {END} block (found {count})")
    files.atomic_write_text(readme, new)
    print(f"README.md: results table with {len(results)} lessons")


if __name__ == "__main__":
    main()
