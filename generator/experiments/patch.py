"""Patch compositing for the article's "human-designed adversarial examples" (METHOD.md 6).

An icon is pasted as a square patch onto images of side ``S`` (the model's input size; 224
for InceptionV1) that the data loader has already fitted to ``S x S``:

* side ``w = round(ratio * S)``, rounding half up (``floor(ratio * S + 0.5)``, not Python's
  round-half-to-even), at least 1 and at most ``S``: ratio 0.4 of 224 px is 89.6 -> 90 px;
* top-left corner ``(left, top) = (round(px * (S - w)), round(py * (S - w)))`` for a position
  ``(px, py)`` in [0, 1]^2 (x rightwards, y downwards, the same rounding): the four corners
  are ``(0, 0)``, ``(1, 0)``, ``(0, 1)``, ``(1, 1)``, i.e. ``pos x (S - w)`` per axis;
* the patch replaces the pixels ``[top, top + w) x [left, left + w)`` (no blending); the rest
  of the image is untouched;
* the icon (``uint8 [h, w', 3]``, e.g. an 80 px atlas cell) is resized to ``w x w`` with
  Pillow's Lanczos filter (left as is when already ``w x w``), then scaled to [0, 1] as
  ``value / 255``, so a patched image is still exactly a uint8 image / 255;
* a noise patch is ``w x w x 3`` uniform random bytes / 255 from
  ``numpy.random.default_rng([seed, draw, w])``: the same for every image, reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Placement:
    """Where a patch goes: its side and top-left corner in image pixels (see the module doc).

    Attributes:
        ratio: the requested side as a fraction of the image side.
        position: the requested ``(px, py)`` in [0, 1]^2.
        side: ``w``, in px; ``left``, ``top``: the patch's first column and row.
    """

    ratio: float
    position: tuple[float, float]
    side: int
    left: int
    top: int

    def describe(self) -> str:
        return f"{self.ratio:g} at ({self.position[0]:g}, {self.position[1]:g})"


def round_half_up(value: float) -> int:
    """``floor(value + 0.5)``: 89.5 -> 90, 2.5 -> 3 (Python's round gives 2)."""
    return math.floor(value + 0.5)


def placement(ratio: float, position: tuple[float, float], size: int) -> Placement:
    """The :class:`Placement` of a patch of ``ratio`` at ``position`` on ``size`` px images."""
    if not 0 < ratio <= 1:
        raise ValueError(f"patch ratio must be in (0, 1], got {ratio}")
    px, py = position
    if not (0 <= px <= 1 and 0 <= py <= 1):
        raise ValueError(f"patch position must be in [0, 1]^2, got {position}")
    side = min(size, max(1, round_half_up(ratio * size)))
    free = size - side
    return Placement(ratio, (px, py), side, round_half_up(px * free), round_half_up(py * free))


def fit_icon(icon: np.ndarray, side: int) -> np.ndarray:
    """``uint8 [h, w, 3]`` -> ``uint8 [side, side, 3]`` (Lanczos; unchanged when it fits)."""
    from PIL import Image

    icon = np.ascontiguousarray(icon[..., :3], dtype=np.uint8)
    if icon.shape[:2] == (side, side):
        return icon
    resized = Image.fromarray(icon).resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def noise_patch(side: int, *, seed: int, draw: int) -> np.ndarray:
    """A random-noise patch ``uint8 [side, side, 3]``, uniform bytes (see the module doc)."""
    rng = np.random.default_rng([seed, draw, side])
    return rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)


def paste(images: torch.Tensor, patch: torch.Tensor, where: Placement) -> torch.Tensor:
    """``images [B, 3, S, S]`` with ``patch [3, w, w]`` (both float in [0, 1], ``w`` =
    ``where.side``) pasted at ``where``; a new tensor, the input is not modified."""
    side = where.side
    if tuple(patch.shape) != (3, side, side):
        raise ValueError(f"patch must be [3, {side}, {side}], got {tuple(patch.shape)}")
    out = images.clone()
    out[:, :, where.top : where.top + side, where.left : where.left + side] = patch.to(out)
    return out


def patch_tensor(patch: np.ndarray, device: torch.device) -> torch.Tensor:
    """``uint8 [w, w, 3]`` -> ``float32 [3, w, w]`` in [0, 1] on ``device`` (value / 255)."""
    import torch

    pixels = torch.from_numpy(np.array(patch, dtype=np.uint8))  # a copy: PIL's arrays are read-only
    return pixels.permute(2, 0, 1).float().div(255).to(device)
