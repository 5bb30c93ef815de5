"""course-train (helpers.train_cli): train and test run as programs, what they write, Ctrl-C and --resume,
and a one-line error for each bad argument."""
import contextlib
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FASHION_SAMPLE, FER_SAMPLE
from helpers import checkpoint, data, env, finder, predict, recipes, train, train_cli

EPOCHS = 5                  # the interrupted run has four epochs in which the SIGINT can land
# the shipped sample, named explicitly so that a COURSE_DATA set on the machine cannot make the runs slow
TRAIN = ["train", "--data-dir", str(FASHION_SAMPLE), "--epochs", str(EPOCHS), "--batch-size", "64", "--seed", "3",
         "--no-progress"]
SCALARS = {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"}


def course_train(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m helpers.train_cli`` in smoke mode (conftest set COURSE_SMOKE) from the project folder."""
    return subprocess.run([sys.executable, "-m", "helpers.train_cli", *args], capture_output=True, text=True,
                          cwd=env.project_dir(), timeout=300, **kwargs)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One uninterrupted training run of the sample, and what it printed."""
    out = tmp_path_factory.mktemp("cli") / "run"
    done = course_train(*TRAIN, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done.stdout


OWN_CLASSES = ("happy", "sad", "surprise")


def own_folder(root: Path) -> Path:
    """A folder of one's own images made from the shipped FER faces: train/ and test/ of three class folders,
    mostly the JPEGs as they are, some as PNGs in RGB at 60 px (mixed sizes and modes are converted)."""
    for split, count in (("train", 24), ("test", 6)):
        for name in OWN_CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for k, path in enumerate(sorted((FER_SAMPLE / split / name).glob("*.jpg"))[:count]):
                if k % 4:
                    (folder / path.name).write_bytes(path.read_bytes())
                else:
                    with data.load_image(path) as face:
                        face.convert("RGB").resize((60, 60)).save(folder / f"{path.stem}.png")
    return root


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """A training run on a folder of one's own images, with no --data."""
    root = own_folder(tmp_path_factory.mktemp("own") / "faces")
    out = root.parent / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):     # in this process: the program's start-up is tested by `run`
        status = train_cli.main(["train", "--data-dir", str(root), "--epochs", "1", "--batch-size", "16",
                                 "--out", str(out), "--no-progress"])
    assert status == 0, printed.getvalue()
    return root, out, printed.getvalue()


def test_own_folder_trains_tests_and_predicts(own_run, capsys, tmp_path):
    root, out, stdout = own_run
    assert "on folder" in stdout and "3 classes, gray at 48 px" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["data"] == "folder" and config["settings"]["image_mode"] == "L"
    model, meta = checkpoint.load_model(out / "model.pt")
    assert meta.class_names == OWN_CLASSES and meta.input_size == 48 and meta.image_mode == "L"
    assert meta.mean == tuple(config["mean"]) and meta.mean != data.FER_MEAN, "statistics measured on the folder"
    assert train_cli.main(["test", "--checkpoint", str(out / "model.pt"), "--data-dir", str(root),
                           "--out", str(tmp_path)]) == 0
    scored = json.loads((tmp_path / "test_metrics.json").read_text())
    assert scored["images"] == 18 and scored["data"] == "folder"
    capsys.readouterr()
    images = [next((root / "test" / name).glob("*.png")) for name in OWN_CLASSES]
    assert predict.main([str(out / "model.pt"), *map(str, images), "--top-k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.split(": ")[1].split()[0] in OWN_CLASSES for line in lines)


def test_own_folder_errors_reach_the_usage_line(capsys, tmp_path):
    (tmp_path / "train" / "cats").mkdir(parents=True)
    (tmp_path / "test" / "cats").mkdir(parents=True)
    line = error_of(capsys, "train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"))
    assert "holds no image files" in line and "cats" in line
    line = error_of(capsys, "train", "--data", "fer2013", "--image-mode", "RGB", "--out", str(tmp_path / "o"))
    assert "--image-mode applies to a folder of your own images" in line


def weights(path: Path) -> dict:
    return checkpoint.load_checkpoint(path)["model"]


def test_train_writes_checkpoints_bundle_config_and_tensorboard_logs(run):
    out, stdout = run
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["epochs"] == EPOCHS and config["settings"]["model"] == "fashion_cnn"
    assert config["settings"]["input_size"] == 28 and config["settings"]["seed"] == 3
    last = checkpoint.load_checkpoint(out / "last.pt")
    assert last["epoch"] == EPOCHS and len(last["history"]["val_acc"]) == EPOCHS
    model, meta = checkpoint.load_model(out / "model.pt")          # the bundle rebuilds the model alone
    assert meta.class_names == data.FASHION_CLASSES and meta.input_size == 28
    best = checkpoint.load_checkpoint(out / "best.pt")
    assert all(torch.equal(v, best["model"][k]) for k, v in model.state_dict().items()), "model.pt is not the best epoch"
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert SCALARS <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss/val")] == list(range(1, EPOCHS + 1))
    assert [round(e.value, 6) for e in events.Scalars("accuracy/val")] == [round(v, 6) for v in last["history"]["val_acc"]]
    assert {"batch/train", "mistakes/val"} <= set(events.Tags()["images"])
    assert "hparam/best_val_acc" in events.Tags()["scalars"]
    assert f"epoch {EPOCHS}/{EPOCHS}" in stdout


def test_test_prints_accuracy_and_report_and_saves_the_confusion_matrix(run, tmp_path, capsys):
    out, _ = run
    capsys.readouterr()
    assert train_cli.main(["test", "--checkpoint", str(out / "model.pt"), "--data-dir", str(FASHION_SAMPLE),
                           "--out", str(tmp_path)]) == 0         # in this process: `run` starts the program
    stdout = capsys.readouterr().out
    scored = json.loads((tmp_path / "test_metrics.json").read_text())
    assert f"test accuracy {scored['acc']:.4f}" in stdout
    assert all(name in stdout for name in data.FASHION_CLASSES) and "macro avg" in stdout
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert scored["acc"] > 0.15, f"{scored['acc']} after {EPOCHS} epochs: no better than chance (0.10)"


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no SIGINT to send to another process")
def test_ctrl_c_leaves_last_pt_and_resume_continues_exactly(run, tmp_path):
    reference, _ = run
    out = tmp_path / "run"
    command = [sys.executable, "-m", "helpers.train_cli", *TRAIN, "--out", str(out)]
    # a shell that starts a job in the background makes it ignore SIGINT, and Python then installs no Ctrl-C
    # handler: the child starts with the default disposition, as a program started in a terminal does
    process = subprocess.Popen(command, cwd=env.project_dir(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "last.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)                  # what Ctrl-C sends, during the second epoch
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == train_cli.INTERRUPTED, f"the run was not interrupted: {stdout}{stderr}"
    assert "--resume" in stderr and "Traceback" not in stderr
    stopped_at = checkpoint.load_checkpoint(out / "last.pt")["epoch"]
    assert 1 <= stopped_at < EPOCHS
    resumed = course_train(*TRAIN, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from epoch {stopped_at}" in resumed.stdout
    ours, theirs = weights(out / "last.pt"), weights(reference / "last.pt")
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs), "the resumed run's weights differ from the uninterrupted run's"
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/val")] == list(range(1, EPOCHS + 1)), "each epoch logged once"


def error_of(capsys, *argv: str) -> str:
    """Run the program in this process with `argv`; return its error output (it must exit with status 2)."""
    with pytest.raises(SystemExit) as stop:
        train_cli.main(list(argv))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: course-train"), err
    return err.strip().splitlines()[-1]


def test_unknown_model(capsys):
    assert "invalid choice: 'resnet18'" in error_of(capsys, "train", "--model", "resnet18")


def test_missing_data_folder(capsys, tmp_path):
    line = error_of(capsys, "train", "--data-dir", str(tmp_path / "nowhere"))
    assert line.endswith(f"the data folder {tmp_path / 'nowhere'} does not exist")


def test_folder_without_the_dataset(capsys, tmp_path):
    line = error_of(capsys, "train", "--data-dir", str(tmp_path), "--data", "fashion-idx", "--out", str(tmp_path / "o"))
    assert line.endswith(f"{tmp_path} holds no Fashion-MNIST (idx files for torchvision): none of "
                         f"{', '.join(finder.FASHION_IDX)}")


def test_checkpoint_of_another_dataset(capsys, run):
    out, _ = run
    line = error_of(capsys, "test", "--checkpoint", str(out / "model.pt"), "--data", "fer2013")
    assert "trained on another dataset: its class 'T-shirt/top' is not one of fer2013's classes" in line


def test_checkpoint_with_another_number_of_classes(capsys, run):
    out, _ = run
    line = error_of(capsys, "test", "--checkpoint", str(out / "model.pt"), "--classes", "Pullover,Shirt")
    assert "was trained on 10 classes" in line and "not on the 2 that --classes names" in line


def test_missing_checkpoint(capsys, tmp_path):
    assert "is not a file" in error_of(capsys, "test", "--checkpoint", str(tmp_path / "model.pt"))


def test_unknown_class(capsys, tmp_path):
    line = error_of(capsys, "train", "--classes", "Pullover,Jacket", "--data-dir", str(FASHION_SAMPLE),
                    "--out", str(tmp_path / "o"))
    assert "class 'Jacket' is not in this dataset" in line


def test_resume_without_a_run(capsys, tmp_path):
    assert "--resume found no run to continue" in error_of(capsys, "train", "--resume", "--out", str(tmp_path))


def test_resume_with_other_settings_and_a_second_run_into_the_same_folder(capsys, run):
    out, _ = run
    assert "--lr 0.01 differs from the 0.004" in error_of(capsys, *TRAIN, "--out", str(out), "--resume", "--lr", "0.01")
    assert "already holds a run" in error_of(capsys, *TRAIN, "--out", str(out))


@pytest.mark.parametrize("argv, message", [(["--epochs", "0"], "'0' is not a whole number of at least 1"),
                                           (["--lr", "0"], "must be greater than 0"),
                                           (["--lr", "fast"], "'fast' is not a number"),
                                           (["--val-fraction", "1.5"], "must lie between 0 and 1")])
def test_bad_numbers(capsys, argv, message):
    assert message in error_of(capsys, "train", *argv)


def test_help_documents_every_option_with_its_default(capsys):
    for command in ("train", "test"):
        with pytest.raises(SystemExit):
            train_cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        sub = train_cli.build_parser()._subparsers._group_actions[0].choices[command]
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.option_strings[-1] in text
            assert f"(default: {action.default})" in text, f"{command} {action.option_strings}: no default shown"


def test_the_schedules_span_the_same_steps():
    for name in recipes.SCHEDULES:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        scheduler = train.make_scheduler(name, optimizer, 30)
        rates = []
        for _ in range(30):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        assert max(rates) == pytest.approx(0.1)
        assert (rates[-1] < 0.01) == (name != "constant"), f"{name}: {rates}"


def test_the_console_script_is_declared():
    text = (env.project_dir() / "pyproject.toml").read_text()
    assert 'course-train = "helpers.train_cli:main"' in text
