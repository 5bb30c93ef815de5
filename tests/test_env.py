"""The run settings in helpers.env: the only place that reads environment variables."""
import torch

from helpers import env


def test_smoke_mode_reads_course_smoke(monkeypatch):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert env.smoke_mode()
    monkeypatch.setenv("COURSE_SMOKE", "0")
    assert not env.smoke_mode()


def test_seed_everything_makes_torch_repeatable():
    generator = env.seed_everything(7)
    first = torch.rand(3), torch.randperm(10, generator=generator)
    generator = env.seed_everything(7)
    assert torch.equal(first[0], torch.rand(3)) and torch.equal(first[1], torch.randperm(10, generator=generator))


def test_get_device_prefers_cuda_then_mps_then_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert env.get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert env.get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert env.get_device() == torch.device("cuda")
    assert env.get_device("cpu") == torch.device("cpu"), "an explicit choice wins"


def test_data_root_reads_course_data_and_treats_blank_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", "  ")
    assert env.data_root() is None
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert env.data_root() == tmp_path


def test_smoke_figures_never_land_in_the_project(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    assert env.figures_dir().is_relative_to(tmp_path)
    monkeypatch.setenv("COURSE_SMOKE", "0")
    assert env.figures_dir() == env.project_dir() / "figures"


def test_hardware_summary_says_whether_the_cpu_has_bf16_units():
    summary = env.hardware_summary(torch.device("cpu"))
    assert summary.startswith("CPU: ") and "torch threads" in summary
    units = env.cpu_bf16_units()
    assert units in (None, "none", "AVX512-BF16", "AMX")
    assert (f"bf16 units: {units}" in summary) == (units is not None)
