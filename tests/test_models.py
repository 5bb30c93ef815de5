"""helpers.models: the registry of every network, the small CNNs' shapes, parameter counts and errors."""
import pytest
import torch
from torch import nn

from helpers import env, models

DEVICE = env.get_device("cpu")


INPUTS = {"source_cnn": (1, 28), "fashion_cnn": (1, 28), "emotionnet": (1, 64), "efficientnet_b0": (3, 48)}


def test_the_registry_knows_every_network_the_course_trains():
    assert sorted(models.MODELS) == sorted(INPUTS)


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("num_classes", [2, 10])
def test_logits_have_one_column_per_class(name, num_classes):
    model = models.build_model(name, num_classes).to(DEVICE).eval()
    channels, size = INPUTS[name]
    logits = model(torch.rand(5, channels, size, size, device=DEVICE))
    assert logits.shape == (5, num_classes) and logits.dtype == torch.float32
    assert not torch.allclose(logits.sum(1), torch.ones(5)), "models return logits, not probabilities"


def test_source_cnn_has_the_sources_parameter_count():
    # conv 1->32 5x5, conv 32->64 5x5, linear 64*4*4->512, linear 512->10, all with biases
    expected = (32 * 25 + 32) + (64 * 32 * 25 + 64) + (1024 * 512 + 512) + (512 * 10 + 10)
    assert models.count_parameters(models.SourceCNN()) == expected == 582_026


def test_source_cnn_sizes_its_linear_layer_from_the_input():
    model = models.SourceCNN(num_classes=3, in_channels=3, image_size=32).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_fashion_cnn_is_small_and_takes_any_input_size():
    assert models.count_parameters(models.FashionCNN()) == 283_386   # the figure lesson 03 and results.json quote
    for pool in ("max", "avg"):
        model = models.FashionCNN(pool=pool).eval()
        assert models.count_parameters(model) < models.count_parameters(models.SourceCNN()) / 2
        for size in (8, 28, 29, 32, 48):
            assert model(torch.rand(2, 1, size, size)).shape == (2, 10)


def test_fashion_cnn_says_when_images_are_too_small():
    assert models.FashionCNN().min_size == 8
    with pytest.raises(ValueError, match=r"images of 7 x 28 px are too small .* at least 8 x 8"):
        models.FashionCNN().eval()(torch.rand(1, 1, 7, 28))
    deeper = models.FashionCNN(widths=(8, 8, 8, 8, 8))           # one more stage, one more pool
    assert deeper.min_size == 16
    with pytest.raises(ValueError, match="at least 16 x 16"):
        deeper.eval()(torch.rand(1, 1, 15, 15))


def test_fashion_cnn_widths_and_depth_set_its_blocks():
    small = models.FashionCNN(widths=(8, 16, 32), depth=1).eval()
    assert [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)] == [8, 16, 32]
    assert small(torch.rand(1, 1, 28, 28)).shape == (1, 10)
    default = models.FashionCNN()
    assert [m.out_channels for m in default.modules() if isinstance(m, nn.Conv2d)] == [16, 32, 64, 64, 128, 128]
    assert sum(isinstance(m, nn.MaxPool2d) for m in default.modules()) == 3, "two in the stem, one between stages"
    assert isinstance(default.features[-1], nn.AdaptiveMaxPool2d)
    assert isinstance(models.FashionCNN(pool="avg").features[-1], nn.AdaptiveAvgPool2d)
    for bad, match in (({"widths": (8, 16)}, r"widths=\(8, 16\): give the two stem widths and at least one stage's"),
                       ({"depth": 0}, "depth=0: each stage needs"), ({"pool": "mean"}, "pool='mean': choose")):
        with pytest.raises(ValueError, match=match):
            models.FashionCNN(**bad)


def test_fashion_cnn_brings_28_pixels_to_7_before_its_wide_layers():
    model = models.FashionCNN().eval()
    first, second = model.features[:2]               # the stem: two conv + max-pool blocks
    assert first(torch.rand(1, 1, 28, 28)).shape == (1, 16, 14, 14)
    assert second(torch.rand(1, 16, 14, 14)).shape == (1, 32, 7, 7)


def test_conv_pool_bn_pools_before_its_batchnorm():
    block = models.conv_pool_bn(3, 8)
    assert [type(m) for m in block] == [nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d, nn.ReLU]
    assert block(torch.rand(2, 3, 10, 10)).shape == (2, 8, 5, 5)


def test_conv_pool_bn_matches_pooling_last_once_trained():
    torch.manual_seed(0)
    conv, pool, bn, relu = models.conv_pool_bn(3, 8).eval()
    bn.weight.data.uniform_(0.5, 2.0)                              # positive scales, as the docstring assumes
    bn.bias.data.normal_()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    images = torch.rand(2, 3, 10, 10)
    with torch.no_grad():
        assert torch.allclose(relu(bn(pool(conv(images)))), pool(relu(bn(conv(images)))), atol=1e-6)


def test_fashion_cnn_gives_the_same_logits_in_channels_last():
    torch.manual_seed(0)
    model = models.FashionCNN().eval()
    images = torch.rand(4, 1, 28, 28)
    expected = model(images)
    model = model.to(memory_format=torch.channels_last)
    assert torch.allclose(model(images.contiguous(memory_format=torch.channels_last)), expected, atol=1e-5)


def test_fashion_cnn_learns_a_batch():
    torch.manual_seed(0)
    model = models.FashionCNN()
    images, labels = torch.rand(32, 1, 28, 28), torch.arange(32) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(images), labels)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2, f"loss went from {first:.3f} to {loss.item():.3f}"


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown model name 'resnet'.*fashion_cnn.*source_cnn"):
        models.build_model("resnet", 10)


def test_too_few_classes_is_rejected():
    with pytest.raises(ValueError, match="num_classes=1"):
        models.build_model("fashion_cnn", 1)


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("channels, size", [(1, 48), (3, 64)])
def test_each_entry_says_what_input_it_takes(name, channels, size):
    args = models.model_args(name, 3, channels, size)
    model = models.build_model(name, **args).eval()
    fed = models.MODELS[name].input_channels(channels)
    assert fed == (models.MODELS[name].channels or channels)
    assert model(torch.rand(2, fed, size, size)).shape == (2, 3)


def test_efficientnet_does_not_import_the_registry():
    import ast
    import inspect

    from helpers import efficientnet
    tree = ast.parse(inspect.getsource(efficientnet))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert "models" not in imported, "models imports efficientnet for its registry: the reverse would be a circle"
