"""Lesson 08: export to ONNX, parity with PyTorch, prediction without torch, and the errors bad input gets.

The model is lesson 03's FashionCNN (random weights, seeded), exported once per test session; the
images are the real Fashion-MNIST sample shipped with the course.
"""
import ast
import inspect
import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from helpers import checkpoint, data, env, fashion_csv, finder, models, onnx_export, onnx_predict, predict, transforms

META = checkpoint.ModelMeta("fashion_cnn", {"num_classes": 10}, data.FASHION_CLASSES, 28,
                            data.FASHION_MEAN, data.FASHION_STD)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = models.build_model("fashion_cnn", num_classes=10)
    with torch.no_grad():   # BatchNorm statistics that are not the identity, so that the export must carry them
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory):
    return onnx_export.export_onnx(model, META, tmp_path_factory.mktemp("onnx") / "fashion_cnn.onnx")


@pytest.fixture(scope="module")
def session(onnx_path):
    return onnx_predict.make_session(onnx_path, threads=1)


@pytest.fixture(scope="module")
def test_images():
    images, labels = fashion_csv.read_fashion_csv(finder.find_fashion_mnist_csv(smoke=True).test)
    return images, labels


@pytest.fixture
def image_file(tmp_path, test_images):
    path = tmp_path / "garment.png"
    F.to_pil_image(test_images[0][3]).save(path)
    return path


def test_export_writes_a_valid_graph_with_a_free_batch_and_the_preprocessing(onnx_path):
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto, full_check=True)
    (images,), (logits,) = proto.graph.input, proto.graph.output
    dims = [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim]
    assert (images.name, logits.name) == ("images", "logits")
    assert isinstance(dims[0], str) and dims[1:] == [1, 28, 28], f"input dims {dims}"
    stored = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert stored["class_names"] == list(data.FASHION_CLASSES) and stored["input_size"] == 28
    assert stored["mean"] == list(data.FASHION_MEAN) and stored["image_mode"] == "L"
    assert not list(onnx_path.parent.glob("*.tmp")) and not list(onnx_path.parent.glob("*.data")), "one file, no leftovers"


def test_onnx_runtime_matches_pytorch_on_real_images(model, session, test_images):
    images = transforms.to_float(test_images[0], data.FASHION_MEAN, data.FASHION_STD)
    reference = onnx_export.torch_logits(model, images, batch_size=128)
    exported = onnx_export.onnx_logits(session, images, batch_size=128)
    parity = onnx_export.compare_logits(reference, exported)
    assert parity["images"] == len(images) == 500
    assert parity["max_abs_diff"] <= 1e-4, parity
    assert parity["same_class"] == 1.0 or parity["smallest_gap_changed"] <= 2 * parity["max_abs_diff"], parity
    assert np.abs(reference).max() > 0.1, "the logits are not trivially zero"


def test_any_batch_size_runs(session, test_images):
    images = transforms.to_float(test_images[0][:7], data.FASHION_MEAN, data.FASHION_STD).numpy()
    assert onnx_predict.predict_batch(session, images).shape == (7, 10)
    assert onnx_predict.predict_batch(session, images[:1]).shape == (1, 10)


def test_compare_logits_counts_changed_classes_and_their_gap():
    reference = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 1.05], [3.0, 0.0, 0.0]], np.float32)
    other = reference.copy()
    other[1, 1] += 0.1                       # second image: 1.1 now beats 1.05
    result = onnx_export.compare_logits(reference, other)
    assert result["changed"] == 1 and result["same_class"] == pytest.approx(2 / 3)
    assert result["max_abs_diff"] == pytest.approx(0.1) and result["smallest_gap_changed"] == pytest.approx(0.05)
    assert onnx_export.compare_logits(reference, reference)["smallest_gap_changed"] is None


def test_latencies_are_one_per_call():
    calls = []
    times = onnx_export.latencies_ms(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and times.shape == (5,) and (times >= 0).all()


def test_preparing_a_file_without_torch_equals_the_torch_pipeline_up_to_rounding(session, image_file):
    prep = onnx_predict.read_preprocessing(session)
    assert prep.class_names == data.FASHION_CLASSES and prep.input_size == 28 and prep.image_mode == "L"
    ours = onnx_predict.prepare_image(image_file, prep)
    assert ours.dtype == np.float32 and ours.shape == (1, 1, 28, 28)
    np.testing.assert_allclose(ours, predict.preprocess(image_file, META).numpy(), rtol=0, atol=1e-6)  # float rounding


def test_preparing_a_photo_of_another_size_and_mode_agrees_within_one_grey_level(session, tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (45, 61, 4), dtype=np.uint8)
    rgba[:10, :, 3] = 0                                      # a transparent band: laid on the background
    path = tmp_path / "photo.png"
    Image.fromarray(rgba, "RGBA").save(path)
    ours = onnx_predict.prepare_image(path, onnx_predict.read_preprocessing(session))
    theirs = predict.preprocess(path, META).numpy()
    assert ours.shape == theirs.shape == (1, 1, 28, 28)
    assert np.abs(ours - theirs).max() <= 1.01 / 255 / data.FASHION_STD[0], "more than one grey level apart"


def test_predict_image_agrees_with_the_pytorch_prediction(model, session, image_file):
    ranked = onnx_predict.predict_image(session, image_file, top_k=3)
    expected = predict.predict_file(model, META, image_file, top_k=3)
    assert [name for name, _ in ranked] == [name for name, _ in expected]
    assert np.allclose([p for _, p in ranked], [p for _, p in expected], atol=1e-5)


BLOCK_TORCH = """
import runpy, sys
sys.modules["torch"] = None          # any `import torch` now raises ImportError
try:
    import torch
except ImportError:
    print("torch is blocked")
sys.argv = ["course-onnx-predict"] + sys.argv[1:]
runpy.run_module("helpers.onnx_predict", run_name="__main__")
"""


def test_command_line_predicts_in_a_process_where_torch_cannot_be_imported(model, onnx_path, image_file):
    completed = subprocess.run([sys.executable, "-c", BLOCK_TORCH, str(onnx_path), str(image_file), "--top-k", "2"],
                               capture_output=True, text=True, cwd=env.project_dir(), timeout=120)
    assert completed.returncode == 0, completed.stderr
    blocked, line = completed.stdout.strip().splitlines()
    assert blocked == "torch is blocked"
    top_name = predict.predict_file(model, META, image_file, top_k=1)[0][0]
    assert line.startswith(f"garment.png: {top_name} ") and line.count("%") == 2


def test_command_line_reports_bad_files_and_a_model_that_is_not_onnx(onnx_path, image_file, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert onnx_predict.main([str(onnx_path), str(broken), str(tmp_path / "nope.png"), str(image_file)]) == 1
    out = capsys.readouterr()
    assert "broken.png is not a readable image" in out.err and "nope.png: no such image file" in out.err
    assert out.out.startswith("garment.png: "), "the good file after the bad ones is still classified"
    assert onnx_predict.main([str(image_file), str(image_file)]) == 2
    assert "garment.png" in capsys.readouterr().err


def test_a_model_without_the_metadata_is_refused_with_the_keys_it_lacks(onnx_path, tmp_path):
    proto = onnx.load(onnx_path)
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, bare)
    with pytest.raises(onnx_predict.BadInputError, match=r"lacks \['class_names'.*export_onnx"):
        onnx_predict.read_preprocessing(onnx_predict.make_session(bare, threads=1))


@pytest.mark.parametrize("batch, message", [
    (np.zeros((2, 1, 32, 32), np.float32), r"32 pixels high where the model's input 'images' takes 28"),
    (np.zeros((2, 3, 28, 28), np.float32), r"3 channels where the model's input 'images' takes 1"),
    (np.zeros((2, 1, 28, 28), np.uint8), r"got a uint8 batch; .* takes a float32 batch of shape \(N, 1, 28, 28\)"),
    (np.zeros((1, 28, 28), np.float32), r"got 3 dimensions .*add the batch dimension"),
    ([[0.0]], r"got a list; .*NumPy array"),
])
def test_bad_batches_get_errors_that_name_what_the_model_takes(session, batch, message):
    with pytest.raises(onnx_predict.BadInputError, match=message):
        onnx_predict.predict_batch(session, batch)


def test_top_k_below_one_is_refused(session, image_file):
    with pytest.raises(ValueError, match="at least 1"):
        onnx_predict.predict_image(session, image_file, top_k=0)


TAUGHT = {onnx_export: ["preprocessing_metadata", "export_onnx", "torch_logits", "onnx_logits", "compare_logits",
                        "latencies_ms"],
          onnx_predict: ["make_session", "prepare_image", "predict_image", "check_batch"]}


def _notebook_functions(name: str) -> dict[str, str]:
    cells = json.loads((env.project_dir() / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    found = {}
    for source in ("".join(c["source"]) for c in cells if c["cell_type"] == "code"):
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found[node.name] = ast.get_source_segment(source, node)
    return found


@pytest.mark.parametrize("module, name", [(m, n) for m, names in TAUGHT.items() for n in names],
                         ids=lambda v: v if isinstance(v, str) else v.__name__.split(".")[-1])
def test_the_lessons_code_and_the_helpers_are_the_same(module, name):
    written = _notebook_functions("08_onnx_export_runtime")
    assert name in written, f"08_onnx_export_runtime.ipynb no longer defines {name}; update TAUGHT"
    same = ast.dump(ast.parse(textwrap.dedent(written[name]))) == ast.dump(ast.parse(inspect.getsource(getattr(module, name))))
    assert same, f"{name} in lesson 08 differs from {module.__name__}.{name}: change both the same way"
