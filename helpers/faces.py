"""Faces in real photos: find them with OpenCV's Haar cascade, crop them like FER2013, classify.
``plots.draw_predictions`` draws the result.

The Haar cascade files ship inside the opencv-python 4.x wheels (``cv2.data.haarcascades``);
the 5.x wheels no longer include them, hence ``opencv-python<5`` in requirements.txt.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

CASCADE = "haarcascade_frontalface_alt2.xml"   # fewer false alarms than ..._default on the course photos
FER_SIZE = 48                                   # FER2013 faces are 48x48 grayscale
# Photos whose longer side is above DETECT_SIDE pixels are scaled down to it before detection. The
# cascade scans windows from min_size (40 px) up to the whole image in steps of 1.1: on a 4000 px photo
# that is many more window sizes and positions, most of them over detail far finer than a face's, and
# on zidane.jpg enlarged to 4000 px it found three false faces near the 40 px minimum and missed one of
# the two real ones (bus.jpg: three false faces beside the two real ones). 1280 px is the size of
# the course's photos (ultralytics' zidane.jpg is 1280 x 720, bus.jpg 810 x 1080, faces 50-160 px), so
# they are detected exactly as they are; a face then needs to be at least min_size / 1280 (3 %) of the
# photo's longer side, as the faces in a group photo or a portrait are. Smaller photos are not enlarged:
# that adds no detail.
DETECT_SIDE = 1280


def read_image(path: str | Path) -> np.ndarray:
    """Return the photo at `path` as an H x W x 3 BGR uint8 array (OpenCV's order), or raise naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file; check the path.")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} is not an image OpenCV can read (JPEG, PNG, ...); pass a photo file.")
    return image


def face_detector(cascade: str = CASCADE) -> cv2.CascadeClassifier:
    """Return OpenCV's Haar cascade face detector `cascade` from the files shipped with opencv-python."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None:
        raise RuntimeError(f"This OpenCV ({cv2.__version__}) ships no Haar cascade files (cv2.data is gone "
                           f"in the 5.x wheels). Install opencv-python<5, as requirements.txt does.")
    detector = cv2.CascadeClassifier(str(Path(folder) / cascade))
    if detector.empty():
        raise FileNotFoundError(f"{cascade} was not found among OpenCV's Haar cascades; "
                                f"use one of the haarcascade_*.xml names in cv2.data.haarcascades.")
    return detector


def find_faces(image: np.ndarray, detector: cv2.CascadeClassifier, min_size: int = 40,
               min_neighbors: int = 3) -> np.ndarray:
    """Return the faces found in a BGR `image` as an N x 4 int array of boxes (x, y, width, height), left to right.

    A photo larger than DETECT_SIDE pixels on its longer side is searched on a copy scaled down to
    that size, and the boxes are given in the photo's own pixels. `min_size` is the smallest face
    looked for, in pixels of the image searched (the scaled copy for a large photo).
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    scale = min(1.0, DETECT_SIDE / max(height, width))
    if scale < 1:                                   # INTER_AREA averages the pixels each new one covers
        gray = cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))),
                          interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)                   # evens out lighting
    boxes = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=min_neighbors,
                                      minSize=(min_size, min_size))
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    if scale < 1:                                   # back to the photo's own pixels, inside the photo
        boxes = np.round(boxes / scale)
        boxes[:, 2] = np.minimum(boxes[:, 2], width - boxes[:, 0])
        boxes[:, 3] = np.minimum(boxes[:, 3], height - boxes[:, 1])
    boxes = boxes.astype(int)
    return boxes[np.argsort(boxes[:, 0], kind="stable")]


def crop_faces(image: np.ndarray, boxes: np.ndarray, size: int = FER_SIZE, margin: float = 0.1) -> torch.Tensor:
    """Return the boxed faces as grayscale uint8 crops, N x 1 x `size` x `size`, like FER2013 images.

    Each box grows by `margin` of its size on every side (FER crops show a little around the face).
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    crops = []
    for x, y, w, h in boxes:
        pad_x, pad_y = int(w * margin), int(h * margin)
        x0, y0 = max(0, x - pad_x), max(0, y - pad_y)
        x1, y1 = min(width, x + w + pad_x), min(height, y + h + pad_y)
        crops.append(cv2.resize(gray[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA))
    if not crops:
        return torch.empty(0, 1, size, size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(crops)).unsqueeze(1)


def classify_faces(model: nn.Module, crops: torch.Tensor, transform: nn.Module,
                   device: torch.device) -> torch.Tensor:
    """Return class probabilities (N x classes) for uint8 face crops, after the evaluation `transform`."""
    model.eval()
    with torch.inference_mode():
        logits = model(transform(crops.to(device)))
    return logits.softmax(dim=1).cpu()
