"""Batches of images from a source, resized for a model, decoded in parallel, on a device.

:func:`iterate_batches` is the one way the pipeline reads images: it walks ``indices`` in
order, in chunks of ``batch_size``; each chunk is decoded (in ``workers`` DataLoader processes,
or in this process when ``workers=0``), fitted to ``size x size`` (:func:`fit_image`), and
delivered as a :class:`Batch` on ``device`` (through pinned memory and non-blocking copies on
CUDA). Bad images are left out of their batch, counted in a :class:`LoadReport`, and named in
one :class:`ImageDataWarning` when the pass completes. Results do not depend on ``workers``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from generator.data.base import BadImage, ImageSource, LoadReport

#: "stretch": the whole image squeezed to a square, as the article did (METHOD.md section 1);
#: "center-crop": the largest centred square, then scaled.
RESIZE_MODES = ("stretch", "center-crop")


@dataclass(frozen=True)
class Batch:
    """Images delivered together.

    Attributes:
        indices: ``int64 [B]`` source indices of the images in this batch (bad ones left out).
        images: ``float32 [B, 3, S, S]`` RGB in [0, 1], on the requested device.
        labels: ``int64 [B]`` class indices (-1 where unknown), on the CPU.
    """

    indices: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def fit_image(image: np.ndarray, size: int, resize: str = "stretch") -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``uint8 [size, size, 3]``.

    "stretch" scales each axis on its own; "center-crop" first cuts the largest centred square
    (the odd pixel, if any, goes on the right/bottom side). Scaling is Pillow's bilinear filter,
    which widens its support when shrinking (antialiased, like torchvision's
    ``Resize(antialias=True)``); an image already at ``size x size`` is returned as is.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    h, w = image.shape[:2]
    if resize == "center-crop" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top : top + side, left : left + side]
        h = w = side
    if (h, w) == (size, size):
        return np.ascontiguousarray(image)
    scaled = Image.fromarray(np.ascontiguousarray(image)).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.asarray(scaled, dtype=np.uint8).copy()


#: What decoding a chunk hands back: indices, uint8 [b, S, S, 3] images, labels, then
#: (where, reason, detail) per skipped image and (where, note) per converted one.
_Chunk = tuple[
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    list[tuple[str, str, str | None]],
    list[tuple[str, str]],
]


class _ChunkDataset(torch.utils.data.Dataset[_Chunk]):
    """Item ``k`` is chunk ``k`` of the indices, decoded and fitted (runs in a worker)."""

    def __init__(
        self, source: ImageSource, chunks: list[np.ndarray], size: int, resize: str
    ) -> None:
        self.source, self.chunks, self.size, self.resize = source, chunks, size, resize

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> _Chunk:
        chunk = self.chunks[k]
        skipped: list[tuple[str, str, str | None]] = []
        converted: list[tuple[str, str]] = []
        kept: list[int] = []
        images: list[np.ndarray] = []
        together = self.source.read_batch(chunk) if len(chunk) else None
        if together is not None:
            kept = [int(i) for i in chunk]
            if together.shape[1:3] == (self.size, self.size):
                images = [np.ascontiguousarray(together)]  # already one [B, S, S, 3] stack
            else:
                images = [fit_image(img, self.size, self.resize)[None] for img in together]
        else:
            for i in chunk.tolist():
                try:
                    img, note = self.source.read_noted(i)
                except BadImage as err:
                    skipped.append((err.where, err.reason, err.detail))
                    continue
                if note is not None:
                    converted.append((self.source.describe(i), note))
                kept.append(i)
                images.append(fit_image(img, self.size, self.resize)[None])
        s = self.size
        stack = np.concatenate(images) if images else np.zeros((0, s, s, 3), np.uint8)
        labels = self.source.labels(kept) if kept else np.zeros(0, np.int64)
        return (
            torch.tensor(kept, dtype=torch.int64),
            torch.from_numpy(stack),
            torch.from_numpy(np.asarray(labels, dtype=np.int64)),
            skipped,
            converted,
        )


def iterate_batches(
    source: ImageSource,
    indices: Sequence[int] | np.ndarray,
    *,
    size: int,
    device: torch.device | str,
    resize: str = "stretch",
    batch_size: int = 64,
    workers: int = 0,
    report: LoadReport | None = None,
    warn: bool = True,
) -> Iterator[Batch]:
    """Yield the images ``indices`` of ``source`` (in that order) as :class:`Batch` es.

    Each batch holds what is left of ``batch_size`` consecutive indices once bad images are
    skipped (a chunk with no usable image yields nothing). ``report`` (a fresh one if None)
    counts loaded, converted and skipped images; when the pass completes and ``warn`` is true,
    one :class:`ImageDataWarning` names the counts and first paths (nothing if all was well).
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    if size < 1 or batch_size < 1 or workers < 0:
        raise ValueError(
            f"need size >= 1, batch_size >= 1, workers >= 0; got {size}, {batch_size}, {workers}"
        )
    device = torch.device(device)
    report = report if report is not None else LoadReport()
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    chunks = [idx[k : k + batch_size] for k in range(0, len(idx), batch_size)]
    cuda = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        _ChunkDataset(source, chunks, size, resize),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=cuda,
        prefetch_factor=4 if workers else None,
    )
    for kept, images, labels, skipped, converted in loader:
        for where, reason, detail in skipped:
            report.skip(BadImage(where, reason, detail))
        for where, note in converted:
            report.convert(where, note)
        if not len(kept):
            continue
        report.loaded += len(kept)
        # uint8 crosses to the device (4x fewer bytes than float); channels move there too.
        on_device = images.to(device, non_blocking=cuda).permute(0, 3, 1, 2).contiguous()
        pixels = on_device.to(torch.float32).div_(255.0)
        yield Batch(indices=kept, images=pixels, labels=labels)
    if warn:
        report.warn(source.name, stacklevel=2)
