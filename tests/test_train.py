"""helpers.train: per-example means, logits not probabilities, early stopping, checkpoints and exact resume."""
import dataclasses
import re
import time
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import FER_SAMPLE
from helpers import checkpoint, data, env, metrics, train, transforms

FER_TRAIN = FER_SAMPLE / "train"
CPU = torch.device("cpu")
# fit stores the meta without rebuilding from it; the tests train the small TinyNet below under this description
META = checkpoint.ModelMeta("fashion_cnn", {"num_classes": 7}, data.FER_CLASSES, 32, data.FER_MEAN, data.FER_STD)


class TinyNet(nn.Module):
    """A small CNN with BatchNorm and Dropout (both matter for exact resume)."""

    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
        self.head = nn.Linear(16, num_classes)

    def forward(self, images):
        return self.head(self.features(images))


class Softmaxed(nn.Module):
    """The mistake: a model whose forward returns probabilities."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images).softmax(dim=1)


class TupleHead(nn.Module):
    """Like ultralytics' Classify in eval mode: returns (probabilities, logits)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        logits = self.model(images)
        return logits.softmax(dim=1), logits


@pytest.fixture(scope="module")
def faces():
    return data.preload_faces(FER_TRAIN, max_per_class=12)  # 84 real faces, 48x48


def make_run(faces, seed=0, batch_size=16, num_epochs=4, lr=3e-3):
    """Build a seeded training run on the real faces: model, loaders, optimizer and OneCycle schedule."""
    generator = env.seed_everything(seed)
    train_idx, val_idx = data.split_indices(faces.targets, torch.Generator().manual_seed(0), (0.75, 0.25))
    augment = transforms.FaceBatchTransform(32, data.FER_MEAN, data.FER_STD, train=True)
    plain = transforms.FaceBatchTransform(32, data.FER_MEAN, data.FER_STD)
    train_loader = data.DeviceLoader(data.make_loader(faces.subset(train_idx), batch_size, shuffle=True,
                                                      generator=generator), CPU, augment)
    val_loader = data.DeviceLoader(data.make_loader(faces.subset(val_idx), batch_size), CPU, plain)
    model = TinyNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max(lr, 1e-8),
                                                    total_steps=num_epochs * len(train_loader))
    return model, train_loader, val_loader, optimizer, scheduler


def make_config(folder, num_epochs, **kwargs):
    options = dict(num_epochs=num_epochs, scheduler_step="batch", checkpoint_dir=folder, progress=False,
                   patience=10, meta=META)
    return train.FitConfig(**{**options, **kwargs})


def without_times(history):
    return {k: v for k, v in vars(history).items() if k != "epoch_time_s"}


def test_resume_after_two_epochs_is_bit_identical_to_four_uninterrupted(faces, tmp_path):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces)
    full = train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path / "full", 4), scheduler)
    full_weights = {k: v.clone() for k, v in model.state_dict().items()}

    model, train_loader, val_loader, optimizer, scheduler = make_run(faces)
    train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path / "cut", 2), scheduler)
    torch.rand(5), torch.randn(3)  # whatever runs between the two sessions must not matter

    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, seed=123)  # a new session
    resumed = train.fit(model, train_loader, val_loader, optimizer, CPU,
                        make_config(tmp_path / "cut", 4, resume_from=tmp_path / "cut" / "last.pt"), scheduler)

    assert without_times(resumed) == without_times(full)
    assert len(resumed.epoch_time_s) == 4
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, full_weights[name]), f"{name} differs after resuming"
    assert optimizer.param_groups[0]["lr"] == scheduler.get_last_lr()[0]
    check = train.resume_check(tmp_path / "full" / "last.pt", tmp_path / "cut" / "last.pt", CPU)
    assert check.bitwise and check.ok, str(check)


def test_resume_without_the_saved_rng_states_would_differ(faces, tmp_path):
    """The control for the test above: the same resume, but with fresh shuffling, drifts away."""
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces)
    full = train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path / "full", 3), scheduler)
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces)
    train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path / "cut", 2), scheduler)
    state = checkpoint.load_checkpoint(tmp_path / "cut" / "last.pt")
    state["rng"] = checkpoint.rng_state(torch.Generator().manual_seed(999))  # lose the RNG states
    checkpoint.save_checkpoint(tmp_path / "cut" / "last.pt", state)
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces)
    resumed = train.fit(model, train_loader, val_loader, optimizer, CPU,
                        make_config(tmp_path / "cut", 3, resume_from=tmp_path / "cut" / "last.pt"), scheduler)
    assert resumed.train_loss[:2] == full.train_loss[:2]
    assert resumed.train_loss[2] != full.train_loss[2]


def test_checkpoints_hold_everything_and_load_with_weights_only(faces, tmp_path):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=2)
    history = train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path, 2), scheduler)
    last = checkpoint.load_checkpoint(tmp_path / "last.pt")  # weights_only=True inside
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "best", "bad_epochs", "history", "rng", "meta"):
        assert key in last, f"last.pt lacks {key}"
    mps = {"mps"} if torch.backends.mps.is_available() else set()
    assert set(last["rng"]) == {"python", "numpy", "torch", "cuda", "generator"} | mps
    assert last["epoch"] == 2 and last["history"]["val_loss"] == history.val_loss
    assert last["meta"]["class_names"] == list(data.FER_CLASSES)
    best = checkpoint.load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == history.best_epoch
    assert best["best"] == min(history.val_loss)


def test_validation_loss_is_the_mean_over_examples_with_a_short_last_batch(faces):
    torch.manual_seed(0)
    model = TinyNet().eval()
    subset = faces.subset(range(10))
    plain = transforms.FaceBatchTransform(32, data.FER_MEAN, data.FER_STD)
    loader = data.DeviceLoader(data.make_loader(subset, batch_size=4), CPU, plain)  # batches of 4, 4, 2
    result = train.evaluate(model, loader, CPU)
    with torch.no_grad():
        logits = model(plain(subset.images))
    expected = F.cross_entropy(logits, subset.labels).item()  # mean over all 10 examples
    assert result.loss == pytest.approx(expected, rel=1e-5)
    assert result.acc == pytest.approx((logits.argmax(1) == subset.labels).float().mean().item())
    assert torch.equal(result.preds, logits.argmax(1)) and result.labels.tolist() == subset.labels.tolist()
    source_style = sum(F.cross_entropy(logits[i:i + 4], subset.labels[i:i + 4]).item() * len(subset.labels[i:i + 4])
                       for i in range(0, 10, 4)) / 10 / 3  # divided by the dataset size, then by the batches
    assert result.loss != pytest.approx(source_style), "the source's double division gives another number"


def test_a_model_returning_probabilities_or_a_tuple_is_refused(faces):
    subset = faces.subset(range(8))
    loader = data.DeviceLoader(data.make_loader(subset, batch_size=4), CPU,
                               transforms.FaceBatchTransform(32, data.FER_MEAN, data.FER_STD))
    with pytest.raises(ValueError, match="probabilities"):
        train.evaluate(Softmaxed(TinyNet()), loader, CPU)
    with pytest.raises(TypeError, match="Classify"):
        train.evaluate(TupleHead(TinyNet()), loader, CPU)
    model = Softmaxed(TinyNet())
    with pytest.raises(ValueError, match="logits"):
        train.train_one_epoch(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), CPU)


def test_early_stopping_stops_after_patience_epochs_without_improvement(faces, tmp_path, capsys):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, lr=0.0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.0  # with lr 0 and frozen BatchNorm statistics, nothing can improve
    config = make_config(tmp_path, 10, patience=2, scheduler_step="epoch")
    history = train.fit(model, train_loader, val_loader, optimizer, CPU, config)
    assert len(history.val_loss) == 3 and history.stopped_early and history.best_epoch == 1
    assert "early stop" in capsys.readouterr().out


def test_one_summary_line_per_epoch_in_the_fixed_format(faces, tmp_path, capsys):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=2)
    train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(None, 2), scheduler)
    lines = capsys.readouterr().out.strip().splitlines()
    pattern = (r"epoch \d+/2  train_loss \d\.\d{3}  val_loss \d\.\d{3}  val_acc \d\.\d{3}  "
               r"lr \d\.\d\de-\d\d  time \d+\.\ds")
    assert len(lines) == 2 and all(re.fullmatch(pattern, line) for line in lines), lines


def test_resume_warns_when_mixed_precision_changed(faces, tmp_path):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=3)
    train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path, 1), scheduler)
    resume = make_config(tmp_path, 2, resume_from=tmp_path / "last.pt", amp=True)
    with pytest.warns(UserWarning, match=r"last\.pt was trained with mixed precision off, this run has "
                                         r"Amp\(cpu autocast bfloat16\).*FitConfig\(amp=False\)"):
        history = train.fit(model, train_loader, val_loader, optimizer, CPU, resume, scheduler)
    assert len(history.val_loss) == 2, "a warning, not a stop: the run goes on"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # the same precision resumes silently
        train.fit(model, train_loader, val_loader, optimizer, CPU,
                  make_config(tmp_path, 3, resume_from=tmp_path / "last.pt", amp=True), scheduler)


def test_resume_refuses_a_checkpoint_of_another_model_or_class_list(faces, tmp_path):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=1)
    train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path, 1), scheduler)
    other = make_config(tmp_path, 2, resume_from=tmp_path / "last.pt")
    other.meta = dataclasses.replace(META, model_name="emotionnet")
    with pytest.raises(checkpoint.CheckpointError, match="'fashion_cnn' model"):
        train.fit(model, train_loader, val_loader, optimizer, CPU, other, scheduler)
    other.meta = dataclasses.replace(META, class_names=("a", "b", "c", "d", "e", "f", "g"))
    with pytest.raises(checkpoint.CheckpointError, match="trained on classes"):
        train.fit(model, train_loader, val_loader, optimizer, CPU, other, scheduler)


def test_amp_is_off_on_cpu_by_default_and_bf16_when_asked():
    amp = train.Amp(torch.device("cpu"))
    assert not amp.enabled and not amp.scaler.is_enabled() and "off" in repr(amp)
    with amp.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    amp = train.Amp(torch.device("cpu"), enabled=True)
    with amp.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert not amp.scaler.is_enabled(), "bf16 needs no GradScaler"
    assert train.Amp(torch.device("cuda:0"), enabled=False).device_type == "cuda"


def test_autocast_speedup_measures_on_a_copy_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = TinyNet(num_classes=10)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    speedup = train.autocast_speedup(model, torch.rand(16, 1, 28, 28), torch.arange(16) % 10, steps=2)
    assert isinstance(speedup, float) and speedup > 0, f"a CPU has bf16 autocast kernels; got {speedup}"
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before), "weights or BatchNorm statistics changed"
    assert all(p.grad is None for p in model.parameters()), "gradients were left on the model"


class NoBf16Kernels(TinyNet):
    """Stands for a model with an operation that has no bfloat16 kernel on this device."""

    def forward(self, images):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError('"slow_conv2d_cpu" not implemented for \'BFloat16\'')
        return super().forward(images)


def test_autocast_speedup_is_zero_where_a_kernel_is_missing_or_autocast_is_off(monkeypatch):
    assert train.autocast_speedup(NoBf16Kernels(), torch.rand(4, 1, 28, 28), torch.arange(4), steps=1) == 0.0
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda *args: False)   # as where torch turns autocast off
    assert train.autocast_speedup(TinyNet(), torch.rand(4, 1, 28, 28), torch.arange(4), steps=1) == 0.0


def test_training_images_per_s_times_a_copy_with_its_transform():
    torch.manual_seed(0)
    model = TinyNet()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    seen = []
    rate = train.training_images_per_s(model, torch.zeros(8, 1, 16, 16, dtype=torch.uint8), torch.arange(8) % 7,
                                       transform=lambda x: seen.append(len(x)) or x.float(), steps=2)
    assert seen == [8, 8, 8], "one warm-up step and two timed ones, each through the transform"
    assert 0 < rate < 1e7 and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_training_images_per_s_moves_the_batch_to_the_models_device_and_waits_for_it(monkeypatch):
    waited = []
    monkeypatch.setattr(metrics, "synchronize", lambda device: waited.append(torch.device(device).type))
    model = TinyNet().to("meta")       # stands for a GPU: a device other than the batch's, with no real arithmetic
    rate = train.training_images_per_s(model, torch.zeros(8, 1, 16, 16), torch.arange(8) % 7, steps=1)
    assert rate > 0 and waited and set(waited) == {"meta"}, f"the clock must wait for the model's device: {waited}"


def test_the_time_limit_stops_a_run_says_so_and_a_resume_finishes_it(faces, tmp_path, capsys):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=2)
    config = make_config(tmp_path, 2, max_minutes=1e-6)         # one epoch takes longer than this
    history = train.fit(model, train_loader, val_loader, optimizer, CPU, config, scheduler)
    assert len(history.val_loss) == 1 and history.out_of_time and not history.stopped_early
    assert "time limit: stopped after epoch 1 of 2" in capsys.readouterr().out
    assert checkpoint.load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=2)
    config = make_config(tmp_path, 2, max_minutes=60, resume_from=tmp_path / "last.pt")
    resumed = train.fit(model, train_loader, val_loader, optimizer, CPU, config, scheduler)
    assert len(resumed.val_loss) == 2 and not resumed.out_of_time, "a resumed run gets the time limit afresh"
    assert "time limit" not in capsys.readouterr().out


def test_resume_check_is_bitwise_on_a_cpu_and_within_a_tolerance_on_a_gpu():
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.rand(4, 1, 16, 16)).sum().backward()
    optimizer.step()

    def state(weights=None, lr=(1e-3, 2e-3), val_loss=(1.5, 1.25)):
        return {"model": weights or {k: v.clone() for k, v in model.state_dict().items()}, "epoch": 2,
                "optimizer": optimizer.state_dict(), "scheduler": {"last_epoch": 8, "_step_count": 9},
                "history": {"lr": list(lr), "val_loss": list(val_loss)}}

    def nudged(scale):
        return {k: v + scale * v.norm() / v.numel() ** 0.5 if v.is_floating_point() else v.clone()
                for k, v in model.state_dict().items()}

    close = state(nudged(1e-4), val_loss=(1.5 + 1e-4, 1.25))    # what a GPU's non-deterministic kernels give
    assert train.resume_check(state(), state(), "cpu").ok
    assert not train.resume_check(state(), close, "cpu").ok, "a CPU resumes bit for bit: any difference fails"
    check = train.resume_check(state(), close, "cuda")
    assert not check.bitwise and check.ok and 0 < check.weight_diff < train.RESUME_RTOL, str(check)
    assert not train.resume_check(state(), state(nudged(0.1)), "mps").ok, "weights 10% apart are not a resume"
    assert not train.resume_check(state(), state(lr=(1e-3, 1e-3)), "cuda").ok, "learning rates must match exactly"
    assert not train.resume_check(state(), {**state(), "epoch": 3}, "cuda").ok
    torch.use_deterministic_algorithms(True)
    try:
        assert train.resume_check(state(), close, "cuda").bitwise, "deterministic algorithms promise bit equality"
    finally:
        torch.use_deterministic_algorithms(False)


def test_time_limited_waits_for_the_device_before_reading_the_clock(monkeypatch):
    waited = []
    monkeypatch.setattr(metrics, "synchronize", lambda device: waited.append(device))
    batches = [(torch.zeros(4, 1), torch.zeros(4)) for _ in range(3)]
    assert len(list(train.TimeLimited(iter(batches), seconds=60, device="cuda"))) == 3
    assert waited == ["cuda"] * 4, "once before the start and once after each batch"
    waited.clear()
    list(train.TimeLimited(iter(batches), seconds=60))
    assert waited == [], "without a device there is nothing to wait for"


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="monitor='accuracy'"):
        train.fit(TinyNet(), [], [], None, CPU, train.FitConfig(monitor="accuracy"))
    with pytest.raises(ValueError, match="scheduler_step='step'"):
        train.fit(TinyNet(), [], [], None, CPU, train.FitConfig(scheduler_step="step"))


def test_checkpoints_hold_the_unwrapped_model(faces, tmp_path):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=1)
    wrapped = nn.DataParallel(model)  # like torch.compile's wrapper, it prefixes every key
    train.fit(wrapped, train_loader, val_loader, optimizer, CPU, make_config(tmp_path, 1), scheduler)
    saved = checkpoint.load_checkpoint(tmp_path / "last.pt")["model"]
    assert list(saved) == list(model.state_dict()), "keys must not carry a wrapper prefix"


# ---------------------------------------------------------------- monitoring, schedules, errors, budgets

def test_fit_monitoring_val_acc_keeps_the_most_accurate_epoch(faces, tmp_path):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=4, lr=1e-2)
    history = train.fit(model, train_loader, val_loader, optimizer, CPU,
                        make_config(tmp_path, 4, monitor="val_acc"), scheduler)
    best = max(range(4), key=lambda i: (history.val_acc[i], -i))     # the first epoch with the top accuracy
    assert history.best_epoch == best + 1
    assert checkpoint.load_checkpoint(tmp_path / "best.pt")["best"] == history.val_acc[best]


def test_reduce_lr_on_plateau_is_stepped_with_the_monitored_metric(faces, tmp_path):
    model, train_loader, val_loader, optimizer, _ = make_run(faces)
    for group in optimizer.param_groups:
        group["lr"] = 1e-3
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0,
                                                         threshold=0.5)    # only a halved val_loss counts
    history = train.fit(model, train_loader, val_loader, optimizer, CPU,
                        make_config(tmp_path, 4, scheduler_step="epoch"), plateau)
    assert history.lr == [1e-3, 1e-3, 5e-4, 2.5e-4], "after the first epoch, each epoch halves the rate"
    assert plateau.best == history.val_loss[0], "the scheduler saw the validation losses"


def test_a_non_finite_loss_stops_training_with_advice(faces):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=1)
    nan_loss = lambda logits, labels: F.cross_entropy(logits, labels) * float("nan")
    with pytest.raises(FloatingPointError, match=r"training loss is nan in epoch 1; lower the learning rate"):
        train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(None, 1, loss_fn=nan_loss), scheduler)


def test_resume_refuses_another_learning_rate_or_batch_size_naming_it(faces, tmp_path):
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=3)
    train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path, 1), scheduler)
    resume = make_config(tmp_path, 3, resume_from=tmp_path / "last.pt")
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=3, lr=1e-3)
    with pytest.raises(checkpoint.CheckpointError, match=r"learning rate \[0\.003\] in last\.pt, \[0\.001\] now"):
        train.fit(model, train_loader, val_loader, optimizer, CPU, resume, scheduler)
    model, train_loader, val_loader, optimizer, scheduler = make_run(faces, num_epochs=3, batch_size=8)
    with pytest.raises(checkpoint.CheckpointError, match=r"batch size 16 in last\.pt, 8 now.*start a fresh run"):
        train.fit(model, train_loader, val_loader, optimizer, CPU, resume, scheduler)


def test_resume_in_the_same_session_after_reduce_lr_on_plateau_is_not_refused(faces, tmp_path):
    model, train_loader, val_loader, optimizer, _ = make_run(faces)
    for group in optimizer.param_groups:
        group["lr"] = 1e-3
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0, threshold=0.5)
    train.fit(model, train_loader, val_loader, optimizer, CPU, make_config(tmp_path, 2, scheduler_step="epoch"), plateau)
    assert optimizer.param_groups[0]["lr"] < 1e-3, "the plateau scheduler lowered the rate"
    history = train.fit(model, train_loader, val_loader, optimizer, CPU,           # same objects, one more epoch
                        make_config(tmp_path, 3, scheduler_step="epoch", resume_from=tmp_path / "last.pt"), plateau)
    assert len(history.val_loss) == 3


def test_fit_takes_a_loader_without_a_length(faces, tmp_path):
    model, train_loader, val_loader, optimizer, _ = make_run(faces)

    class Streamed:                       # like a DataLoader over an IterableDataset: no len()
        def __iter__(self):
            return iter(train_loader)

        def __len__(self):
            raise TypeError("object of type 'Streamed' has no len()")

    history = train.fit(model, Streamed(), val_loader, optimizer, CPU, make_config(tmp_path, 1, scheduler_step="epoch"))
    assert len(history.train_loss) == 1
    assert checkpoint.load_checkpoint(tmp_path / "last.pt")["settings"]["batches_per_epoch"] is None


def test_time_limited_stops_after_its_budget_and_counts_images():
    batches = [(torch.zeros(4, 1), torch.zeros(4)) for _ in range(100)]

    def slow():
        for batch in batches:
            time.sleep(0.01)
            yield batch

    limited = train.TimeLimited(slow(), seconds=0.05)
    taken = list(limited)
    assert 3 <= len(taken) <= 10 and limited.images_seen == 4 * len(taken)
    assert len(list(train.TimeLimited(iter(batches), seconds=0))) == 1, "always at least one batch"


def test_time_limited_starts_another_pass_until_the_time_is_spent():
    class SlowLoader:                       # re-iterable, like a DataLoader: each pass gives 3 batches
        passes = 0

        def __iter__(self):
            SlowLoader.passes += 1
            for _ in range(3):
                time.sleep(0.01)
                yield torch.zeros(4, 1), torch.zeros(4)

    limited = train.TimeLimited(SlowLoader(), seconds=0.1)
    taken = list(limited)
    assert len(taken) > 3 and SlowLoader.passes >= 2, "a loader used up before the budget must be passed over again"
    assert limited.images_seen == 4 * len(taken)


# ---------------------------------------------------------------- only where a CUDA GPU exists

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_fp16_autocast_with_grad_scaler_trains_on_cuda(faces, tmp_path):
    amp = train.Amp(torch.device("cuda:0"))
    assert amp.enabled and amp.dtype == torch.float16 and amp.scaler.is_enabled()
    model = TinyNet().cuda()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, labels = torch.randn(16, 1, 32, 32, device="cuda"), torch.arange(16, device="cuda") % 7
    with amp.autocast():
        logits = model(images)
        assert logits.dtype == torch.float16
        loss = F.cross_entropy(logits, labels)
    before = [p.detach().clone() for p in model.parameters()]
    amp.backward_step(loss, optimizer)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "the scaled step updated nothing"
    assert all(torch.isfinite(p).all() for p in model.parameters()), "unscaling left non-finite weights"


@needs_cuda
def test_a_gpu_checkpoint_loads_onto_the_cpu_with_map_location(tmp_path):
    model = TinyNet().cuda()
    path = checkpoint.save_checkpoint(tmp_path / "gpu.pt", {"model": model.state_dict()})
    state = checkpoint.load_checkpoint(path, map_location="cpu")
    assert {t.device.type for t in state["model"].values()} == {"cpu"}
    cpu_model = checkpoint.load_weights(TinyNet(), state["model"]).eval()
    x = torch.randn(2, 1, 32, 32)
    # The weights are the same, the arithmetic is not: on Ampere and later GPUs torch runs float32
    # convolutions in TF32 by default (10 bits of mantissa, rounding of about 5e-4 per input), so the
    # GPU's logits differ from the CPU's in the third or fourth digit; a loading mistake differs far more.
    assert torch.allclose(cpu_model(x), model.eval()(x.cuda()).cpu(), rtol=1e-2, atol=1e-2)
