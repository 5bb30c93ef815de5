"""Run notebooks in full, the one way the committed outputs are made.

    COURSE_DATA=/path/to/data python scripts/run_notebook.py notebooks/04_emotionnet_train_amp.ipynb [...]

Each notebook runs top to bottom in a fresh kernel, in its own folder, in full mode (``COURSE_SMOKE``
and ``COURSE_OFFLINE`` removed from the kernel's environment) and with matplotlib's inline backend,
so every figure is stored as the image a learner sees in Jupyter (a ``MPLBACKEND=Agg`` inherited from
a shell or a test run would store none). A cell that raises stops the run and nothing is written.

The outputs go back into the file as it is when the run ends: text cells edited meanwhile are kept, and
if a code cell was changed during the run the outputs would no longer belong to it, so the run is
written to ``NAME.run.ipynb`` beside it instead, and the script says so. Progress-bar widgets, which a
headless run stores frozen at 0%, are dropped; their text lines stay.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

WIDGET = "application/vnd.jupyter.widget-view+json"
FULL_RUN_DROPS = ("COURSE_SMOKE", "COURSE_OFFLINE", "MPLBACKEND")


def kernel_environment() -> dict[str, str]:
    """This process's environment, in full mode, with the inline backend and no forced offline mode."""
    env = {key: value for key, value in os.environ.items() if key not in FULL_RUN_DROPS}
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


def drop_widgets(notebook) -> int:
    """Remove progress-bar widget outputs; return how many there were."""
    dropped = 0
    for cell in notebook.cells:
        if cell.cell_type == "code":
            kept = [o for o in cell.outputs if not (o.get("output_type") == "display_data" and WIDGET in o.get("data", {}))]
            dropped += len(cell.outputs) - len(kept)
            cell.outputs = kept
    notebook.metadata.pop("widgets", None)
    return dropped


def code_sources(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def merge_outputs(ran, current) -> bool:
    """Copy the outputs of `ran` into `current` if both have the same code cells; return whether they had."""
    if code_sources(ran) != code_sources(current):
        return False
    executed = iter(cell for cell in ran.cells if cell.cell_type == "code")
    for cell in current.cells:
        if cell.cell_type == "code":
            done = next(executed)
            cell.outputs, cell.execution_count = done.outputs, done.execution_count
            cell.metadata = done.metadata
    current.metadata = ran.metadata
    return True


def write_atomically(notebook, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(notebook, str(tmp))
    os.replace(tmp, path)


def run(path: Path, timeout: int | None) -> Path:
    """Execute the notebook at `path` in full and store its outputs; return the file written."""
    notebook = nbformat.read(str(path), as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute(env=kernel_environment())
    dropped = drop_widgets(notebook)
    current = nbformat.read(str(path), as_version=4)
    target = path
    if merge_outputs(notebook, current):
        write_atomically(current, path)
    else:
        target = path.with_suffix(".run.ipynb")
        write_atomically(notebook, target)
        print(f"{path}: a code cell changed while it ran, so its outputs went to {target}; run it again",
              file=sys.stderr)
    print(f"{path}: ran in {(time.perf_counter() - start) / 60:.1f} min; {dropped} progress widgets dropped")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files to run, in this order")
    parser.add_argument("--timeout", type=int, default=None, help="seconds a cell may take (default: no limit)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if not os.environ.get("COURSE_DATA"):
        print("COURSE_DATA is not set: the notebooks look for their data the way a learner's do "
              "(a download where the machine is online)", file=sys.stderr)
    changed = [run(path, args.timeout) != path for path in args.notebooks]
    return 1 if any(changed) else 0


if __name__ == "__main__":
    sys.exit(main())
