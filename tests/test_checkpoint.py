"""helpers.checkpoint: atomic saves, safe loads with named errors, strict weight loading, RNG states."""
import os
import random
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from helpers import checkpoint, data, finder, models


class Gadget:
    """A class the weights_only unpickler does not know: stands for any code inside a pickle."""


class RunsAShellCommand:
    """Unpickling this calls os.system: what a hostile checkpoint would do."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


FASHION_META = checkpoint.ModelMeta("fashion_cnn", {"num_classes": 10}, data.FASHION_CLASSES, 28,
                                    data.FASHION_MEAN, data.FASHION_STD)


def linear(num_classes=7):
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, num_classes))


def test_save_then_load_round_trips_and_creates_the_folder(tmp_path):
    model = linear()
    path = checkpoint.save_checkpoint(tmp_path / "new" / "deeper" / "model.pt",
                                      {"model": model.state_dict(), "epoch": 3, "class_names": ["a", "b"]})
    state = checkpoint.load_checkpoint(path)
    assert state["epoch"] == 3 and state["class_names"] == ["a", "b"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state["model"].items())
    assert os.listdir(path.parent) == ["model.pt"], "no temporary files may be left behind"


def test_a_crash_while_saving_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = checkpoint.save_checkpoint(tmp_path / "last.pt", {"epoch": 1})
    before = path.read_bytes()
    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as half:
            half.truncate(os.path.getsize(f) // 2)  # half a file on disk, then the process "dies"
        raise KeyboardInterrupt("interrupted while saving")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, {"epoch": 2, "big": torch.zeros(10_000)})
    assert path.read_bytes() == before
    assert checkpoint.load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"], "the half-written temporary file must be removed"


def test_a_missing_file_and_a_folder_are_named(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match=r"nope\.pt: no such checkpoint file"):
        checkpoint.load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(checkpoint.CheckpointError, match="is a folder, not a checkpoint file"):
        checkpoint.load_checkpoint(tmp_path)


@pytest.mark.parametrize("content", [b"just some text\n", b"", None], ids=["text", "empty", "jpeg"])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "weights.pt"
    if content is None:
        shutil.copy(next((finder.SAMPLES_DIR / "fer2013" / "train" / "happy").glob("*.jpg")), path)
    else:
        path.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError, match=r"weights\.pt is not a PyTorch checkpoint"):
        checkpoint.load_checkpoint(path)


def test_a_truncated_checkpoint_is_named_as_damaged(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "best.pt", {"model": linear().state_dict()})
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(checkpoint.CheckpointError, match=r"best\.pt is a damaged checkpoint"):
        checkpoint.load_checkpoint(path)


def test_a_pickle_that_needs_code_is_refused_with_the_weights_only_explanation(tmp_path):
    path = tmp_path / "from_the_internet.pt"
    torch.save({"model": linear().state_dict(), "extra": Gadget()}, path)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load_checkpoint(path)
    message = str(err.value)
    assert "from_the_internet.pt" in message and "Gadget" in message
    assert "weights_only=True" in message and "trust" in message
    assert "add_safe_globals" in message and "safe_globals" in message


def test_a_pickle_that_calls_os_system_is_called_hostile_not_damaged(tmp_path, capfd):
    path = tmp_path / "free_model.pt"
    torch.save({"model": linear().state_dict(), "payload": RunsAShellCommand()}, path)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load_checkpoint(path)
    message = str(err.value)
    assert "free_model.pt asks to run" in message and "system" in message and "nothing ran" in message
    assert "damaged" not in message and "add_safe_globals" not in message, "never advise allowing os.system"
    assert "this must never run" not in capfd.readouterr().out


def test_a_legacy_format_pickle_that_calls_os_system_is_refused_too(tmp_path):
    path = tmp_path / "old_style.pt"
    torch.save({"payload": RunsAShellCommand()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(checkpoint.CheckpointError, match=r"old_style\.pt asks to run .*system"):
        checkpoint.load_checkpoint(path)


def test_load_model_names_model_args_the_model_does_not_take(tmp_path):
    meta = checkpoint.ModelMeta("fashion_cnn", {"num_classes": 10, "colour": "red"}, data.FASHION_CLASSES, 28,
                                data.FASHION_MEAN, data.FASHION_STD)
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", {"model": {}, "meta": meta.to_dict()})
    with pytest.raises(checkpoint.CheckpointError, match=r"model_args .* do not build a 'fashion_cnn'"):
        checkpoint.load_model(path)
    checkpoint.save_checkpoint(path, {"model": {}, "meta": {**meta.to_dict(), "model_args": [10]}})
    with pytest.raises(checkpoint.CheckpointError, match="its meta cannot describe a model"):
        checkpoint.load_model(path)


def test_a_whole_pickled_model_is_refused(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(linear(), path)  # the source's habit: torch.save(model)
    with pytest.raises(checkpoint.CheckpointError, match="torch.nn.modules.container.Sequential"):
        checkpoint.load_checkpoint(path)


def test_a_file_holding_no_dict_is_refused(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(checkpoint.CheckpointError, match="holds a Tensor, not a checkpoint dict"):
        checkpoint.load_checkpoint(tmp_path / "tensor.pt")


def test_load_weights_lists_missing_unexpected_and_shape_mismatches():
    saved = linear(num_classes=7).state_dict()
    saved["extra.weight"] = torch.zeros(1)
    del saved["0.bias"]
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load_weights(linear(num_classes=10), saved)
    message = str(err.value)
    assert "Missing keys: 0.bias" in message
    assert "Unexpected keys: extra.weight" in message
    assert "2.weight: checkpoint (7, 8) vs model (10, 8)" in message
    assert "num_classes" in message


def test_load_weights_is_exact_and_accepts_compile_wrapper_keys():
    source, target = linear(), linear()
    wrapped = {f"_orig_mod.{k}": v for k, v in source.state_dict().items()}
    checkpoint.load_weights(target, wrapped)
    x = torch.randn(4, 16)
    assert torch.equal(source(x), target(x))


def test_unwrap_model_returns_the_plain_module():
    model = linear()
    assert checkpoint.unwrap_model(nn.DataParallel(model)) is model
    assert checkpoint.unwrap_model(model) is model


def test_check_compatible_names_the_model_and_the_classes():
    meta = checkpoint.ModelMeta("emotionnet", {"num_classes": 2}, ("a", "b"), 64, (0.5,), (0.25,))
    checkpoint.check_compatible(meta, "emotionnet", ["a", "b"])
    with pytest.raises(checkpoint.CheckpointError, match="holds a 'emotionnet' model"):
        checkpoint.check_compatible(meta, "fashion_cnn", path="x.pt")
    with pytest.raises(checkpoint.CheckpointError, match=r"trained on classes \['a', 'b'\]"):
        checkpoint.check_compatible(meta, class_names=["a", "b", "c"])


def test_model_meta_round_trips_through_a_weights_only_file(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", {"meta": FASHION_META.to_dict()})
    assert checkpoint.ModelMeta.from_dict(checkpoint.load_checkpoint(path)["meta"]) == FASHION_META


@pytest.mark.parametrize("change, message", [
    ({"model_name": "resnet_999"}, "not in the registry"),
    ({"class_names": ("a", "b")}, "2 class names but model_args num_classes=10"),
    ({"mean": (0.5, 0.5)}, "one value per channel"),
    ({"image_mode": "CMYK"}, "use 'L'"),
    ({"background": 300}, "grey level 0-255"),
    ({"model_args": {}}, "includes num_classes"),
])
def test_model_meta_refuses_what_cannot_be_rebuilt(change, message):
    with pytest.raises(ValueError, match=message):
        checkpoint.ModelMeta(**{**FASHION_META.to_dict(), **change})


def test_meta_from_a_file_names_missing_fields_and_newer_versions():
    with pytest.raises(checkpoint.CheckpointError, match=r"x\.pt: its meta lacks \['input_size', 'mean', 'std'\]"):
        checkpoint.ModelMeta.from_dict({"model_name": "fashion_cnn", "model_args": {}, "class_names": []}, "x.pt")
    with pytest.raises(checkpoint.CheckpointError, match="newer course"):
        checkpoint.ModelMeta.from_dict({**FASHION_META.to_dict(), "version": 99})


def test_load_model_rebuilds_any_registered_model_and_checks_what_it_is(tmp_path):
    torch.manual_seed(0)
    model = models.build_model("fashion_cnn", 10).eval()
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", {"model": model.state_dict(), "meta": FASHION_META.to_dict()})
    loaded, meta = checkpoint.load_model(path, class_names=data.FASHION_CLASSES, model_name="fashion_cnn")
    x = torch.randn(2, 1, 28, 28)
    assert meta == FASHION_META and not loaded.training and torch.equal(loaded(x), model(x))
    with pytest.raises(checkpoint.CheckpointError, match="holds a 'fashion_cnn' model"):
        checkpoint.load_model(path, model_name="emotionnet")
    with pytest.raises(checkpoint.CheckpointError, match="trained on classes"):
        checkpoint.load_model(path, class_names=data.FER_CLASSES)


def test_load_model_names_weights_that_do_not_fit_their_meta(tmp_path):
    wrong = models.build_model("fashion_cnn", 10, widths=(8, 16, 32)).state_dict()
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", {"model": wrong, "meta": FASHION_META.to_dict()})
    with pytest.raises(checkpoint.CheckpointError, match=r"m\.pt: The checkpoint does not fit this FashionCNN"):
        checkpoint.load_model(path)
    checkpoint.save_checkpoint(path, {"model": wrong})
    with pytest.raises(checkpoint.CheckpointError, match="no 'model' weights with a 'meta' description"):
        checkpoint.load_model(path)


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    generator = torch.Generator().manual_seed(5)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    checkpoint.save_checkpoint(tmp_path / "rng.pt", {"rng": checkpoint.rng_state(generator)})
    expected = (random.random(), np.random.randn(), torch.rand(2), torch.rand(2, generator=generator))
    random.seed(9), np.random.seed(9), torch.manual_seed(9), generator.manual_seed(9)
    checkpoint.set_rng_state(checkpoint.load_checkpoint(tmp_path / "rng.pt")["rng"], generator)
    got = (random.random(), np.random.randn(), torch.rand(2), torch.rand(2, generator=generator))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2]) and torch.equal(got[3], expected[3])


class FakeMPS:
    """Stands for a Mac's MPS generator: a state that rng_state saves and set_rng_state puts back."""

    def __init__(self):
        self.state, self.restored = torch.tensor([1, 2, 3], dtype=torch.uint8), []

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        monkeypatch.setattr(torch.mps, "get_rng_state", lambda device="mps": self.state.clone())
        monkeypatch.setattr(torch.mps, "set_rng_state", lambda state, device="mps": self.restored.append(state))


def test_the_mps_rng_state_is_saved_and_restored_where_mps_exists(tmp_path, monkeypatch):
    mps = FakeMPS()
    mps.install(monkeypatch)
    checkpoint.save_checkpoint(tmp_path / "rng.pt", {"rng": checkpoint.rng_state()})
    saved = checkpoint.load_checkpoint(tmp_path / "rng.pt")["rng"]
    assert torch.equal(saved["mps"], mps.state), "a checkpoint written on a Mac must hold the MPS generator's state"
    checkpoint.set_rng_state(saved)
    assert len(mps.restored) == 1 and torch.equal(mps.restored[0], mps.state)


def test_a_checkpoint_without_an_mps_state_still_restores(tmp_path, monkeypatch):
    torch.manual_seed(3)
    old = checkpoint.rng_state()              # this machine has no MPS: no "mps" key, as in older checkpoints
    old.pop("mps", None)
    expected = torch.rand(2)
    mps = FakeMPS()
    mps.install(monkeypatch)                  # resumed on a Mac: the MPS generator is left as it is
    checkpoint.set_rng_state(old)
    assert torch.equal(torch.rand(2), expected) and mps.restored == []
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    checkpoint.set_rng_state({**old, "mps": mps.state})     # a Mac's checkpoint resumed elsewhere
    assert mps.restored == []


# ---------------------------------------------------------------- checksums

def flip_byte_in_tensor_data(path, nbytes):
    """Flip one byte in the middle of the zip entry that stores `nbytes` bytes of tensor data (archive/data/N).

    Returns the entry's name. The byte is found from the entry's local header, so it lies inside the
    tensor's stored values, not in any zip or pickle structure.
    """
    import zipfile
    with zipfile.ZipFile(path) as archive:
        entries = [info for info in archive.infolist()
                   if "/data/" in info.filename and info.file_size == nbytes]
    assert len(entries) == 1, f"expected one storage of {nbytes} bytes, found {[e.filename for e in entries]}"
    entry = entries[0]
    assert entry.compress_type == zipfile.ZIP_STORED, "torch.save writes its entries uncompressed"
    raw = bytearray(path.read_bytes())
    name_length, extra_length = (int.from_bytes(raw[entry.header_offset + i:entry.header_offset + i + 2], "little")
                                 for i in (26, 28))
    start = entry.header_offset + 30 + name_length + extra_length    # where the entry's data begins
    raw[start + nbytes // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    return entry.filename


def test_a_flipped_byte_in_a_weight_is_refused_naming_the_tensor(tmp_path):
    model = linear()       # weights of 512, 32, 224 and 28 bytes: each tensor's storage has its own size
    path = checkpoint.save_checkpoint(tmp_path / "best.pt", {"model": model.state_dict(), "epoch": 3})
    flip_byte_in_tensor_data(path, 16 * 8 * 4)                          # model.0.weight, 16 x 8 float32
    assert not torch.equal(torch.load(path, weights_only=True)["model"]["0.weight"], model.state_dict()["0.weight"]), \
        "the flip must change a weight (torch itself loads the file without complaint)"
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load_checkpoint(path)
    message = str(err.value)
    assert "best.pt is damaged" in message and "1 changed: model/0.weight" in message
    assert "0.bias" not in message and "2.weight" not in message, "only the changed tensor is named"
    assert "Download it again" in message and "train again" in message


def test_a_clean_file_verifies_and_loads_without_the_checksum_entry(tmp_path, recwarn):
    state = {"model": linear().state_dict(), "epoch": 3, "rng": checkpoint.rng_state()}
    path = checkpoint.save_checkpoint(tmp_path / "last.pt", state)
    assert "checksum" not in state, "the caller's dict is not changed"
    stored = torch.load(path, weights_only=True)["checksum"]
    assert stored["algorithm"] == "sha256" and sorted(stored["tensors"]) == sorted(
        ["model/0.weight", "model/0.bias", "model/2.weight", "model/2.bias", "rng/torch"])
    loaded = checkpoint.load_checkpoint(path)
    assert sorted(loaded) == ["epoch", "model", "rng"] and not recwarn.list
    assert checkpoint.verify_checksums(torch.load(path, weights_only=True), path) is True


def test_an_optimizer_state_and_half_weights_are_covered_too(tmp_path):
    model = linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 16)).sum().backward()
    optimizer.step()
    half = {k: v.half() for k, v in model.state_dict().items()}     # 256, 16, 112 and 14 bytes
    path = checkpoint.save_checkpoint(tmp_path / "last.pt", {"model": half, "optimizer": optimizer.state_dict()})
    flip_byte_in_tensor_data(path, 8 * 4)          # 0.bias's momentum: the only tensor of 8 float32 values
    with pytest.raises(checkpoint.CheckpointError, match=r"1 changed: optimizer/state/1/momentum_buffer"):
        checkpoint.load_checkpoint(path)


def test_a_file_without_a_checksum_loads_with_a_warning_that_names_it(tmp_path):
    """Plain torch.save files and those of older courses have no checksum: they load, said to be unchecked."""
    model = linear()
    path = tmp_path / "epoch_2.pt"
    torch.save({"model": model.state_dict(), "epoch": 2}, path)
    with pytest.warns(checkpoint.UnverifiedCheckpointWarning, match=r"epoch_2\.pt has no checksum.*save_checkpoint"):
        state = checkpoint.load_checkpoint(path)
    assert state["epoch"] == 2 and torch.equal(state["model"]["0.weight"], model.state_dict()["0.weight"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint.load_checkpoint(path, verify=False)


def test_ddp_checkpoints_carry_a_checksum_and_resume(tmp_path):
    """helpers.ddp_train writes epoch_N.pt with save_checkpoint and reads it back with load_checkpoint."""
    from types import SimpleNamespace
    from helpers import ddp_train
    torch.manual_seed(0)
    model = models.build_model(ddp_train.RECIPE.model, len(data.FASHION_CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    config = {"epochs": 2, "lr": 0.1, "seed": 0}
    path = tmp_path / "epoch_1.pt"
    ddp_train.save_state(path, SimpleNamespace(model=model, optimizer=optimizer, scheduler=scheduler), 1, config)
    assert "checksum" in torch.load(path, weights_only=True)
    fresh = models.build_model(ddp_train.RECIPE.model, len(data.FASHION_CLASSES))
    target = SimpleNamespace(model=fresh, optimizer=torch.optim.SGD(fresh.parameters(), lr=0.1))
    target.scheduler = torch.optim.lr_scheduler.StepLR(target.optimizer, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ddp_train.resume(str(path), target, config, torch.device("cpu")) == 1
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    flip_byte_in_tensor_data(path, 10 * 4)                                  # the last layer's bias
    with pytest.raises(checkpoint.CheckpointError, match=r"epoch_1\.pt is damaged.*1 changed: model/classifier\.1\.bias"):
        ddp_train.resume(str(path), target, config, torch.device("cpu"))
