"""Inference bundles and one-image prediction (lesson 05), on a real Fashion-MNIST sample image."""
import os

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from helpers import checkpoint, data, fashion_csv, finder, models, predict

META = {"model_name": "fashion_cnn", "model_args": {"num_classes": 10}, "class_names": list(data.FASHION_CLASSES),
        "input_size": 28, "mean": list(data.FASHION_MEAN), "std": list(data.FASHION_STD)}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return models.build_model("fashion_cnn", num_classes=10).eval()


@pytest.fixture
def image_file(tmp_path):
    images, labels = fashion_csv.read_fashion_csv(finder.find_fashion_mnist_csv(smoke=True).test, max_rows=1)
    path = tmp_path / "garment.png"
    F.to_pil_image(images[0]).save(path)
    return path


def test_bundle_round_trip_gives_identical_logits_on_cpu(tmp_path, model, image_file):
    path = predict.save_bundle(tmp_path / "bundle.pt", model, META)
    loaded, meta = predict.load_bundle(path, "cpu")
    x = predict.preprocess(image_file, meta)
    assert x.shape == (1, 1, 28, 28)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    assert meta == META and not loaded.training


def test_bundle_needs_complete_meta(model):
    with pytest.raises(ValueError, match="class_names"):
        predict.make_bundle(model, {k: v for k, v in META.items() if k != "class_names"})


def test_predict_file_returns_sorted_top_k_probabilities(model, image_file):
    ranked = predict.predict_file(model, META, image_file, top_k=3)
    assert len(ranked) == 3 and all(name in data.FASHION_CLASSES for name, _ in ranked)
    probs = [p for _, p in ranked]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_command_line_prints_predictions_and_reports_bad_files(tmp_path, model, image_file, capsys):
    bundle = predict.save_bundle(tmp_path / "bundle.pt", model, META)
    assert predict.main([str(bundle), str(image_file), "--top-k", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("garment.png: ") and line.count("%") == 2
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert predict.main([str(bundle), str(broken)]) == 1
    assert "broken.png" in capsys.readouterr().err
    assert predict.main([str(image_file), str(image_file)]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err


def test_whole_model_pickle_is_refused_not_executed(tmp_path, model):
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    with pytest.raises(checkpoint.CheckpointError, match="weights_only"):
        predict.load_bundle(path)


def test_interrupted_save_leaves_the_old_bundle_intact(tmp_path, model, monkeypatch):
    path = predict.save_bundle(tmp_path / "bundle.pt", model, META)
    good = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as out:
                out.write(b"PK\x03\x04 half a file")
        else:
            f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        predict.save_bundle(path, model, META)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.pt"], "the temporary file was not cleaned up"


def test_a_bundle_for_another_class_count_names_the_mismatch(tmp_path, model):
    path = predict.save_bundle(tmp_path / "bundle.pt", model, META)
    state = checkpoint.load_checkpoint(path)
    with pytest.raises(checkpoint.CheckpointError, match=r"checkpoint \(10, 128\) vs model \(7, 128\)"):
        checkpoint.load_weights(models.build_model("fashion_cnn", num_classes=7), state["model"])


def test_an_emotionnet_bundle_predicts_a_real_face(tmp_path):
    torch.manual_seed(0)
    model = models.build_model("EmotionNet", num_classes=7).eval()
    meta = {"model_name": "EmotionNet", "model_args": {"num_classes": 7}, "class_names": list(data.FER_CLASSES),
            "input_size": 64, "mean": list(data.FER_MEAN), "std": list(data.FER_STD)}
    path = predict.save_bundle(tmp_path / "emotionnet.pt", model, meta)
    face = next((finder.SAMPLES_DIR / "fer2013" / "test" / "happy").glob("*.jpg"))
    loaded, meta = predict.load_bundle(path)
    ranked = predict.predict_file(loaded, meta, face, top_k=7)
    assert sorted(name for name, _ in ranked) == sorted(data.FER_CLASSES)
    assert sum(p for _, p in ranked) == pytest.approx(1.0, abs=1e-4)
