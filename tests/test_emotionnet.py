"""helpers.emotionnet: logits in every mode, input sizes, size/FLOPs, and rebuilding from a checkpoint."""
import hashlib

import pytest
import torch

from helpers import checkpoint, data, emotionnet, env, models, results


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return emotionnet.EmotionNet()


def test_forward_returns_logits_in_train_and_eval_mode(model):
    images = torch.randn(4, 1, 64, 64)
    model.train()
    assert model(images).shape == (4, 7)
    model.eval()
    logits = model(images)
    probs, raw_logits = model.classify(model.backbone(images))  # what ultralytics' Classify gives in eval mode
    assert isinstance(logits, torch.Tensor) and torch.equal(logits, raw_logits)
    assert torch.allclose(logits.softmax(1), probs)
    assert not torch.allclose(logits, probs), "the loss must see logits, not probabilities"


def test_48px_with_area_4_is_refused_with_advice_and_area_1_works():
    with pytest.raises(ValueError, match=r"48x48.*3x3.*area=1"):
        emotionnet.EmotionNet(area=4)(torch.zeros(1, 1, 48, 48))
    assert emotionnet.EmotionNet(area=1)(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


def test_size_and_cost_are_as_documented(model):
    assert 1.70e6 < models.count_parameters(model) < 1.85e6
    assert 0.035e9 < emotionnet.flops_per_image(model, 64) < 0.045e9
    assert emotionnet.flops_per_image(model, 224) > 10 * emotionnet.flops_per_image(model, 64)


def test_importing_ultralytics_keeps_bad_image_errors_named(tmp_path):
    """ultralytics patches PIL's Image.open; emotionnet keeps a corrupt file from becoming ModuleNotFoundError."""
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"GIF89a but not really")
    with pytest.raises(data.BadImageError, match=r"broken\.jpg"):
        data.load_image(bad)


def test_a_checkpoint_rebuilds_the_same_network_through_the_registry(model, tmp_path):
    meta = checkpoint.ModelMeta("emotionnet", {"num_classes": 7, "area": 4}, data.FER_CLASSES, 64,
                                data.FER_MEAN, data.FER_STD)
    path = checkpoint.save_checkpoint(tmp_path / "best.pt", {"model": model.state_dict(), "meta": meta.to_dict()})
    loaded, loaded_meta = checkpoint.load_model(path, model_name=emotionnet.MODEL_NAME, class_names=data.FER_CLASSES)
    images = torch.randn(3, 1, 64, 64)
    model.eval()
    assert isinstance(loaded, emotionnet.EmotionNet) and torch.equal(loaded(images), model(images))
    assert loaded_meta == meta


def test_weights_for_another_num_classes_are_refused_with_shapes(tmp_path):
    three = emotionnet.EmotionNet(num_classes=3)
    meta = checkpoint.ModelMeta("emotionnet", {"num_classes": 7}, data.FER_CLASSES, 64, data.FER_MEAN, data.FER_STD)
    path = checkpoint.save_checkpoint(tmp_path / "three.pt", {"model": three.state_dict(), "meta": meta.to_dict()})
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"classify\.linear\.weight: checkpoint \(3, 1280\) vs model \(7, 1280\)"):
        checkpoint.load_model(path)


def test_the_shipped_bundle_matches_its_recorded_checksum_and_loads():
    """Lesson 04's full run ships its model for lessons 05, 06 and 08; results.json records its checksum."""
    entry = results.read_results(env.project_dir() / "figures" / results.RESULTS_FILE)["04_emotionnet_train_amp"]
    path = emotionnet.bundle_path()
    assert entry["bundle"] == emotionnet.BUNDLE and path.is_file(), f"{emotionnet.BUNDLE} is missing"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["bundle_sha256"], "the bundle is not the recorded one"
    model, meta = checkpoint.load_model(path)
    assert meta.class_names == data.FER_CLASSES and meta.input_size == entry["input_size"]
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 1, meta.input_size, meta.input_size)).shape == (2, 7)
