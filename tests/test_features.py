"""helpers.features: features of frozen layers computed once, cached on disk under a key, and the
cut of a network into front, tail and head (lesson 06)."""
import pytest
import torch
from torch import nn

from helpers import checkpoint, efficientnet, emotionnet, features


def test_extract_runs_in_eval_mode_in_batches_and_restores_the_mode():
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 3)).train()
    images = torch.randint(0, 255, (10, 1, 2, 2), dtype=torch.uint8)
    out = features.extract(net, images, lambda x: x.float() / 255, batch_size=3)
    assert out.shape == (10, 3) and out.dtype == torch.float32
    assert torch.allclose(out, features.extract(net, images, lambda x: x.float() / 255, batch_size=4), atol=1e-6), \
        "eval mode: no dropout, the same features whatever the batch size (up to float rounding)"
    assert torch.equal(out, features.extract(net, images, lambda x: x.float() / 255, batch_size=3)), "repeatable"
    assert net.training, "extract must leave the module in the mode it found it"
    with pytest.raises(ValueError, match="no images"):
        features.extract(net, images[:0], lambda x: x.float())


def test_cached_computes_once_then_loads_while_the_key_is_the_same(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"train": torch.arange(6.0).view(2, 3)}

    path, key = tmp_path / "cache.pt", {"weights_sha256": "abc", "faces": 2}
    first = features.cached(path, key, compute)
    second = features.cached(path, dict(key), compute)
    assert len(calls) == 1 and torch.equal(first["train"], second["train"])
    features.cached(path, {**key, "weights_sha256": "other"}, compute)
    assert len(calls) == 2, "a different key (other weights) must compute again, never reuse a stale file"
    assert features.cached(path, {**key, "weights_sha256": "other"}, lambda: 1 / 0)["train"].shape == (2, 3)


def test_cached_recomputes_a_damaged_file_and_refuses_a_bad_compute(tmp_path):
    path = tmp_path / "cache.pt"
    path.write_bytes(b"PK\x03\x04 half a file")
    out = features.cached(path, {"k": 1}, lambda: {"x": torch.ones(2)})
    assert torch.equal(out["x"], torch.ones(2))
    assert torch.equal(features.cached(path, {"k": 1}, lambda: 1 / 0)["x"], torch.ones(2)), "rewritten whole"
    with pytest.raises(TypeError, match="dict of tensors"):
        features.cached(tmp_path / "other.pt", {"k": 1}, lambda: [torch.ones(2)])
    assert not (tmp_path / "other.pt").exists()


def test_cached_recomputes_a_file_without_checksums_silently(tmp_path, recwarn):
    path = tmp_path / "cache.pt"
    torch.save({"format": features.CACHE_FORMAT, "key": {"k": 1}, "tensors": {"x": torch.zeros(2)}}, path)
    out = features.cached(path, {"k": 1}, lambda: {"x": torch.ones(2)})
    assert torch.equal(out["x"], torch.ones(2)), "an unverifiable cache must be computed again, not trusted"
    assert not [w for w in recwarn if issubclass(w.category, checkpoint.UnverifiedCheckpointWarning)]
    assert torch.equal(features.cached(path, {"k": 1}, lambda: 1 / 0)["x"], torch.ones(2)), "and saved with checksums"


@pytest.mark.parametrize("build", [lambda: emotionnet.EmotionNet(1, 7, area=1),
                                   lambda: efficientnet.efficientnet_b0_classifier(7)], ids=["emotionnet", "efficientnet"])
def test_split_layers_gives_the_networks_logits_and_shares_its_weights(build):
    torch.manual_seed(0)
    net = build().eval()
    x = torch.randn(2, 1 if isinstance(net, emotionnet.EmotionNet) else 3, 48, 48)
    front, tail, head = features.split_layers(net)
    with torch.no_grad():
        pooled = tail(front(x))
        assert pooled.shape == (2, 1280)
        assert torch.allclose(head(pooled), net(x), atol=1e-5)
        head[-1].bias += 1.0
        assert torch.allclose(head(pooled), net(x), atol=1e-5), "the parts are views of the network, not copies"
