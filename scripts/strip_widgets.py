"""Remove progress-bar widget outputs from executed notebooks (run after a full nbconvert run).

    python scripts/strip_widgets.py notebooks/*.ipynb

tqdm's Jupyter progress bars are ipywidgets. A notebook executed headless by nbconvert stores them
frozen at "0%", which reads as broken on GitHub; every other output (the per-epoch summary lines
included) is kept as the run produced it.
"""
from __future__ import annotations

import sys

import nbformat

WIDGET = "application/vnd.jupyter.widget-view+json"


def strip(path: str) -> int:
    """Drop widget outputs from the notebook at `path`; return how many were dropped."""
    notebook = nbformat.read(path, as_version=4)
    dropped = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = [o for o in cell.outputs if not (o.get("output_type") == "display_data" and WIDGET in o.get("data", {}))]
        dropped += len(cell.outputs) - len(kept)
        cell.outputs = kept
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    return dropped


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {strip(name)} widget outputs removed")
