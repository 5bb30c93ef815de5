"""EfficientNet-B0 for lesson 06: the new head, the offline fallback (fast, never hanging), freezing, the registry."""
import time
import urllib.error

import pytest
import torch
from torch import nn

from helpers import efficientnet, finder, models

@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A torch.hub folder without the weights file, so nothing comes from a cache."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


def test_head_is_dropout_then_linear_with_seven_outputs():
    model = efficientnet.efficientnet_b0_classifier(7)
    head = model.classifier
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear], head
    assert head[1].in_features == 1280 and head[1].out_features == 7
    model.eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 3, 48, 48))
    assert logits.shape == (2, 7)


def test_replace_head_rejects_models_without_a_linear_classifier():
    with pytest.raises(TypeError, match="classifier"):
        efficientnet.replace_head(nn.Sequential(nn.Linear(3, 3)), 7)
    model = efficientnet.efficientnet_b0_classifier(7)
    with pytest.raises(ValueError, match="num_classes=1"):
        efficientnet.replace_head(model, 1)


def test_offline_fallback_is_random_init_and_fast(empty_hub):
    start = time.perf_counter()                       # conftest sets COURSE_OFFLINE=1
    state, why = efficientnet.fetch_imagenet_weights()
    model = efficientnet.efficientnet_b0_classifier(7, imagenet_state=state)
    assert state is None and "COURSE_OFFLINE" in why
    assert model.classifier[1].out_features == 7
    assert time.perf_counter() - start < 10


def test_unreachable_host_gives_random_init_without_trying_a_download(empty_hub, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setattr(finder, "is_online", lambda host, **kw: False)

    def no_download(*args, **kwargs):
        raise AssertionError("no download may be tried when the host is unreachable")
    monkeypatch.setattr(type(efficientnet.WEIGHTS), "get_state_dict", no_download)
    state, why = efficientnet.fetch_imagenet_weights()
    assert state is None and efficientnet.WEIGHTS_HOST in why


def test_a_failing_download_is_caught(empty_hub, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setattr(finder, "is_online", lambda host, **kw: True)

    def broken(*args, **kwargs):
        raise urllib.error.URLError("connection reset")
    monkeypatch.setattr(type(efficientnet.WEIGHTS), "get_state_dict", broken)
    state, why = efficientnet.fetch_imagenet_weights()
    assert state is None and "URLError" in why


def test_weights_already_in_the_hub_cache_load_offline(empty_hub):
    original = efficientnet.efficientnet_b0_classifier(1000)
    path = efficientnet.cached_weights_file()
    path.parent.mkdir(parents=True)
    torch.save(original.state_dict(), path)
    state, why = efficientnet.fetch_imagenet_weights()
    assert state is not None and why == ""
    model = efficientnet.efficientnet_b0_classifier(7, imagenet_state=state)
    assert torch.equal(model.features[0][0].weight, original.features[0][0].weight)


def test_freeze_features_stops_gradients_in_the_first_blocks():
    model = efficientnet.efficientnet_b0_classifier(7)
    total = sum(p.numel() for p in model.parameters())
    assert efficientnet.freeze_features(model, 0) == total
    trainable = efficientnet.freeze_features(model, 3)
    assert trainable == total - sum(p.numel() for p in model.features[:3].parameters())
    assert not any(p.requires_grad for p in model.features[2].parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    with pytest.raises(ValueError, match="9 feature blocks"):
        efficientnet.freeze_features(model, 10)


def test_the_registry_builds_the_same_architecture_a_checkpoint_was_saved_from():
    torch.manual_seed(0)
    trained = efficientnet.efficientnet_b0_classifier(7)
    rebuilt = models.build_model("efficientnet_b0", 7)
    rebuilt.load_state_dict(trained.state_dict(), strict=True)
    assert [type(m) for m in rebuilt.classifier] == [nn.Dropout, nn.Linear]
