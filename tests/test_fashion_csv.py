"""helpers.fashion_csv: reading the Kaggle Fashion-MNIST CSV, its slow PIL path, and the errors bad files get."""
import gzip

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import fashion_csv, finder

SAMPLE_TRAIN = finder.SAMPLES_DIR / "fashion-mnist" / "fashion-mnist_train.csv.gz"
SAMPLE_TEST = finder.SAMPLES_DIR / "fashion-mnist" / "fashion-mnist_test.csv.gz"
IDX_TEST = finder.SAMPLES_DIR / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"


@pytest.fixture(scope="module")
def sample_frame():
    return pd.read_csv(SAMPLE_TEST, nrows=20)


def write_csv(frame, path):
    frame.to_csv(path, index=False)
    return path


def test_reads_the_sample_as_uint8_images_and_int64_labels():
    images, labels = fashion_csv.read_fashion_csv(SAMPLE_TRAIN)
    assert images.shape == (2000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (2000,) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() <= 9
    assert torch.equal(labels.bincount(), torch.full((10,), 200)), "the sample holds 200 rows per class"


def test_csv_images_match_the_idx_files_pixel_for_pixel():
    images, _ = fashion_csv.read_fashion_csv(SAMPLE_TEST)
    with gzip.open(IDX_TEST) as f:
        idx = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    assert torch.equal(images, torch.from_numpy(idx.copy()))


def test_pil_path_gives_the_same_pixels_as_the_tensor_path():
    fast, slow = fashion_csv.load_fashion_csv(SAMPLE_TEST, max_rows=50), fashion_csv.PILFashionCSV(SAMPLE_TEST, max_rows=50)
    for i in (0, 17, 49):
        (fast_image, fast_label), (slow_image, slow_label) = fast[i], slow[i]
        assert slow_image.shape == (1, 28, 28) and slow_image.dtype == torch.float32
        assert torch.allclose(fast_image.float() / 255, slow_image) and fast_label == slow_label


# ---------------------------------------------------------------- bad input

def test_missing_column_is_named(sample_frame, tmp_path):
    path = write_csv(sample_frame.drop(columns=["pixel300"]), tmp_path / "short.csv")
    with pytest.raises(fashion_csv.BadCSVError, match=r"short\.csv.*missing \['pixel300'\]"):
        fashion_csv.read_fashion_csv(path)


def test_extra_column_is_named(sample_frame, tmp_path):
    frame = pd.concat([sample_frame, pd.Series("kaggle", index=sample_frame.index, name="source")], axis=1)
    path = write_csv(frame, tmp_path / "extra.csv")
    with pytest.raises(fashion_csv.BadCSVError, match=r"extra\.csv.*unexpected \['source'\]"):
        fashion_csv.read_fashion_csv(path)


def test_missing_label_column_is_named(sample_frame, tmp_path):
    path = write_csv(sample_frame.drop(columns=["label"]), tmp_path / "nolabel.csv")
    with pytest.raises(fashion_csv.BadCSVError, match=r"missing \['label'\]"):
        fashion_csv.read_fashion_csv(path)


def test_non_numeric_value_names_row_and_column(sample_frame, tmp_path):
    frame = sample_frame.astype(object)
    frame.loc[5, "pixel42"] = "n/a"
    path = write_csv(frame, tmp_path / "text.csv")
    with pytest.raises(fashion_csv.BadCSVError, match=r"text\.csv: column 'pixel42', data row 5 .*'n/a'.*0-255"):
        fashion_csv.read_fashion_csv(path)


def test_empty_cell_names_row_and_column(sample_frame, tmp_path):
    frame = sample_frame.astype(object)
    frame.loc[3, "label"] = None
    path = write_csv(frame, tmp_path / "hole.csv")
    with pytest.raises(fashion_csv.BadCSVError, match=r"column 'label', data row 3 .* is empty.*0-9"):
        fashion_csv.read_fashion_csv(path)


def test_fractional_value_is_rejected(sample_frame, tmp_path):
    frame = sample_frame.astype(float)
    frame.loc[2, "pixel7"] = 12.5
    path = write_csv(frame, tmp_path / "frac.csv")
    with pytest.raises(fashion_csv.BadCSVError, match=r"column 'pixel7', data row 2 .*12\.5"):
        fashion_csv.read_fashion_csv(path)


@pytest.mark.parametrize("value", [256, -1])
def test_pixel_out_of_range_names_row_and_column(sample_frame, tmp_path, value):
    frame = sample_frame.copy()
    frame.loc[11, "pixel784"] = value
    path = write_csv(frame, tmp_path / "range.csv")
    with pytest.raises(fashion_csv.BadCSVError,
                       match=rf"range\.csv: column 'pixel784', data row 11 \(line 13 .*holds {value}; expected a pixel value 0-255"):
        fashion_csv.read_fashion_csv(path)


@pytest.mark.parametrize("value", [10, -1])
def test_label_out_of_range_names_the_row(sample_frame, tmp_path, value):
    frame = sample_frame.copy()
    frame.loc[4, "label"] = value
    path = write_csv(frame, tmp_path / "labels.csv")
    with pytest.raises(fashion_csv.BadCSVError, match=rf"column 'label', data row 4 .*holds {value}; expected a class index 0-9"):
        fashion_csv.read_fashion_csv(path)


def test_ragged_row_names_the_file(sample_frame, tmp_path):
    path = write_csv(sample_frame, tmp_path / "ragged.csv")
    lines = path.read_text().splitlines()
    lines[6] += ",0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(fashion_csv.BadCSVError, match=r"ragged\.csv.*line 7"):
        fashion_csv.read_fashion_csv(path)


def test_empty_file_and_header_only_are_reported(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(fashion_csv.BadCSVError, match=r"empty\.csv is empty"):
        fashion_csv.read_fashion_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(",".join(fashion_csv.EXPECTED_COLUMNS) + "\n")
    with pytest.raises(fashion_csv.BadCSVError, match=r"header\.csv has a header but no rows"):
        fashion_csv.read_fashion_csv(tmp_path / "header.csv")


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="find_fashion_mnist_csv"):
        fashion_csv.load_fashion_csv(tmp_path / "nope.csv")


def test_pil_dataset_checks_its_input_too(sample_frame, tmp_path):
    frame = sample_frame.copy()
    frame.loc[0, "label"] = 12
    with pytest.raises(fashion_csv.BadCSVError, match="data row 0"):
        fashion_csv.PILFashionCSV(write_csv(frame, tmp_path / "bad.csv"))
