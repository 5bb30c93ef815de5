"""Committed notebooks show every picture they draw, and commit every figure they save (issue: full re-runs)."""
import re
from pathlib import Path

import pytest

from test_notebook_outputs import NOTEBOOKS, code_cells

# A cell draws when it calls one of helpers.plots' drawing functions, pyplot, or pandas' .plot: then the
# inline backend shows its figure, and the committed output must hold that image (scripts/run_notebook.py).
DRAWS = re.compile(r"\bplots\.(show_images|plot_history|plot_confusion_matrix|show_augmentations|show_prediction|"
                   r"plot_grouped_bars|draw_predictions|plot_curves)\(|\bplt\.(subplots|figure|imshow|plot|bar|hist)\("
                   r"|\.plot(\.\w+)?\(")
SAVES = re.compile(r"save_figure\([^,]+,\s*\"([\w-]+)\"\)")
FIGURES = Path(__file__).resolve().parents[1] / "figures"


def code_without_comments(cell) -> str:
    return "\n".join(line.split("#", 1)[0] if "#" in line and '"' not in line.split("#", 1)[0] else line
                     for line in "".join(cell["source"]).splitlines())


def test_the_drawing_patterns_find_what_they_should():
    assert DRAWS.search("fig, ax = plt.subplots(1, 2)") and DRAWS.search("fig = plots.show_images(x, ncols=8)")
    assert DRAWS.search('table["acc"].plot(kind="bar")') and DRAWS.search("df.plot.bar(ax=ax)")
    assert not DRAWS.search("plots.to_display(image)") and not DRAWS.search("print(plt.rcParams)")
    assert SAVES.findall('_ = plots.save_figure(fig, "03_batch")') == ["03_batch"]
    assert code_without_comments({"source": ["x = 1  # plt.subplots()\n", "y = 2"]}) == "x = 1  \ny = 2"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_that_draws_shows_its_picture(path):
    missing = []
    for i, cell in enumerate(code_cells(path), 1):
        code = code_without_comments(cell)
        if DRAWS.search(code) and not any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
            missing.append(f"code cell {i} ({code.strip().splitlines()[0][:60]!r})")
    assert not missing, (f"{path.name}: cells that draw have no image in their committed output: {'; '.join(missing)}. "
                         f"Run the notebook with scripts/run_notebook.py, which keeps the figures.")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_a_notebook_saves_is_committed(path):
    named = [name for cell in code_cells(path) for name in SAVES.findall(code_without_comments(cell))]
    absent = [f"figures/{name}.png" for name in named if not (FIGURES / f"{name}.png").is_file()]
    assert not absent, f"{path.name} saves {', '.join(absent)}, which the repository lacks; commit its full run's figures"
