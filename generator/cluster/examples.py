"""Dataset examples read and cropped on Ray workers: the images of an atlas's examples, a group
at a time.

The driver (this process) runs :func:`generator.atlas.examples.example_thumbnails` as without
a cluster, but cuts the distinct images of the chosen examples, in index order, into groups
(:data:`generator.atlas.examples.GROUP_IMAGES` each) and sends each group, with the crop
requests of its images (each example's image and position in the layer's map), to a
:mod:`.pool` of :class:`ExamplesWorker` actors. A worker reads its group's images through the
same loader, fitted the same way, and crops them with the same function as a local run
(:func:`generator.atlas.examples.crop_examples`); the thumbnails come back through Ray's object
store and the driver writes them into its memory-mapped arrays, so they are the same bytes as
a run in this process, and an unreadable image is left out the same way (the loader skips it;
its requests come back unread).

A worker receives, once, through the object store: the data set's
:class:`~generator.data.base.ImageSource` (it holds no images: a folder's root and file list, a
synthetic world's seed) and the crop settings; no model. The images themselves are read on the
worker: a folder data set must be at the same path on every node (a shared mount), a generated
one is generated there. Faults and the progress line: :mod:`.pool`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from generator.atlas.progress import Progress
from generator.cluster.pool import Names, PoolJob, run_on_pool
from generator.cluster.session import ClusterPlan

if TYPE_CHECKING:
    from generator.atlas.examples import CropSettings
    from generator.data.base import ImageSource

NAMES = Names(
    stage="examples", label="examples", items="images", units="groups", units_maybe="group(s)"
)

#: A group: ``(images [G] int64 ascending, image_of [R] int64 ascending, positions [R, 2]
#: int64)``: its distinct images and, per crop request, its image and ``(y, x)`` in the map.
Group = tuple[np.ndarray, np.ndarray, np.ndarray]

#: :func:`generator.atlas.examples.crop_examples`, handed in by its caller (so this module
#: does not import it back: no import cycle).
CropFn = Callable[..., Iterator[tuple[int, list[tuple[int, np.ndarray]]]]]


class ExamplesWorker:
    """A Ray actor's state: the image source, the crop settings and the crop function.

    Args:
        source: the atlas's image source; crop: the atlas's
            :class:`~generator.atlas.examples.CropSettings`; crop_examples: see :data:`CropFn`.
        device: unused (images are decoded and cropped on the CPU).
        threads: torch's CPU threads in this worker.
    """

    def __init__(
        self,
        source: ImageSource,
        crop: CropSettings,
        crop_examples: CropFn,
        device: str,
        threads: int,
    ) -> None:
        import torch

        torch.set_num_threads(threads)
        self.source = source
        self.crop = crop
        self.crop_examples = crop_examples

    def run(
        self, images: np.ndarray, image_of: np.ndarray, positions: np.ndarray
    ) -> tuple[int, tuple[np.ndarray, np.ndarray]]:
        """``(this worker's process id, (thumbnails, read))``: ``uint8 [R, T, T, 3]`` per
        request of the group (zeros where unread) and ``bool [R]``, whether its image was
        readable."""
        side = self.crop.thumb
        thumbs = np.zeros((len(image_of), side, side, 3), np.uint8)
        read = np.zeros(len(image_of), dtype=bool)
        crops = self.crop_examples(self.source, images, image_of, positions, self.crop, workers=0)
        for _, batch in crops:
            for r, thumbnail in batch:
                thumbs[r] = thumbnail
                read[r] = True
        return os.getpid(), (thumbs, read)


def examples_on_cluster(
    plan: ClusterPlan,
    source: ImageSource,
    crop: CropSettings,
    crop_examples: CropFn,
    groups: list[Group],
    *,
    progress: Progress,
) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """``(group number, (thumbnails, read))`` of every group (see :meth:`ExamplesWorker.run`),
    in the order they finish.

    Args:
        plan: where to run; source: must be picklable and readable on every node.
        crop, crop_examples: see :class:`ExamplesWorker`; groups: see :data:`Group`.
    """
    if not groups:
        return
    pool = PoolJob(
        worker=ExamplesWorker,
        shipped=(source, crop, crop_examples),
        units=list(enumerate(groups)),
        arguments=lambda unit: unit[1],
        size=lambda unit: len(unit[1][0]),
    )
    total = sum(len(group[0]) for group in groups)
    for (number, _), result in run_on_pool(
        plan, pool, NAMES, total=total, done=0, progress=progress
    ):
        yield number, result
