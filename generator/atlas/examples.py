"""Dataset examples of atlas cells: crops of the real images whose activations fell in a cell.

For every level, a few samples of each cell are chosen deterministically
(:func:`generator.bundle.viewerdata.pick_examples`); each becomes a thumbnail of the window its
activation looks at (the layer's effective receptive field, :mod:`generator.atlas.receptive`),
centred on its sampled position in the image as the model saw it (fitted to the model's input
size the way collection fitted it). Every image is read once for all levels, in index order,
through the data loader (parallel decoding with ``workers``; unreadable images are left out).
Thumbnails go to memory-mapped arrays in a scratch folder, so a 160 x 160 level of 25,600 cells
x 4 examples never needs them all in RAM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generator.atlas.artifacts import Activations, Grid, reserved_memmap
from generator.atlas.progress import Progress
from generator.bundle.viewerdata import crop_receptive_field, pick_examples

if TYPE_CHECKING:
    from generator.data.base import ImageSource

#: Examples per cell and thumbnail side (px) by default: 4 x 64 px, so a sprite sheet of
#: 4 x 4 cells is 1024 x 256 px, ~100 KB (generator/bundle/viewerdata.py).
DEFAULT_PER_CELL = 4
DEFAULT_THUMB = 64

#: Images read per loader batch.
_BATCH = 64


@dataclass(frozen=True)
class LevelExamples:
    """The example thumbnails of one level.

    Attributes:
        thumbs: ``[M, E, T, T, 3] uint8`` (memory-mapped); the first ``counts[m]`` of cell
            ``m`` are real.
        counts: ``[M] int64`` in ``[0, E]``.
        samples: ``[M, E] int64``: the sample index of each thumbnail, -1 where none.
    """

    thumbs: np.ndarray
    counts: np.ndarray
    samples: np.ndarray


def example_thumbnails(
    source: ImageSource,
    activations: Activations,
    grids: Mapping[int, Grid],
    *,
    input_size: int,
    resize: str,
    window: int,
    per_cell: int = DEFAULT_PER_CELL,
    thumb: int = DEFAULT_THUMB,
    seed: int = 0,
    scratch: Path,
    workers: int = 0,
    progress: Progress | None = None,
) -> dict[int, LevelExamples]:
    """Thumbnails of up to ``per_cell`` samples of every kept cell of every level.

    Args:
        source: the atlas's image source; activations: its samples (image index, position).
        grids: ``{G: Grid}`` (each ``sample_cell`` says which cell a sample fell in).
        input_size, resize: how collection fitted images to the model.
        window: crop side in input px (the layer's effective receptive field).
        per_cell: E; thumb: T, thumbnail side in px; seed: for the choice of samples.
        scratch: an existing folder for the memory-mapped arrays (the caller removes it).
        workers: image decoding processes.
    """
    import torch

    from generator.data.loader import iterate_batches

    progress = progress or Progress()
    levels: dict[int, LevelExamples] = {}
    wanted: list[np.ndarray] = []  # rows (level, cell, slot, sample)
    for size, grid in grids.items():
        chosen = pick_examples(grid.sample_cell, grid.kept, per_cell, seed=seed + size)
        thumbs = reserved_memmap(
            scratch / f"thumbs-{size}.npy", (grid.kept, per_cell, thumb, thumb, 3)
        )
        levels[size] = LevelExamples(thumbs, np.zeros(grid.kept, np.int64), chosen)
        hit_cells, hit_slots = np.nonzero(chosen >= 0)
        level_rows = [np.full(len(hit_cells), size), hit_cells, hit_slots]
        wanted.append(np.stack([*level_rows, chosen[hit_cells, hit_slots]], 1))
    rows = np.concatenate(wanted) if wanted else np.zeros((0, 4), np.int64)
    rows = rows[np.argsort(activations.image_index[rows[:, 3]], kind="stable")]
    images = np.unique(activations.image_index[rows[:, 3]])
    found = np.zeros(len(rows), dtype=bool)
    task = progress.task("examples", len(images), "images")
    first = np.searchsorted(activations.image_index[rows[:, 3]], images)
    where = dict(zip(images.tolist(), first.tolist(), strict=True))
    batches = iterate_batches(
        source,
        images,
        size=input_size,
        device="cpu",
        resize=resize,
        batch_size=_BATCH,
        workers=workers,
        warn=False,
    )
    for batch in batches:
        pixels = (batch.images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for image_index, image in zip(batch.indices.tolist(), pixels, strict=True):
            r = where[image_index]
            while r < len(rows) and activations.image_index[rows[r, 3]] == image_index:
                size, cell, slot, sample = (int(v) for v in rows[r])
                y, x = (int(v) for v in activations.positions[sample])
                levels[size].thumbs[cell, slot] = crop_receptive_field(
                    image, (y, x), activations.layer_hw, window, thumb
                )
                found[r] = True
                r += 1
        task.advance(len(batch))
    task.close()
    _compact(levels, rows, found)
    return levels


def _compact(levels: dict[int, LevelExamples], rows: np.ndarray, found: np.ndarray) -> None:
    """Move each cell's thumbnails of readable images to the front; set the counts."""
    for size, level in levels.items():
        ok = np.zeros(level.samples.shape, dtype=bool)
        mine = rows[rows[:, 0] == size]
        hit = found[rows[:, 0] == size]
        ok[mine[hit, 1], mine[hit, 2]] = True
        level.counts[:] = ok.sum(axis=1)
        for cell in np.flatnonzero(ok.sum(axis=1) < (level.samples[:, :] >= 0).sum(axis=1)):
            keep = np.flatnonzero(ok[cell])
            level.thumbs[cell, : len(keep)] = level.thumbs[cell, keep]
            level.samples[cell, : len(keep)] = level.samples[cell, keep]
            level.samples[cell, len(keep) :] = -1
