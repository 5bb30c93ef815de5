"""Committed notebooks hold the outputs of one clean full run: learners read them on GitHub."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")) + sorted(
    (Path(__file__).resolve().parents[1] / "notebooks" / "solutions").glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(/work/|/root/|/home/\w+/|/tmp/|[A-Z]:\\\\Users\\\\)")


def code_cells(path):
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_come_from_one_clean_full_run(path):
    cells = [c for c in code_cells(path) if "".join(c["source"]).strip()]
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: execution counts {counts} are not one run in order"
    for i, cell in enumerate(cells, 1):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name} cell {i} stored a traceback"
            text = json.dumps(output.get("text", "")) + json.dumps(output.get("data", {}).get("text/plain", ""))
            assert "smoke" not in text.lower(), f"{path.name} cell {i}: stored outputs come from a smoke run"
            assert not MACHINE_PATH.search(text), f"{path.name} cell {i} shows a machine path: {MACHINE_PATH.search(text)[0]}"



@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_test_runner_instructions_are_cell_tags_not_code_comments(path):
    marked = [i for i, cell in enumerate(code_cells(path), 1) if "NBVAL_" in "".join(cell["source"])]
    assert not marked, (f"{path.name}: code cells {marked} carry an NBVAL_ comment, which every learner reads and "
                        f"copies; give the cell the tag nbval-ignore-output (cell metadata) instead")
