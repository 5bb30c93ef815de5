"""helpers.emotionnet: logits in every mode, input sizes, size/FLOPs, and rebuilding from checkpoints."""
import pytest
import torch

from helpers import checkpoint, data, emotionnet, train


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
    assert 1.70e6 < emotionnet.count_parameters(model) < 1.85e6
    assert 0.035e9 < emotionnet.flops_per_image(model, 64) < 0.045e9
    assert emotionnet.flops_per_image(model, 224) > 10 * emotionnet.flops_per_image(model, 64)


def checkpoint_of(model, path, class_names=data.FER_CLASSES, name="EmotionNet", args=None):
    state = {"format": train.CHECKPOINT_FORMAT, "model": model.state_dict(),
             "meta": {"model_name": name, "model_args": args or {"in_channels": 1, "num_classes": 7, "area": 4},
                      "class_names": list(class_names)}}
    return checkpoint.save_checkpoint(path, state)


def test_load_model_rebuilds_the_same_network(model, tmp_path):
    path = checkpoint_of(model, tmp_path / "best.pt")
    loaded, meta = emotionnet.load_model(path, class_names=data.FER_CLASSES)
    images = torch.randn(3, 1, 64, 64)
    model.eval()
    assert torch.equal(loaded(images), model(images)) and not loaded.training
    assert meta["class_names"] == list(data.FER_CLASSES)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    other = torch.nn.Linear(4, 7)
    path = checkpoint_of(other, tmp_path / "other.pt", name="TinyCNN", args={})
    with pytest.raises(checkpoint.CheckpointError, match=r"other\.pt holds a 'TinyCNN' model"):
        emotionnet.load_model(path)


def test_a_checkpoint_for_another_class_list_is_refused(model, tmp_path):
    path = checkpoint_of(model, tmp_path / "cats.pt", class_names=["cat", "dog", "a", "b", "c", "d", "e"])
    with pytest.raises(checkpoint.CheckpointError, match=r"cats\.pt was trained on classes \['cat'"):
        emotionnet.load_model(path, class_names=data.FER_CLASSES)


def test_weights_for_another_num_classes_are_refused_with_shapes(tmp_path):
    three = emotionnet.EmotionNet(num_classes=3)
    state = {"model": three.state_dict(), "meta": {"model_name": "EmotionNet", "model_args": {"num_classes": 7}}}
    path = checkpoint.save_checkpoint(tmp_path / "three.pt", state)
    with pytest.raises(checkpoint.CheckpointError, match=r"classify\.linear\.weight: checkpoint \(3, 1280\) vs model \(7, 1280\)"):
        emotionnet.load_model(path)


def test_build_model_names_an_unknown_model():
    with pytest.raises(ValueError, match="unknown model name 'ResNet'"):
        emotionnet.build_model("ResNet")


def test_importing_ultralytics_keeps_bad_image_errors_named(tmp_path):
    """ultralytics patches PIL's Image.open; emotionnet keeps a corrupt file from becoming ModuleNotFoundError."""
    import ultralytics.utils.patches  # noqa: F401  (already imported through helpers.emotionnet)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"GIF89a but not really")
    with pytest.raises(data.BadImageError, match=r"broken\.jpg"):
        data.load_image(bad)
