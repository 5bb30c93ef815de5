"""helpers.recipes: lesson 04's FER recipe as a function, and the split later lessons rebuild."""
import math
import warnings

import torch

from helpers import data, emotionnet, finder, recipes, results


def test_the_fer_split_is_the_one_lesson_04_recorded():
    recorded = results.committed_results().get("04_emotionnet_train_amp")
    assert recorded is not None, "figures/results.json has no lesson 04 entry"
    assert recorded["split_seed"] == recipes.FER_SPLIT_SEED and recorded["val_fraction"] == recipes.FER_VAL_FRACTION, \
        "lesson 06 rebuilds lesson 04's split from these constants: keep them equal to what lesson 04 ran with"
    assert recorded["train_faces"] + recorded["val_faces"] == 28_709


def test_train_on_faces_trains_an_emotionnet_with_lesson_04s_loop(tmp_path):
    faces = data.preload_faces(finder.SAMPLES_DIR / "fer2013" / "train", max_per_class=8)
    train_idx, val_idx = data.split_indices(faces.targets, torch.Generator().manual_seed(0), (0.75, 0.25))
    torch.manual_seed(0)
    model = emotionnet.EmotionNet(1, 7, area=1)
    before = [p.detach().clone() for p in model.parameters()]
    recipe = recipes.FaceRecipe(batch_size=16)
    history = recipes.train_on_faces(model, faces.subset(train_idx), faces.subset(val_idx), "cpu", 2,
                                     data.FER_MEAN, data.FER_STD, recipe, checkpoint_dir=tmp_path, progress=False)
    assert len(history.val_acc) == 2 and all(math.isfinite(v) for v in history.train_loss + history.val_loss)
    assert history.lr[0] < recipe.max_lr, "one-cycle starts below its peak"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "the weights must change"
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()


def test_fer_rgb_statistics_repeat_the_gray_ones():
    assert data.FER_MEAN_RGB == data.FER_MEAN * 3 and data.FER_STD_RGB == data.FER_STD * 3


def test_train_fashion_learns_and_repeats_itself_with_the_same_seed():
    from dataclasses import replace

    from helpers import fashion_csv

    found = finder.find_fashion_mnist_csv(smoke=True)
    full = fashion_csv.load_fashion_csv(found.train, max_rows=1200)
    train_set, val_set = full.subset(range(1000)), full.subset(range(1000, 1200))
    recipe = replace(recipes.FASHION_COURSE, epochs=2, batch_size=64, bf16=False)
    seen = []
    first = recipes.train_fashion(recipe, train_set, val_set, val_set, seed=3, log=None,
                                  on_epoch=lambda epoch, figures: seen.append((epoch, figures["val_acc"])))
    again = recipes.train_fashion(recipe, train_set, val_set, val_set, seed=3, log=None)
    assert [epoch for epoch, _ in seen] == [1, 2] and seen[-1][1] == first["history"]["val_acc"][-1]
    assert first["val_acc"] > 0.4, f"two epochs on 1,000 images should beat chance (10%) clearly: {first['val_acc']}"
    assert first["history"] == again["history"], "the same seed must give the same run"
    assert torch.equal(next(first["model"].parameters()), next(again["model"].parameters()))
    wide = recipes.train_fashion(replace(recipe, epochs=1), train_set, val_set, val_set, seed=3, log=None,
                                 model_args={"widths": (8, 16, 32)})
    assert wide["parameters"] < first["parameters"]


def test_mixed_precision_is_the_one_measured_and_kept_only_where_it_pays():
    from dataclasses import replace

    course = recipes.FASHION_COURSE
    assert recipes.with_measured_precision(course, recipes.BF16_MIN_SPEEDUP + 0.1).bf16
    assert not recipes.with_measured_precision(course, recipes.BF16_MIN_SPEEDUP).bf16, "a gain within noise is no gain"
    assert not recipes.with_measured_precision(course, 0.0).bf16, "0.0: autocast cannot run here"
    assert not recipes.with_measured_precision(replace(course, bf16=False), 3.0).bf16, "a float32 recipe stays float32"
    # what train_fashion trains with is what autocast_speedup measures: train.Amp(device, True) on each device
    assert recipes.amp(course, "cpu").dtype == torch.bfloat16 and not recipes.amp(course, "cpu").scaler.is_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # without a GPU, torch warns that it turns the GradScaler off
        on_cuda = recipes.amp(course, "cuda:0")
    assert on_cuda.dtype == torch.float16 and on_cuda.device_type == "cuda"
    assert not recipes.amp(replace(course, bf16=False), "cuda").enabled
    with recipes.autocast(course, "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_precision_speedup_times_the_recipes_model_on_the_given_device(monkeypatch):
    from helpers import fashion_csv, train

    found = finder.find_fashion_mnist_csv(smoke=True)
    train_set = fashion_csv.load_fashion_csv(found.train, max_rows=64)
    seen = {}

    def fake_speedup(model, images, labels, steps=5):
        seen.update(device=train.model_device(model).type, shape=tuple(images.shape), dtype=images.dtype,
                    channels_last=images.is_contiguous(memory_format=torch.channels_last))
        return 1.5

    monkeypatch.setattr(train, "autocast_speedup", fake_speedup)
    assert recipes.precision_speedup(recipes.FASHION_COURSE, train_set, "cpu", batch_size=32) == 1.5
    assert seen == {"device": "cpu", "shape": (32, 1, 28, 28), "dtype": torch.float32, "channels_last": True}
