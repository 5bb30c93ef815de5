"""helpers.plots: what the figures show, on real data where it matters."""
import matplotlib
import numpy as np
import torch

from helpers import plots, train

matplotlib.use("Agg")


def test_plot_grouped_bars_draws_one_bar_per_class_and_group():
    ax = plots.plot_grouped_bars({"a": [1, 2, 3], "b": [2, 2, 2]}, ["x", "y", "z"], "count", "t",
                                     ranges={"a": ([0, 1, 2], [2, 3, 4])})
    assert len(ax.patches) == 6 and ax.get_title() == "t"


def test_to_display_handles_uint8_float_and_normalised_images():
    gray = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert plots.to_display(gray).tolist() == [[0.0, 1.0]]
    normalised = (torch.tensor([[[0.0, 1.0]]]) - 0.5) / 0.25
    assert np.allclose(plots.to_display(normalised, (0.5,), (0.25,)), [[0.0, 1.0]])
    colour = torch.rand(3, 2, 5)
    assert plots.to_display(colour).shape == (2, 5, 3)
    assert plots.to_display(torch.tensor([[[2.0, -1.0]]])).tolist() == [[1.0, 0.0]], "clipped to 0-1"


def test_plot_history_labels_its_panels_and_draws_both_curves():
    history = train.History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.7], train_acc=[0.5, 0.8], val_acc=[0.4, 0.7])
    fig = plots.plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 2
    assert list(loss_ax.lines[1].get_ydata()) == [1.1, 0.7] and loss_ax.lines[1].get_linestyle() == "--"
    assert loss_ax.get_ylabel() and acc_ax.get_ylabel()


def test_draw_predictions_labels_each_box():
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    boxes = np.array([[5, 5, 20, 20], [40, 10, 20, 20]])
    probs = torch.tensor([[0.1, 0.9], [0.7, 0.3]])
    ax = plots.draw_predictions(image, boxes, probs, ["sad", "happy"])
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.texts] == ["happy 0.90", "sad 0.70"]


def test_confusion_matrix_rows_are_normalised():
    ax = plots.plot_confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    values = [t.get_text() for t in ax.texts]
    assert values == ["0.50", "0.50", "0.00", "1.00"]


def test_draw_predictions_alternates_labels_and_zooms_to_the_faces():
    image = np.zeros((400, 600, 3), dtype=np.uint8)
    boxes = np.array([[330, 100, 20, 20], [300, 100, 20, 20]])       # neighbours, given right to left
    probs = torch.tensor([[0.1, 0.9], [0.7, 0.3]])
    ax = plots.draw_predictions(image, boxes, probs, ["sad", "happy"], zoom=1.0)
    left, right = sorted(ax.texts, key=lambda t: t.get_position()[0])
    assert left.get_text() == "sad 0.70" and left.get_position()[1] < 100, "the leftmost label sits above its box"
    assert right.get_position()[1] > 120, "its neighbour's label sits below, so the two cannot overlap"
    assert ax.get_xlim() == (280, 370) and ax.get_ylim() == (140, 80), "the view is the boxes plus one box side"


def test_plot_curves_draws_one_line_per_run_from_epoch_one():
    ax = plots.plot_curves({"a": [0.5, 0.7, 0.8], "b": [0.4, 0.6]}, "validation accuracy", "runs")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    assert list(lines[0].get_xdata()) == [1, 2, 3] and list(lines[1].get_ydata()) == [0.4, 0.6]
    assert ax.get_ylabel() == "validation accuracy"
