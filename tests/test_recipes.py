"""helpers.recipes (settings as data) and training a recipe with train.fit_recipe: the course's and
lesson 04's recipes learn and repeat themselves, mixed precision is the measured one, and the FER
split is the one later lessons rebuild."""
import math
import warnings

import pytest
import torch

from helpers import data, emotionnet, env, finder, recipes, results, train, transforms


def test_the_fer_split_is_the_one_lesson_04_recorded():
    recorded = results.committed_results().get("04_emotionnet_train_amp")
    assert recorded is not None, "figures/results.json has no lesson 04 entry"
    assert recorded["split_seed"] == recipes.FER_SPLIT_SEED and recorded["val_fraction"] == recipes.FER_VAL_FRACTION, \
        "lesson 06 rebuilds lesson 04's split from these constants: keep them equal to what lesson 04 ran with"
    assert recorded["train_faces"] + recorded["val_faces"] == 28_709


def test_the_fer_recipe_trains_an_emotionnet_with_fit(tmp_path):
    from dataclasses import replace

    faces = data.preload_faces(finder.SAMPLES_DIR / "fer2013" / "train", max_per_class=8)
    train_idx, val_idx = data.split_indices(faces.targets, torch.Generator().manual_seed(0), (0.75, 0.25))
    torch.manual_seed(0)
    model = emotionnet.EmotionNet(1, 7, area=1)
    before = [p.detach().clone() for p in model.parameters()]
    recipe = replace(recipes.FER_COURSE, epochs=2, batch_size=16)
    history = train.fit_recipe(model, recipe, faces.subset(train_idx), faces.subset(val_idx), "cpu",
                               data.FER_MEAN, data.FER_STD, checkpoint_dir=tmp_path, progress=False)
    assert len(history.val_acc) == 2 and all(math.isfinite(v) for v in history.train_loss + history.val_loss)
    assert history.lr[0] < recipe.lr, "one-cycle starts below its peak"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "the weights must change"
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()


def test_recipes_are_data_and_import_no_trainer():
    import subprocess
    import sys

    code = "import sys, helpers.recipes; print(sorted(m for m in sys.modules if m.startswith('helpers')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['helpers', 'helpers.recipes']", loaded
    with pytest.raises(ValueError, match="schedule='cosinus'"):
        recipes.Recipe("x", "fashion_cnn", 1, 8, 1e-3, schedule="cosinus")


def test_fer_rgb_statistics_repeat_the_gray_ones():
    assert data.FER_MEAN_RGB == data.FER_MEAN * 3 and data.FER_STD_RGB == data.FER_STD * 3


def fashion_run(recipe, train_set, val_set, **options):
    """Train `recipe` with seed 3 through fit_recipe, as the benchmark does; return the model and its History."""
    from helpers import models

    generator = env.seed_everything(3)
    model = models.build_model(recipe.model, len(data.FASHION_CLASSES), widths=(8, 16, 32, 64))
    history = train.fit_recipe(model, recipe, train_set, val_set, "cpu", data.FASHION_MEAN, data.FASHION_STD,
                               generator=generator, progress=False, **options)
    return model, history


def test_fit_with_amp_and_test_time_flips_learns_and_repeats_itself_with_the_same_seed(capsys):
    from dataclasses import replace

    from helpers import fashion_csv

    found = finder.find_fashion_mnist_csv(smoke=True)
    full = fashion_csv.load_fashion_csv(found.train, max_rows=800)
    train_set, val_set = full.subset(range(640)), full.subset(range(640, 800))
    recipe = replace(recipes.FASHION_COURSE, epochs=2, batch_size=64)      # bf16 autocast on the CPU, flips
    seen = []
    first, history = fashion_run(recipe, train_set, val_set,
                                 on_epoch_end=lambda epoch, h: seen.append((epoch, h.val_acc[-1])))
    again, history_again = fashion_run(recipe, train_set, val_set)
    assert [epoch for epoch, _ in seen] == [1, 2] and seen[-1][1] == history.val_acc[-1]
    assert history.val_acc[-1] > 0.4, f"two epochs on 640 images should beat chance (10%) clearly: {history.val_acc}"
    assert history.train_loss == history_again.train_loss and history.val_acc == history_again.val_acc, \
        "the same seed must give the same run"
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    amp = train.Amp("cpu", recipe.amp)
    assert repr(amp) == "Amp(cpu autocast bfloat16)"
    loader = train.recipe_loader(val_set, recipe, "cpu", data.FASHION_MEAN, data.FASHION_STD)
    plain, flipped = (train.evaluate(first, loader, "cpu", amp, tta=tta) for tta in (False, True))
    assert plain.acc == history.val_acc[-1], "fit validates as evaluate scores"
    assert flipped.acc > 0.4 and not torch.equal(plain.logits, flipped.logits)
    assert torch.allclose(flipped.logits.exp().sum(1), torch.ones(len(val_set)), atol=0.02), \
        "with flips the scores are mean log-probabilities"


def test_the_recipe_transform_augments_only_training_batches():
    from dataclasses import replace

    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    recipe = replace(recipes.FASHION_COURSE, flip=True)
    plain = train.RecipeTransform(recipe, data.FASHION_MEAN, data.FASHION_STD)(images)
    assert plain.is_contiguous(memory_format=torch.channels_last) and plain.dtype == torch.float32
    assert torch.allclose(plain, transforms.to_float(images, data.FASHION_MEAN, data.FASHION_STD))
    augmented = train.RecipeTransform(recipe, data.FASHION_MEAN, data.FASHION_STD, augment=True,
                                      generator=torch.Generator().manual_seed(0))(images)
    mirrored = [torch.equal(a, p.flip(2)) and not torch.equal(a, p) for a, p in zip(augmented, plain)]
    assert 10 < sum(mirrored) < 54 and all(m or torch.equal(a, p) for m, a, p in zip(mirrored, augmented, plain))
    source = train.RecipeTransform(recipes.FASHION_SOURCE, data.FASHION_MEAN, data.FASHION_STD)(images)
    assert torch.equal(source, images.float() / 255), "the source's recipe feeds pixels in 0-1"
    faces = train.RecipeTransform(recipes.FER_COURSE, data.FER_MEAN, data.FER_STD, augment=True)(images)
    assert faces.shape == (64, 1, 48, 48)


def test_mixed_precision_is_the_one_measured_and_kept_only_where_it_pays():
    from dataclasses import replace

    course = recipes.FASHION_COURSE
    assert recipes.with_measured_precision(course, recipes.AMP_MIN_SPEEDUP + 0.1).amp
    assert not recipes.with_measured_precision(course, recipes.AMP_MIN_SPEEDUP).amp, "a gain within noise is no gain"
    assert not recipes.with_measured_precision(course, 0.0).amp, "0.0: autocast cannot run here"
    assert not recipes.with_measured_precision(replace(course, amp=False), 3.0).amp, "a float32 recipe stays float32"
    # what fit_recipe trains with is what autocast_speedup measures: train.Amp(device, True) on each device
    assert train.Amp("cpu", course.amp).dtype == torch.bfloat16 and not train.Amp("cpu", course.amp).scaler.is_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # without a GPU, torch warns that it turns the GradScaler off
        on_cuda = train.Amp("cuda:0", course.amp)
    assert on_cuda.dtype == torch.float16 and on_cuda.device_type == "cuda"
    assert not train.Amp("cuda", replace(course, amp=False).amp).enabled


def test_precision_speedup_times_the_recipes_model_on_the_given_device(monkeypatch):
    from helpers import fashion_csv

    found = finder.find_fashion_mnist_csv(smoke=True)
    train_set = fashion_csv.load_fashion_csv(found.train, max_rows=64)
    seen = {}

    def fake_speedup(model, images, labels, steps=5):
        seen.update(device=train.model_device(model).type, shape=tuple(images.shape), dtype=images.dtype,
                    channels_last=images.is_contiguous(memory_format=torch.channels_last))
        return 1.5

    monkeypatch.setattr(train, "autocast_speedup", fake_speedup)
    assert train.precision_speedup(recipes.FASHION_COURSE, train_set, data.FASHION_MEAN, data.FASHION_STD, "cpu",
                                   batch_size=32) == 1.5
    assert seen == {"device": "cpu", "shape": (32, 1, 28, 28), "dtype": torch.float32, "channels_last": True}
