"""Inference bundles and one-image prediction (lesson 05), on a real Fashion-MNIST sample image."""
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from helpers import checkpoint, data, fashion_csv, finder, models, predict

META = checkpoint.ModelMeta("fashion_cnn", {"num_classes": 10}, data.FASHION_CLASSES, 28,
                            data.FASHION_MEAN, data.FASHION_STD)


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
    loaded, meta = checkpoint.load_model(path, "cpu")
    x = predict.preprocess(image_file, meta)
    assert x.shape == (1, 1, 28, 28)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    assert meta == META and not loaded.training


def test_bundle_needs_a_model_meta(model):
    with pytest.raises(TypeError, match=r"checkpoint\.ModelMeta"):
        predict.make_bundle(model, META.to_dict())


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


def test_command_line_names_a_folder_and_a_missing_file(tmp_path, model, image_file, capsys):
    bundle = predict.save_bundle(tmp_path / "bundle.pt", model, META)
    assert predict.main([str(bundle), str(tmp_path), str(tmp_path / "nope.png"), str(image_file)]) == 1
    err = capsys.readouterr()
    assert "is a folder, not an image file" in err.err and "nope.png: no such image file" in err.err
    assert err.out.startswith("garment.png: "), "the good file after the bad ones is still classified"


@pytest.mark.parametrize("top_k", ["0", "-2", "two"])
def test_command_line_refuses_a_top_k_below_one(tmp_path, model, image_file, top_k, capsys):
    bundle = predict.save_bundle(tmp_path / "bundle.pt", model, META)
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(bundle), str(image_file), "--top-k", top_k])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "usage: course-predict" in err and "--top-k" in err
    assert "Traceback" not in err


def test_transparent_pixels_become_the_background_the_model_was_trained_on(tmp_path, image_file):
    garment = np.asarray(Image.open(image_file).convert("L"))
    rgba = np.stack([garment] * 3 + [np.where(garment > 0, 255, 0)], axis=-1).astype(np.uint8)
    rgba[garment == 0, :3] = 255                   # the background: white, but fully transparent
    path = tmp_path / "cut_out.png"
    Image.fromarray(rgba, "RGBA").save(path)
    composited = predict.preprocess(path, META)                       # background 0: black, as Fashion-MNIST
    assert torch.allclose(composited, predict.preprocess(image_file, META), atol=1e-6)
    grey = predict.preprocess(path, checkpoint.ModelMeta(**{**META.to_dict(), "background": 128}))
    assert not torch.allclose(grey, composited)


def test_whole_model_pickle_is_refused_not_executed(tmp_path, model):
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    with pytest.raises(checkpoint.CheckpointError, match="weights_only"):
        checkpoint.load_model(path)


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


@pytest.mark.parametrize("name, model_args, size, mean, std", [
    ("emotionnet", {"num_classes": 7}, 64, data.FER_MEAN, data.FER_STD),                            # lesson 04
    ("efficientnet_b0", {"num_classes": 7}, 48, data.FER_MEAN_RGB, data.FER_STD_RGB),                # lesson 06
])
def test_a_face_model_bundle_predicts_a_real_face_from_the_command_line(tmp_path, capsys, name, model_args,
                                                                          size, mean, std):
    torch.manual_seed(0)
    model = models.build_model(name, **model_args).eval()
    meta = checkpoint.ModelMeta(name, model_args, data.FER_CLASSES, size, mean, std, background=128)
    path = predict.save_bundle(tmp_path / f"{name}.pt", model, meta)
    face = next((finder.SAMPLES_DIR / "fer2013" / "test" / "happy").glob("*.jpg"))
    loaded, loaded_meta = checkpoint.load_model(path)
    ranked = predict.predict_file(loaded, loaded_meta, face, top_k=7)
    assert sorted(name for name, _ in ranked) == sorted(data.FER_CLASSES)
    assert sum(p for _, p in ranked) == pytest.approx(1.0, abs=1e-4)
    assert predict.preprocess(face, loaded_meta).shape == (1, len(mean), size, size)
    assert predict.main([str(path), str(face), "--top-k", "1"]) == 0
    assert capsys.readouterr().out.startswith(face.name)


def test_half_bundle_is_half_the_size_and_predicts_alike(model, tmp_path):
    full = predict.save_bundle(tmp_path / "full.pt", model, META)
    half = predict.save_bundle(tmp_path / "half.pt", model, META, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, meta = checkpoint.load_model(half)
    assert meta == META and all(p.dtype == torch.float32 for p in loaded.parameters()), "weights come back as float32"
    images = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(images), model(images), atol=1e-2)


def test_a_logit_adjusted_lesson_06_bundle_works_with_course_predict(tmp_path, capsys):
    """Lesson 06 folds logit adjustment into the last bias and saves an ordinary bundle: course-predict reads it,
    and its answers are the adjusted logits' answers."""
    from helpers import features, imbalance
    torch.manual_seed(0)
    model = models.build_model("emotionnet", num_classes=7, area=1).eval()
    prior = imbalance.class_prior([0] * 40 + [1] * 2 + [3] * 50 + [4] * 20 + [2, 5, 6] * 10, 7)
    face = sorted((finder.SAMPLES_DIR / "fer2013" / "test" / "disgust").glob("*.jpg"))[0]
    meta = checkpoint.ModelMeta("emotionnet", {"num_classes": 7, "area": 1}, data.FER_CLASSES, 48,
                                data.FER_MEAN, data.FER_STD, background=129)
    x = predict.preprocess(face, meta)
    with torch.no_grad():
        expected = imbalance.logit_adjust(model(x), prior).softmax(1)[0]
        features.split_layers(model)[2][-1].bias -= prior.log()
    path = predict.save_bundle(tmp_path / "emotionnet_logit_adjusted.pt", model, meta, half=True)
    loaded, loaded_meta = checkpoint.load_model(path)
    ranked = predict.predict_file(loaded, loaded_meta, face, top_k=7)
    assert [data.FER_CLASSES.index(name) for name, _ in ranked][0] == int(expected.argmax())
    assert dict(ranked)[data.FER_CLASSES[int(expected.argmax())]] == pytest.approx(float(expected.max()), abs=2e-2)
    assert predict.main([str(path), str(face), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(face.name) and out.count("%") == 2


def test_a_bundle_with_a_flipped_byte_is_refused_by_load_model_and_the_command_line(tmp_path, model, image_file,
                                                                                      capsys):
    from test_checkpoint import flip_byte_in_tensor_data
    path = predict.save_bundle(tmp_path / "bundle.pt", model, META)
    flip_byte_in_tensor_data(path, 10 * 128 * 4)                       # classifier.1.weight, 10 x 128 float32
    with pytest.raises(checkpoint.CheckpointError, match=r"bundle\.pt is damaged.*1 changed: model/classifier\.1\.weight"):
        checkpoint.load_model(path)
    assert predict.main([str(path), str(image_file)]) == 2
    out = capsys.readouterr()
    assert "classifier.1.weight" in out.err and "Download it again" in out.err and out.out == ""


def test_the_shipped_emotionnet_bundle_verifies_against_its_checksum():
    from helpers import emotionnet
    path = emotionnet.bundle_path()
    assert set(torch.load(path, weights_only=True)["checksum"]["tensors"]) == {
        f"model/{key}" for key in torch.load(path, weights_only=True)["model"]}, "every weight has a checksum"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # an unverified file would warn
        model, meta = checkpoint.load_model(path)
    assert meta.model_name == "emotionnet" and meta.class_names == data.FER_CLASSES
