"""The README's results table is generated from figures/results.json and must not go stale."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_script():
    return _load_script("update_readme")


def test_readme_results_table_matches_results_json():
    script = load_script()
    results = json.loads((ROOT / "figures" / "results.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.results_table(results) in readme, "README is stale: run python scripts/update_readme.py"


def test_results_table_formats_a_row():
    table = load_script().results_table({"03_x": {"test_acc": 0.9312, "epochs": 12, "hardware": "CPU"},
                                         "04_y": {"test_acc": 0.5, "bf16": True}, "05_z": {"bf16": False}})
    assert "| `03_x` | 93.1% | – | 12 | – | – | – | – | CPU | – |" in table
    assert "| `04_y` | 50.0% | – | – | – | – | – | bf16 | – | – |" in table
    assert "| `05_z` | – | – | – | – | – | – | off | – | – |" in table


def test_mixed_precision_reads_the_bf16_flag_or_the_amp_repr():
    script = load_script()
    for amp, expected in ((None, None), (False, "off"), (True, "bf16")):
        assert script.mixed_precision({} if amp is None else {"bf16": amp}) == expected
    from helpers import train
    import torch
    assert script.mixed_precision({"amp": repr(train.Amp(torch.device("cpu")))}) == "off"
    assert script.mixed_precision({"amp": repr(train.Amp(torch.device("cpu"), enabled=True))}) == "bf16"
    assert script.mixed_precision({"amp": "Amp(cuda autocast float16 + GradScaler)"}) == "fp16"
    table = script.results_table({"04_y": {"amp": repr(train.Amp(torch.device("cpu")))}, "06_z": {}})
    assert "| `04_y` | – | – | – | – | – | – | off | – | – |" in table
    assert "| `06_z` | – | – | – | – | – | – | – | – | – |" in table


def test_readme_names_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{notebook.name}" in readme, f"{notebook.name} is missing from the README lesson table"
