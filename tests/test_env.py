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


def test_get_device_falls_back_to_cpu_and_honours_prefer():
    assert env.get_device("cpu") == torch.device("cpu")
    assert env.get_device().type in {"cuda", "mps", "cpu"}


def test_smoke_figures_never_land_in_the_project(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    assert env.figures_dir().is_relative_to(tmp_path)
    monkeypatch.setenv("COURSE_SMOKE", "0")
    assert env.figures_dir() == env.project_dir() / "figures"
