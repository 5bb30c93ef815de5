"""helpers.metrics: the metrics that show what accuracy hides, statistics over seeds, and images per second."""
import time

import pytest
import torch

from helpers import metrics


def test_metrics_show_what_accuracy_hides():
    labels = [0] * 90 + [1] * 10
    always_zero = [0] * 100
    scores = metrics.classification_metrics(labels, always_zero, ["common", "rare"])
    assert scores["acc"] == pytest.approx(0.9)
    assert scores["recall_rare"] == 0 and scores["recall_common"] == 1
    assert scores["macro_f1"] == pytest.approx((2 * 0.9 / 1.9) / 2)
    assert scores["weighted_f1"] == pytest.approx(0.9 * 2 * 0.9 / 1.9)


def test_summarise_runs_gives_mean_and_spread_per_arm():
    runs = [{"arm": "a", "seed": 0, "acc": 0.5}, {"arm": "a", "seed": 1, "acc": 0.7},
            {"arm": "b", "seed": 0, "acc": 0.6}]
    summary = metrics.summarise_runs(runs)
    assert summary.loc["a", ("acc", "mean")] == pytest.approx(0.6)
    assert summary.loc["a", ("acc", "max")] - summary.loc["a", ("acc", "min")] == pytest.approx(0.2)
    assert summary.loc["a", ("runs", "")] == 2 and list(summary.index) == ["a", "b"]


def test_balanced_accuracy_and_precision_per_class():
    labels = [0, 0, 0, 1]
    scores = metrics.classification_metrics(labels, [1, 1, 0, 1], ["common", "rare"])
    assert scores["balanced_acc"] == pytest.approx((1 / 3 + 1) / 2)
    assert scores["precision_rare"] == pytest.approx(1 / 3) and scores["precision_common"] == 1
    never = metrics.classification_metrics(labels, [0, 0, 0, 0], ["common", "rare"])
    assert never["precision_rare"] == 0, "a class never predicted has precision 0, not NaN"


def test_paired_interval_is_the_t_interval_of_the_differences():
    from scipy import stats
    diffs = [0.02, 0.03, 0.01, 0.04]
    mean, low, high = metrics.paired_interval(diffs)
    expected = stats.t.interval(0.95, 3, loc=0.025, scale=stats.sem(diffs))
    assert mean == pytest.approx(0.025) and (low, high) == pytest.approx(expected)
    assert metrics.paired_interval([0.1, -0.1, 0.1, -0.1])[1] < 0 < metrics.paired_interval([0.1, -0.1, 0.1, -0.1])[2]
    with pytest.raises(ValueError, match="at least 2 seeds"):
        metrics.paired_interval([0.1])


def test_compare_arms_pairs_by_seed_and_calls_real_only_intervals_that_exclude_zero():
    # the sampler is better than plain in every seed by about 0.05; the loss arm wins some seeds and loses others
    plain = [0.30, 0.40, 0.35, 0.45]
    runs = ([{"arm": "plain", "seed": s, "f1": v} for s, v in enumerate(plain)]
            + [{"arm": "sampler", "seed": s, "f1": v + 0.05 + 0.005 * s} for s, v in enumerate(plain)]
            + [{"arm": "loss", "seed": s, "f1": v + (0.02 if s % 2 else -0.02)} for s, v in enumerate(plain)])
    table = metrics.compare_arms(runs, "f1", baseline="plain")
    assert table.loc["sampler", "diff"] == pytest.approx(0.0575)
    assert table.loc["sampler", "low"] > 0 and bool(table.loc["sampler", "real"])
    assert not table.loc["loss", "real"] and table.loc["loss", "low"] < 0 < table.loc["loss", "high"]
    assert table.loc["sampler", "std"] > 0, "seed-to-seed spread is large here, yet pairing shows the gain"
    with pytest.raises(KeyError, match="'none'"):
        metrics.compare_arms(runs, "f1", baseline="none")
    with pytest.raises(ValueError, match="same seeds"):
        metrics.compare_arms(runs + [{"arm": "late", "seed": 9, "f1": 0.5}], "f1", baseline="plain")


def test_images_per_second_warms_up_then_times_at_least_the_asked_steps():
    calls = []

    def step():
        calls.append(time.perf_counter())
        time.sleep(0.01)
        return 32

    rate = metrics.images_per_second(step, "cpu", warmup=2, min_steps=3)
    assert len(calls) == 5, "2 warm-up calls, then 3 timed ones"
    assert 32 / 0.03 < rate < 32 / 0.01, f"{rate:.0f} images/s for 10 ms steps of 32 images"


def test_images_per_second_runs_for_at_least_min_seconds():
    calls = []
    metrics.images_per_second(lambda: calls.append(time.sleep(0.01)) or 1, min_steps=1, min_seconds=0.1, warmup=0)
    assert len(calls) >= 9
    with pytest.raises(ValueError, match="min_steps=0"):
        metrics.images_per_second(lambda: 1, min_steps=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_images_per_second_waits_for_the_gpu():
    a = torch.randn(4096, 4096, device="cuda")
    slow = metrics.images_per_second(lambda: (a @ a, 1)[1], "cuda", min_steps=5)
    assert slow < 1e4, "without synchronising, queued matrix products would look almost free"


def test_loader_images_per_second_counts_every_image_of_each_pass():
    batches = [(torch.zeros(5, 1, 2, 2, dtype=torch.uint8), torch.zeros(5)) for _ in range(4)]
    passes = []

    class Loader:
        def __iter__(self):
            passes.append(1)
            return iter(batches)

    rate = metrics.loader_images_per_second(Loader(), passes=3)
    assert len(passes) == 4 and rate > 0, "one warm-up pass, then three timed ones"
