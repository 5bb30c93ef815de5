"""A lesson writes what it teaches in its own cells, and helpers keep the same code for later lessons.

Each function below is defined in a lesson's code cells and in a helpers module; this test fails as
soon as the two differ, so that the helper a later lesson imports is the code the learner read
(d2l's ``#@save`` idea, checked instead of generated).
"""
import ast
import inspect
import json
import textwrap

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from helpers import data, env, features, imbalance, train

NOTEBOOKS = env.project_dir() / "notebooks"

TAUGHT = [
    ("03_fashionmnist_csv_dataset", data, "TensorImages"),
    ("03_fashionmnist_csv_dataset", data, "batch_loader"),
    ("06_weighted_sampler_efficientnet", imbalance, "class_counts"),
    ("06_weighted_sampler_efficientnet", imbalance, "sample_weights"),
    ("06_weighted_sampler_efficientnet", imbalance, "make_weighted_sampler"),
    ("06_weighted_sampler_efficientnet", imbalance, "loss_class_weights"),
    ("06_weighted_sampler_efficientnet", imbalance, "class_prior"),
    ("06_weighted_sampler_efficientnet", imbalance, "logit_adjust"),
    ("06_weighted_sampler_efficientnet", features, "split_layers"),
    ("07_script_tensorboard_lr_schedules", train, "make_scheduler"),
]


def notebook_functions(name: str) -> dict[str, str]:
    """Return {name: its source} for every top-level function and class defined in the notebook's code cells."""
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    found = {}
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = TransformerManager().transform_cell("".join(cell["source"]))   # `!cmd` lines become Python
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found[node.name] = ast.get_source_segment(source, node)
    return found


def normalised(source: str) -> str:
    """The same code whichever quotes its docstring uses."""
    return ast.dump(ast.parse(textwrap.dedent(source)))


@pytest.mark.parametrize("notebook, module, function", TAUGHT, ids=[f"{n[:2]}-{f}" for n, _, f in TAUGHT])
def test_the_lessons_code_and_the_helpers_are_the_same(notebook, module, function):
    written = notebook_functions(notebook)
    assert function in written, f"{notebook}.ipynb no longer defines {function}; update TAUGHT in this test"
    kept = inspect.getsource(getattr(module, function))
    assert normalised(written[function]) == normalised(kept), (
        f"{function} in {notebook}.ipynb differs from {module.__name__}.{function}: change both the same way")


def test_a_changed_line_is_noticed():
    source = inspect.getsource(imbalance.logit_adjust)
    assert normalised(source) != normalised(source.replace("tau * prior.log()", "prior.log()"))
