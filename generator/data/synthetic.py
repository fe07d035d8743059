"""The synthetic world as an :class:`ImageSource`, and a contact sheet to look at it.

``SyntheticWorld(seed=0, size=64, count=1_000_000)`` addresses ``count`` images of the
procedural world of :mod:`generator.data.world` (twelve classes of shapes and textures). Nothing
is stored: image ``i`` is drawn on demand and is the same bytes every time, in any batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from generator.cache import digest
from generator.data.base import ImageSource
from generator.data.world import CLASS_NAMES, WORLD_VERSION, labels_of, render_batch

__all__ = ["CLASS_NAMES", "SyntheticWorld", "preview", "render_batch"]

#: Default number of addressable images: the article's one million samples.
DEFAULT_COUNT = 1_000_000


class SyntheticWorld(ImageSource):
    """``count`` procedural images of side ``size``, drawn deterministically from ``seed``.

    Labels are balanced: each block ``[bK, bK + K)`` of indices (``K = len(class_names)``) holds
    every class once.
    """

    class_names = CLASS_NAMES

    def __init__(self, *, seed: int = 0, size: int = 64, count: int = DEFAULT_COUNT) -> None:
        if size < 8:
            raise ValueError(f"synthetic image size must be at least 8 pixels, got {size}")
        if count < 1:
            raise ValueError(f"synthetic image count must be at least 1, got {count}")
        self.seed = int(seed)
        self.size = int(size)
        self.count = int(count)
        self.name = "synthetic"

    def __len__(self) -> int:
        return self.count

    def identity(self) -> str:
        return digest("synthetic", WORLD_VERSION, self.seed, self.size, self.count)

    def _check(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.count):
            bad = int(idx[(idx < 0) | (idx >= self.count)][0])
            raise IndexError(f"synthetic image {bad} is out of range [0, {self.count})")
        return idx

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as ``uint8 [size, size, 3]``."""
        return render_batch(self._check(np.array([index])), seed=self.seed, size=self.size)[0]

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Images ``indices`` as ``uint8 [B, size, size, 3]`` (one vectorised pass)."""
        return render_batch(self._check(np.asarray(indices)), seed=self.seed, size=self.size)

    def labels(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Class index of each of ``indices``, ``int64 [B]``."""
        return labels_of(self._check(np.asarray(indices)), self.seed)

    def label(self, index: int) -> int:
        return int(self.labels([index])[0])

    def describe(self, index: int) -> str:
        return f"synthetic #{index} ({self.class_names[self.label(index)]})"


def preview(
    path: str | Path,
    n_per_class: int = 8,
    *,
    seed: int = 0,
    size: int = 64,
    scale: int = 2,
    colours: int | None = None,
) -> Path:
    """Write a contact sheet PNG: one row per class, ``n_per_class`` images, names on the left.

    Images are the first ``n_per_class`` of each class (indices below ``K * n_per_class``),
    enlarged ``scale`` times with nearest-neighbour so pixels stay visible. ``colours`` (at most
    256) saves a palette image of that many colours instead: a few times smaller, for docs.
    """
    from PIL import Image, ImageDraw

    k = len(CLASS_NAMES)
    idx = np.arange(k * n_per_class)
    images = render_batch(idx, seed=seed, size=size)
    labels = labels_of(idx, seed)
    cell, gap, margin = size * scale, 4, 110
    sheet = Image.new("RGB", (margin + n_per_class * (cell + gap), k * (cell + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(CLASS_NAMES):
        top = c * (cell + gap)
        draw.text((6, top + cell // 2 - 6), name, fill="black")
        for j, i in enumerate(np.flatnonzero(labels == c)[:n_per_class]):
            tile = Image.fromarray(images[i]).resize((cell, cell), Image.Resampling.NEAREST)
            sheet.paste(tile, (margin + j * (cell + gap), top))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if colours is not None:
        palette = sheet.quantize(colours)  # Pillow dithers only onto a given palette
        sheet = sheet.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    sheet.save(path, optimize=True)
    return path
