"""Transforms and augmentation: torchvision pipelines for PIL images, and whole-batch versions for
uint8 tensors held in memory.

- ``train_transforms`` / ``eval_transforms``: ``torchvision.transforms.v2`` pipelines, item by item
  (lesson 02); ``face_transforms`` gives the same with three channels for an RGB network (lesson 06).
- ``random_crop_flip`` and ``to_float``: shifts, flips and normalisation of a whole uint8 batch at
  once (lesson 03), far faster than a pipeline per image.
- ``FaceBatchTransform``: zoom, rotation, shift, flip and contrast for a batch of faces in one
  ``grid_sample`` call (lesson 04).

Never a vertical flip: no test image is upside down.
"""
from __future__ import annotations

import math

import torch
from torchvision.transforms import v2


def train_transforms(size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> v2.Compose:
    """Return the training pipeline for faces: resize, mild crop/rotation, horizontal flip, normalise."""
    return v2.Compose([
        v2.ToImage(),
        v2.Resize(size, antialias=True),
        v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomRotation(10, interpolation=v2.InterpolationMode.BILINEAR),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def eval_transforms(size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> v2.Compose:
    """Return the evaluation pipeline: the same resize and normalisation, no randomness."""
    return v2.Compose([
        v2.ToImage(),
        v2.Resize(size, antialias=True),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def face_transforms(size: int, mean: tuple[float, ...], std: tuple[float, ...],
                    train: bool) -> v2.Compose:
    """Return the face pipeline at `size` px with 3 identical channels (grayscale faces for an RGB network).

    `mean`/`std` have 3 values: ImageNet's for pretrained weights, the faces' own repeated otherwise.
    """
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean={mean}, std={std}: EfficientNet takes 3 channels, so give 3 values each "
                         f"(e.g. data.IMAGENET_MEAN, or data.FER_MEAN_RGB).")
    pipeline = train_transforms if train else eval_transforms
    return v2.Compose([v2.Grayscale(num_output_channels=3), pipeline(size, mean, std)])


def random_crop_flip(images: torch.Tensor, padding: int = 2, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a B x C x H x W batch where each image is randomly shifted by up to `padding` pixels
    (zero padding, as ``RandomCrop(H, padding)``) and, if `flip`, mirrored left-right with p=0.5."""
    batch, channels, height, width = images.shape
    if padding > 0:
        padded = torch.nn.functional.pad(images, (padding,) * 4)
        shifts = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator).to(images.device)
        rows = (torch.arange(height, device=images.device) + shifts[0, :, None])[:, None, :, None]
        cols = (torch.arange(width, device=images.device) + shifts[1, :, None])[:, None, None, :]
        index_b = torch.arange(batch, device=images.device)[:, None, None, None]
        index_c = torch.arange(channels, device=images.device)[None, :, None, None]
        images = padded[index_b, index_c, rows, cols]
    if flip:
        mirror = (torch.rand(batch, generator=generator) < 0.5).to(images.device)
        images = torch.where(mirror[:, None, None, None], images.flip(3), images)
    return images


def to_float(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Return a uint8 batch (0-255) as float32, scaled to 0-1 and normalised with `mean` and `std` per channel."""
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - mean_t) / std_t


class FaceBatchTransform(torch.nn.Module):
    """Turn a batch of uint8 faces (B x 1 x h x w) into normalised float images of `size` x `size`.

    With ``train=True`` each face gets its own random zoom (crop), small rotation, shift and horizontal
    flip, all in one ``grid_sample`` call on the batch's device, and then a random contrast change
    (each face's pixels spread around its own mean by a factor within 1 +- `jitter`). With
    `erase` > 0, that share of the faces also gets one random rectangle (2-20% of the image, aspect
    0.3-3.3, as in torchvision's ``RandomErasing``) set to the mean: the model must not rely on one
    part of the face.
    Never a vertical flip: no test face is upside down. Random numbers come from torch's global RNG
    (on the CPU), so seeding and checkpointed RNG states make the augmentation repeatable.
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], train: bool = False,
                 max_rotation: float = 10.0, min_scale: float = 0.85, jitter: float = 0.2, erase: float = 0.0):
        super().__init__()
        if not 0 <= erase <= 1:
            raise ValueError(f"erase is the share of faces that get a rectangle erased, between 0 and 1; got {erase}")
        self.size, self.train_mode, self.erase = size, train, erase
        self.max_rotation, self.min_scale, self.jitter = max_rotation, min_scale, jitter
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if self.train_mode:
            x = self._augment(x)
            if self.erase:
                x = self._erase(x)
        elif x.shape[-2:] != (self.size, self.size):
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                                align_corners=False, antialias=x.shape[-1] > self.size)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        r = torch.rand(n, 6)  # drawn on the CPU: the same numbers on every device
        angle = (r[:, 0] * 2 - 1) * self.max_rotation * torch.pi / 180
        scale = self.min_scale + (1 - self.min_scale) * r[:, 1]
        flip = torch.where(r[:, 2] < 0.5, -1.0, 1.0)
        shift = (r[:, 3:5] * 2 - 1) * (1 - scale).unsqueeze(1)  # keep the zoomed window inside the face
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                             torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1).to(x.device)
        grid = torch.nn.functional.affine_grid(theta, [n, x.shape[1], self.size, self.size], align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        contrast = (1 + (r[:, 5] * 2 - 1) * self.jitter).view(-1, 1, 1, 1).to(x.device)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * contrast + mean).clamp(0, 1)

    def _erase(self, x: torch.Tensor) -> torch.Tensor:
        """Set one random rectangle of a random `erase` share of the faces to the dataset mean."""
        n, side = len(x), self.size
        r = torch.rand(n, 5)  # on the CPU, like _augment's numbers
        area = (0.02 + 0.18 * r[:, 0]) * side * side
        aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * r[:, 1])
        h = (area * aspect).sqrt().clamp(1, side).floor()
        w = (area / aspect).sqrt().clamp(1, side).floor()
        top, left = (r[:, 2] * (side - h + 1)).floor(), (r[:, 3] * (side - w + 1)).floor()
        rows, cols = torch.arange(side).view(1, -1, 1), torch.arange(side).view(1, 1, -1)
        inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + h).view(-1, 1, 1))
                  & (cols >= left.view(-1, 1, 1)) & (cols < (left + w).view(-1, 1, 1)))
        inside &= (r[:, 4] < self.erase).view(-1, 1, 1)
        fill = self.mean.to(x.device).view(1, -1, 1, 1)
        return torch.where(inside.unsqueeze(1).to(x.device), fill, x)

    def extra_repr(self) -> str:
        return f"size={self.size}, train={self.train_mode}, erase={self.erase}"
