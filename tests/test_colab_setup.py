"""The Colab badge click, offline: every notebook's first cell sets the course up in a fresh Colab runtime.

A learner clicks a lesson's badge and gets a new machine that has torch and torchvision (and pandas,
matplotlib, ...) but not the course, ultralytics or ONNX, and a kernel whose working folder is
/content. The test builds a stand-in for that machine here:

- a virtual environment that sees this environment's packages, except the ones Colab lacks and the
  course itself (a folder of links, added by a .pth file: its torch is "preinstalled", outside the
  new environment, so pip could not remove it even if it tried);
- a ``google.colab`` module, imported before the cell runs, as Colab's kernel does;
- an empty folder for /content, and ``COURSE_REPO`` pointed at a local git copy of this checkout.

Then the setup cell runs in a real kernel of that environment, twice, and once more after a kernel
restart; ``import helpers`` must work in the same kernel each time, the course's programs must be
installed, and torch must be the same version from the same place as before.
"""
from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
COLAB_LACKS = {"ultralytics", "ultralytics-thop", "ultralytics-platform", "onnx", "onnx-ir", "onnxruntime",
               "onnxscript", "course-helpers"}


def setup_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_every_notebook_starts_with_the_same_setup_cell():
    cells = {path.relative_to(ROOT).as_posix(): setup_cell(path) for path in NOTEBOOKS}
    first = cells["notebooks/01_install.ipynb"]
    assert 'if "google.colab" in sys.modules:' in first
    different = [name for name, cell in cells.items() if cell != first]
    assert not different, f"these notebooks' first code cell differs from lesson 01's setup cell: {different}"


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def _colab_like_site(target: Path) -> None:
    """Fill `target` with links to this environment's packages, leaving out what Colab lacks."""
    hidden = set()
    for dist in metadata.distributions():
        if _normal(dist.metadata["Name"]) in COLAB_LACKS:
            hidden.update(f.parts[0] for f in dist.files or [] if f.parts[0] != "..")
    target.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name in hidden or entry.suffix == ".pth" or entry.name.startswith("__editable__"):
            continue
        (target / entry.name).symlink_to(entry)


def _local_copy_of_checkout(target: Path) -> str:
    """Copy the checkout's files (committed or not, but not ignored) into a new git repository; return its URL."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-C", str(target)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(target)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "local copy"], check=True)
    return target.as_uri()


class Kernel:
    """A Jupyter kernel of the stand-in environment; `run` returns what a cell printed, failing on errors."""

    def __init__(self, python: Path, cwd: Path, env: dict, kernels: Path):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        spec = kernels / "colab-standin"
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Colab stand-in", "language": "python"}))
        self.manager = KernelManager(kernel_name="colab-standin",
                                     kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self._ready()

    def _ready(self) -> None:
        self.client.wait_for_ready(timeout=120)
        self.run("import google.colab")                # Colab's kernel has it imported when a notebook starts

    def restart(self) -> None:
        """Restart the kernel as Colab's "Restart session" does: a new process, the same files on disk."""
        self.manager.restart_kernel(now=True)
        self._ready()

    def run(self, code: str, timeout: float = 600) -> str:
        printed, errors = [], []

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                printed.append(content["text"])
            elif msg["msg_type"] == "error":
                errors.append("\n".join(content["traceback"]))
        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == "ok" and not errors, f"the cell failed:\n{''.join(printed)}\n{errors}"
        return "".join(printed)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    if sys.platform == "win32":
        pytest.skip("the stand-in links packages with symlinks, which Windows restricts")
    base = tmp_path_factory.mktemp("colab")
    _colab_like_site(base / "preinstalled")
    standin_module = base / "standin" / "google" / "colab"
    standin_module.mkdir(parents=True)
    (standin_module / "__init__.py").write_text('"""A stand-in for Colab\'s google.colab module."""\n')
    venv.create(base / "venv", with_pip=False)         # pip comes with the "preinstalled" packages, as in Colab
    python = base / "venv" / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "colab.pth").write_text(f"{base / 'standin'}\n{base / 'preinstalled'}\n")
    repo = base / "repo"
    content = base / "content"                          # Colab's /content
    content.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JPY_", "PYTEST"))}
    env.update(VIRTUAL_ENV=str(base / "venv"), PATH=f"{base / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               COURSE_REPO=_local_copy_of_checkout(repo), COURSE_DIR=str(content / "pytorch-course"))
    kernel = Kernel(python, content, env, base / "kernels")
    yield kernel, base
    kernel.close()


PROBE = """
import os, shutil, torch
import helpers
print(helpers.__file__, os.getcwd(), torch.__version__, torch.__file__, shutil.which("course-train"), sep="\\n")
"""


def test_the_setup_cell_makes_the_course_work_in_a_fresh_colab_runtime(colab):
    kernel, base = colab
    torch_before = kernel.run("import torch; print(torch.__version__, torch.__file__)").split()
    course = base / "content" / "pytorch-course"
    for cell in sorted({setup_cell(path) for path in NOTEBOOKS}):   # one text: the test above keeps it so
        for attempt in ("first run", "run again", "after a runtime restart"):
            if attempt == "after a runtime restart":
                kernel.restart()
            kernel.run(cell)
            helpers_file, cwd, version, torch_file, course_train = kernel.run(PROBE).split()
            assert Path(helpers_file) == course / "helpers" / "__init__.py", attempt
            assert Path(cwd) == course / "notebooks", attempt
            assert [version, torch_file] == torch_before, f"{attempt}: Colab's torch was replaced"
            assert course_train and Path(course_train).parent == base / "venv" / "bin", attempt
            if attempt == "first run":                  # what Colab lacked is installed, in this environment
                kernel.run("import ultralytics, onnx, onnxruntime, onnxscript")
