"""helpers.faces: Haar-cascade faces in ultralytics' real photos, FER-style crops, labelled drawings."""
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
import torch
import ultralytics

from helpers import data, emotionnet, faces, plots, transforms

matplotlib.use("Agg")
ASSETS = Path(ultralytics.ASSETS)


@pytest.fixture(scope="module")
def detector():
    return faces.face_detector()


@pytest.mark.parametrize("name", ["zidane.jpg", "bus.jpg"])
def test_faces_are_found_in_the_real_photos(detector, name):
    image = faces.read_image(ASSETS / name)
    boxes = faces.find_faces(image, detector)
    assert boxes.shape == (2, 4), f"{name}: expected the two faces, found {boxes.tolist()}"
    assert (boxes[:, 0] == sorted(boxes[:, 0])).all(), "boxes are ordered left to right"


def resized(image, longer_side):
    """Return `image` scaled so that its longer side is `longer_side` pixels, and the scale used."""
    height, width = image.shape[:2]
    scale = longer_side / max(height, width)
    return cv2.resize(image, (round(width * scale), round(height * scale))), scale


def test_a_large_photo_gives_the_faces_of_a_small_one_in_the_same_places(detector):
    """zidane.jpg enlarged to 4000 px (a phone photo's size) and shrunk to 512 px: the same two faces."""
    photo = faces.read_image(ASSETS / "zidane.jpg")
    found = {}
    for side in (512, 4000):
        image, scale = resized(photo, side)
        boxes = faces.find_faces(image, detector)
        height, width = image.shape[:2]
        assert ((boxes[:, :2] >= 0) & (boxes[:, :2] + boxes[:, 2:] <= [width, height])).all(), "boxes leave the photo"
        found[side] = boxes / scale / max(photo.shape[:2])   # as fractions of the original's longer side
    assert len(found[4000]) == len(found[512]) == 2, f"boxes at 4000 px: {found[4000].round(3).tolist()}"
    assert np.abs(found[4000] - found[512]).max() < 0.01, f"{found[4000].round(3)} vs {found[512].round(3)}"


def test_crops_look_like_fer_images(detector):
    image = faces.read_image(ASSETS / "zidane.jpg")
    crops = faces.crop_faces(image, faces.find_faces(image, detector))
    assert crops.shape == (2, 1, 48, 48) and crops.dtype == torch.uint8
    assert faces.crop_faces(image, faces.find_faces(image[:10, :10], detector)).shape == (0, 1, 48, 48)


def test_classify_the_faces_of_a_real_photo(detector):
    image = faces.read_image(ASSETS / "bus.jpg")
    boxes = faces.find_faces(image, detector)
    model = emotionnet.EmotionNet()
    probs = faces.classify_faces(model, faces.crop_faces(image, boxes),
                                 transforms.FaceBatchTransform(64, data.FER_MEAN, data.FER_STD), torch.device("cpu"))
    assert probs.shape == (len(boxes), 7) and torch.allclose(probs.sum(1), torch.ones(len(boxes)))
    ax = plots.draw_predictions(image, boxes, probs, data.FER_CLASSES)
    assert len(ax.patches) == len(boxes) and len(ax.texts) == len(boxes)


def test_unreadable_photos_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="holiday.jpg"):
        faces.read_image(tmp_path / "holiday.jpg")
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(ValueError, match=r"notes\.jpg is not an image"):
        faces.read_image(tmp_path / "notes.jpg")


def test_an_unknown_cascade_is_named():
    with pytest.raises(FileNotFoundError, match="haarcascade_cat.xml"):
        faces.face_detector("haarcascade_cat.xml")
