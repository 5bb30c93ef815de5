"""helpers.ddp_train (lesson 09): launched by torchrun on 2 CPU processes, it ends with the same weights as one
process doing the same arithmetic, only rank 0 prints and writes files, and its checkpoint resumes on one process.

One torchrun launch serves every test here (starting two processes that import torch costs seconds).
"""
import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import checkpoint, ddp_train, env, models, predict, train

ROOT = env.project_dir()
TOLERANCE = 1e-6          # float32 weights of order 0.1-1; identical arithmetic gives identical bits (difference 0)
# a few steps: 320 training images in global batches of 32 (2 processes x 16), 10 steps an epoch, 2 epochs
SETTINGS = ["--epochs", "2", "--batch-size", "32", "--train-images", "320", "--threads", "1", "--trace-every", "5"]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Run the script under torchrun with 2 processes (gloo on the CPU); return its folder and per-rank output."""
    base = tmp_path_factory.mktemp("ddp")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "--log-dir", str(base / "logs"), "--redirects", "3", "-m", "helpers.ddp_train", *SETTINGS,
               "--device", "cpu", "--out", str(base / "run")]
    launch_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, env=launch_env, capture_output=True, text=True, timeout=300)
    logs = {int(path.parent.name): path.read_text(encoding="utf-8")
            for path in (base / "logs").rglob("stdout.log")}
    errors = "\n".join(path.read_text(encoding="utf-8") for path in (base / "logs").rglob("stderr.log"))
    assert result.returncode == 0, f"torchrun failed ({result.returncode}):\n{result.stderr[-3000:]}\n{errors[-3000:]}"
    return base / "run", logs


@pytest.fixture
def one_thread():
    """The in-process runs set torch's thread count (as the script does); put it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_only_rank_0_prints_and_writes(ddp_run):
    run, logs = ddp_run
    written = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert written == ["checkpoints/epoch_1.pt", "checkpoints/epoch_2.pt", "config.json", "log.jsonl",
                       "summary.json", "trace.pt"]
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(line["epoch"], line["rank"]) for line in lines] == [(1, 0), (2, 0)], "each epoch logged once, by rank 0"
    assert sorted(logs) == [0, 1]
    assert logs[1] == "", f"rank 1 printed: {logs[1][:500]}"
    assert logs[0].count("epoch 1/2") == 1 and logs[0].count("epoch 2/2") == 1 and "test accuracy" in logs[0]
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert (summary["world_size"], summary["backend"], summary["threads"]) == (2, "gloo", 1)
    assert summary["train_images"] == 320 and len(summary["history"]) == 2


def test_ddp_and_one_process_with_the_same_arithmetic_end_with_the_same_weights(ddp_run, tmp_path, capsys, one_thread):
    run, _ = ddp_run
    assert ddp_train.main([*SETTINGS, "--micro-batches", "2", "--out", str(tmp_path / "one")]) == 0
    assert "Not started by torchrun" in capsys.readouterr().out, "a plain start should say how to launch"
    ddp, one = torch.load(run / "trace.pt"), torch.load(tmp_path / "one" / "trace.pt")
    assert ddp["steps"] == one["steps"] == [0, 5, 10, 15, 20]
    assert not torch.equal(ddp["weights"][0], ddp["weights"][-1]), "the weights should change in training"
    assert (ddp["weights"] - one["weights"]).abs().max().item() <= TOLERANCE
    final = largest_difference(weights(run / "checkpoints/epoch_2.pt"), weights(tmp_path / "one/checkpoints/epoch_2.pt"))
    assert final <= TOLERANCE, f"weights and BatchNorm statistics differ by up to {final:.3g}"


def test_a_ddp_checkpoint_resumes_on_one_process(ddp_run, tmp_path, one_thread):
    run, _ = ddp_run
    out = tmp_path / "resumed"
    assert ddp_train.main([*SETTINGS, "--micro-batches", "2", "--out", str(out),
                           "--resume", str(run / "checkpoints/epoch_1.pt")]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["epoch"] for line in log] == [2], "it should continue with the second epoch"
    difference = largest_difference(weights(run / "checkpoints/epoch_2.pt"), weights(out / "checkpoints/epoch_2.pt"))
    assert difference <= TOLERANCE, f"the resumed run ends {difference:.3g} away from the DDP run"


def test_resuming_with_other_settings_is_refused(ddp_run, tmp_path, capsys, one_thread):
    run, _ = ddp_run
    changed = [*SETTINGS, "--lr", "0.001", "--out", str(tmp_path), "--resume", str(run / "checkpoints/epoch_1.pt")]
    assert ddp_train.main(changed) == 2
    assert "lr: saved 0.004, now 0.001" in capsys.readouterr().err


def test_resume_refuses_a_file_that_is_not_a_ddp_checkpoint(ddp_run, tmp_path, capsys, one_thread):
    run, _ = ddp_run
    state = checkpoint.load_checkpoint(run / "checkpoints/epoch_1.pt")
    assert state["format"] == ddp_train.CHECKPOINT_FORMAT
    fit_tagged = checkpoint.save_checkpoint(tmp_path / "last.pt", {**state, "format": train.CHECKPOINT_FORMAT})
    bundle = predict.save_bundle(tmp_path / "model.pt", models.build_model(ddp_train.RECIPE.model, num_classes=10),
                                 checkpoint.ModelMeta.from_dict(state["meta"]))
    for path, kind in ((fit_tagged, train.CHECKPOINT_FORMAT), (bundle, predict.BUNDLE_FORMAT)):
        assert ddp_train.main([*SETTINGS, "--out", str(tmp_path / "out"), "--resume", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{path} is not a checkpoint written by ddp_train (its format is {kind!r}" in err, err
        assert "checkpoints/epoch_N.pt" in err
    assert not (tmp_path / "out" / "checkpoints").exists(), "a refused resume must not train"


def test_a_process_without_data_is_caught_with_a_clear_message(tmp_path, capsys, one_thread):
    with pytest.raises(ddp_train.SetupError, match="cannot be cut into 3 equal shares; use a multiple of 3, e.g. 258"):
        ddp_train.check_shards(54_000, 6_000, 3, 256)
    with pytest.raises(ddp_train.SetupError, match="each of the 4 processes gets 50 of the 200 training images, "
                                                   "fewer than its share of a batch"):
        ddp_train.check_shards(200, 6_000, 4, 256)
    with pytest.raises(ddp_train.SetupError, match="only 3 evaluation images for 4 processes"):
        ddp_train.check_shards(54_000, 3, 4, 256)
    assert ddp_train.check_shards(54_000, 6_000, 2, 256) == 128
    assert ddp_train.main(["--train-images", "100", "--batch-size", "128", "--threads", "1", "--out", str(tmp_path)]) == 2
    assert "use a --batch-size of at most 100" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_bad_options_are_refused(capsys):
    for bad in (["--epochs", "0"], ["--batch-size", "-4"], ["--threads", "two"]):
        with pytest.raises(SystemExit):
            ddp_train.parse_args(bad)
        assert "is not a whole number of at least 1" in capsys.readouterr().err


def test_the_flips_depend_on_seed_and_epoch_only():
    assert torch.equal(ddp_train.flip_mask(1000, 42, 3), ddp_train.flip_mask(1000, 42, 3))
    assert not torch.equal(ddp_train.flip_mask(1000, 42, 3), ddp_train.flip_mask(1000, 42, 4))
    assert 400 < int(ddp_train.flip_mask(1000, 42, 3).sum()) < 600


@pytest.mark.parametrize("gpus, processes, device, expected", [
    (0, 2, None, ("gloo", "cpu")),         # a laptop or the CI machine
    (1, 2, None, ("gloo", "cpu")),         # Colab's one GPU, two processes: NCCL would need two
    (2, 2, None, ("nccl", "cuda")),        # a GPU for every process
    (8, 4, None, ("nccl", "cuda")),
    (1, 1, None, ("nccl", "cuda")),
    (4, 2, "cpu", ("gloo", "cpu")),        # asked for the CPU
    (2, 2, "cuda", ("nccl", "cuda")),
])
def test_nccl_only_with_a_gpu_for_every_process(gpus, processes, device, expected):
    backend, kind, note = ddp_train.choose_backend(gpus, processes, device)
    assert (backend, kind) == expected
    if 0 < gpus < processes and device is None:
        assert "NCCL needs a GPU for each process" in note and "--nproc-per-node=N" in note, note
    else:
        assert note == ""


def test_asking_for_cuda_without_a_gpu_per_process_is_refused():
    with pytest.raises(ddp_train.SetupError, match="a GPU for each of the 2 processes on this machine, and it has 1"):
        ddp_train.choose_backend(1, 2, "cuda")
    with pytest.raises(ddp_train.SetupError, match="this machine has no CUDA GPU"):
        ddp_train.choose_backend(0, 1, "cuda")


@pytest.fixture
def fake_cuda_rank_1(monkeypatch):
    """Rank 1 of 2 under torchrun on a machine that reports `gpus` CUDA GPUs; returns a function that sets how many
    and the calls made. set_device fails like CUDA's invalid device ordinal; no process group is really made."""
    calls = {}
    for name, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)

    def set_device(dev):
        if torch.device(dev).index >= calls["gpus"]:
            raise RuntimeError("CUDA error: invalid device ordinal")
        calls["set_device"] = torch.device(dev)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: calls["gpus"] > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: calls["gpus"])
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.setattr(ddp_train.dist, "init_process_group", lambda backend, **kw: calls.update(init=(backend, kw)))
    monkeypatch.setattr(ddp_train.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(ddp_train.dist, "get_world_size", lambda: 2)

    def with_gpus(gpus: int) -> dict:
        calls.clear()
        calls["gpus"] = gpus
        return calls
    return with_gpus


def test_two_processes_on_one_gpu_use_gloo_on_the_cpu(fake_cuda_rank_1):
    calls = fake_cuda_rank_1(1)
    d = ddp_train.setup_distributed()
    assert (d.backend, d.device, d.rank, d.world_size) == ("gloo", torch.device("cpu"), 1, 2)
    assert calls["init"] == ("gloo", {"device_id": None}) and "set_device" not in calls
    assert "1 GPU(s)" in d.note and "NCCL needs a GPU for each process" in d.note


def test_two_processes_on_two_gpus_use_nccl_one_gpu_each(fake_cuda_rank_1):
    calls = fake_cuda_rank_1(2)
    d = ddp_train.setup_distributed()
    assert (d.backend, d.device, d.note) == ("nccl", torch.device("cuda", 1), "")
    assert calls["set_device"] == torch.device("cuda", 1)
    assert calls["init"] == ("nccl", {"device_id": torch.device("cuda", 1)})


def test_cuda_asked_for_with_too_few_gpus_stops_with_a_message(fake_cuda_rank_1, monkeypatch, capsys, one_thread):
    fake_cuda_rank_1(1)
    monkeypatch.setenv("LOCAL_RANK", "0")                  # the process that prints
    assert ddp_train.main(["--device", "cuda", "--threads", "1"]) == 2
    assert "needs a GPU for each of the 2 processes" in capsys.readouterr().err
