"""Dataset examples of atlas cells: crops of the real images whose activations fell in a cell.

For every level, a few samples of each cell are chosen deterministically
(:func:`generator.bundle.viewerdata.pick_examples`); each becomes a thumbnail of the window its
activation looks at (the layer's effective receptive field, :mod:`generator.atlas.receptive`),
centred on its sampled position in the image as the model saw it (fitted to the model's input
size the way collection fitted it). Every image is read once for all levels, in index order,
through the data loader (parallel decoding with ``workers``; unreadable images are left out).
Thumbnails go to memory-mapped arrays in a scratch folder, so a 160 x 160 level of 25,600 cells
x 4 examples never needs them all in RAM.

With a cluster (``[compute] cluster``), the images are cut into groups of
:data:`GROUP_IMAGES`, in index order, and each group is read and cropped on a Ray worker
(:mod:`generator.cluster.examples`) by the same :func:`crop_examples` as here; this process
writes the thumbnails that come back into the same arrays, so they are the same bytes. A folder
data set must then be at the same path on every node.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generator.atlas.artifacts import Activations, Grid, reserved_memmap
from generator.atlas.progress import Progress
from generator.bundle.viewerdata import crop_receptive_field, pick_examples

if TYPE_CHECKING:
    from generator.cluster.session import ClusterPlan
    from generator.data.base import ImageSource

#: Examples per cell and thumbnail side (px) by default: 4 x 64 px, so a sprite sheet of
#: 4 x 4 cells is 1024 x 256 px, ~100 KB (generator/bundle/viewerdata.py).
DEFAULT_PER_CELL = 4
DEFAULT_THUMB = 64

#: Images read per loader batch.
_BATCH = 64

#: Images per unit of work on a cluster: a few seconds of JPEG decoding for a worker (long
#: against Ray's few ms per task, short enough that a lost worker's units cost little); the
#: thumbnails of the units in flight are a few MB (about one example per image, 12 KB each).
GROUP_IMAGES = 256


@dataclass(frozen=True)
class CropSettings:
    """How every example of an atlas is cropped.

    Attributes:
        input_size, resize: how collection fitted images to the model.
        window: crop side in input px (the layer's effective receptive field).
        thumb: T, thumbnail side in px.
        layer_hw: ``(h, w)`` of the layer's activation map (the samples' positions are in it).
    """

    input_size: int
    resize: str
    window: int
    thumb: int
    layer_hw: tuple[int, int]


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
    cluster: ClusterPlan | None = None,
    group_images: int = GROUP_IMAGES,
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
        cluster: read and crop the images on Ray workers (:mod:`generator.cluster.examples`),
            ``group_images`` at a time; the thumbnails are the same bytes.
    """
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
    image_of = np.asarray(activations.image_index[rows[:, 3]])
    positions = np.asarray(activations.positions[rows[:, 3]])
    images = np.unique(image_of)
    found = np.zeros(len(rows), dtype=bool)
    crop = CropSettings(input_size, resize, window, thumb, activations.layer_hw)
    if cluster is not None and len(images):
        from generator.cluster.examples import examples_on_cluster

        starts = np.searchsorted(image_of, images[::group_images]).tolist()
        bounds = list(zip(starts, [*starts[1:], len(rows)], strict=True))
        groups = [
            (images[k * group_images : (k + 1) * group_images], image_of[a:b], positions[a:b])
            for k, (a, b) in enumerate(bounds)
        ]
        results = examples_on_cluster(
            cluster, source, crop, crop_examples, groups, progress=progress
        )
        for number, (thumbnails, readable) in results:
            first = bounds[number][0]
            for r in np.flatnonzero(readable).tolist():
                size, cell, slot = (int(v) for v in rows[first + r, :3])
                levels[size].thumbs[cell, slot] = thumbnails[r]
            found[first : first + len(readable)] = readable
    else:
        task = progress.task("examples", len(images), "images")
        for read, crops in crop_examples(
            source, images, image_of, positions, crop, workers=workers
        ):
            for r, thumbnail in crops:
                size, cell, slot = (int(v) for v in rows[r, :3])
                levels[size].thumbs[cell, slot] = thumbnail
                found[r] = True
            task.advance(read)
        task.close()
    _compact(levels, rows, found)
    return levels


def crop_examples(
    source: ImageSource,
    images: np.ndarray,
    image_of: np.ndarray,
    positions: np.ndarray,
    crop: CropSettings,
    *,
    workers: int = 0,
) -> Iterator[tuple[int, list[tuple[int, np.ndarray]]]]:
    """The thumbnails of requests ``r`` whose image is readable, one loader batch at a time.

    Args:
        images: the distinct image indices of the requests, ascending.
        image_of: ``[R] int64``, each request's image index, ascending.
        positions: ``[R, 2] int64``, each request's ``(y, x)`` in the layer's map.
        crop: how to crop; workers: image decoding processes.

    Yields ``(images read in the batch, [(r, uint8 [T, T, 3] thumbnail), ...])``; an unreadable
    image (the loader skips it) gives its requests no thumbnail.
    """
    import torch

    from generator.data.loader import iterate_batches

    first = np.searchsorted(image_of, images)
    where = dict(zip(images.tolist(), first.tolist(), strict=True))
    batches = iterate_batches(
        source,
        images,
        size=crop.input_size,
        device="cpu",
        resize=crop.resize,
        batch_size=_BATCH,
        workers=workers,
        warn=False,
    )
    for batch in batches:
        pixels = (batch.images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        crops: list[tuple[int, np.ndarray]] = []
        for image_index, image in zip(batch.indices.tolist(), pixels, strict=True):
            r = where[image_index]
            while r < len(image_of) and image_of[r] == image_index:
                y, x = (int(v) for v in positions[r])
                thumbnail = crop_receptive_field(
                    image, (y, x), crop.layer_hw, crop.window, crop.thumb
                )
                crops.append((r, thumbnail))
                r += 1
        yield len(batch), crops


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
