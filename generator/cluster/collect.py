"""Activation (and attribution) collection on Ray workers, one model load per worker.

The driver (this process) runs :func:`generator.atlas.collect.collect` as without a cluster,
but sends the chunks of the sample list that are not yet written to a :mod:`.pool` of
:class:`CollectWorker` actors; each chunk's rows come back through Ray's object store and the
driver writes the chunk file and the manifest (which names every finished chunk, since chunks
finish out of order), so the cache needs no shared file system and an interrupted cluster
collection resumes like a local one, skipping exactly the chunks it wrote.

A worker receives, once, through the object store: the model (from the CPU) and the batch
function, which holds the data set's :class:`~generator.data.base.ImageSource`. A source holds
no images (a folder's root and file list: tens of MB for ImageNet; a synthetic world's seed),
so it is shipped once per worker; the images themselves are read on the worker: a folder data
set must be at the same path on every node (a shared mount), a generated one is generated
there. A chunk is batched on
its own and every sampled position is drawn from ``(seed, layer, image index)``
(:func:`generator.atlas.collect.sample_positions`), so a chunk's rows are the same bytes on any
worker and in any order, and the same as a run in this process when the chunk size is a
multiple of the batch size (the stage makes it one). Faults and the progress line: :mod:`.pool`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from generator.atlas.progress import Progress
from generator.cluster.pool import Names, PoolJob, on_cpu, run_on_pool
from generator.cluster.session import ClusterPlan

if TYPE_CHECKING:
    from generator.atlas.collect import BatchFn, Collector, Sampling
    from generator.models.base import AtlasModel

#: A chunk's rows: ``{layer: {field: array}}`` (see :meth:`generator.atlas.collect.Collector.rows`).
Rows = dict[str, dict[str, np.ndarray]]


class CollectWorker:
    """A Ray actor's state: the model on the worker's device, its collector and the batch
    function that reads the images.

    Args:
        model: the atlas's model (on the CPU; moved to ``device`` here).
        batches: the collection's :data:`~generator.atlas.collect.BatchFn` (with its source).
        layers, sampling: what is collected (as in :func:`~generator.atlas.collect.collect`).
        compute: ``(Collector, chunk_rows)`` of :mod:`generator.atlas.collect`, handed in by
            its caller (so this module does not import it back: no import cycle).
        device: ``"cuda"`` (the GPU Ray gave this worker) or ``"cpu"``.
        threads: torch's CPU threads in this worker.
    """

    def __init__(
        self,
        model: AtlasModel,
        batches: BatchFn,
        layers: Sequence[str],
        sampling: Sampling,
        compute: tuple[type[Collector], Callable[[Collector, BatchFn, list[int]], Rows]],
        device: str,
        threads: int,
    ) -> None:
        import torch

        collector_class, self.chunk_rows = compute
        torch.set_num_threads(threads)
        where = torch.device(device)
        model = model.to(where)
        model.eval()
        self.collector = collector_class(model, layers, sampling, device=where)
        self.batches = batches

    def run(self, indices: list[int]) -> tuple[int, tuple[Rows, dict[str, tuple[int, int]]]]:
        """``(this worker's process id, (the chunk's rows, each layer's map size))``."""
        rows = self.chunk_rows(self.collector, self.batches, indices)
        return os.getpid(), (rows, dict(self.collector.layer_hw))


def collect_on_cluster(
    plan: ClusterPlan,
    model: AtlasModel,
    batches: BatchFn,
    layers: Sequence[str],
    sampling: Sampling,
    chunks: list[tuple[int, list[int]]],
    *,
    compute: tuple[type[Collector], Callable[[Collector, BatchFn, list[int]], Rows]],
    label: str,
    total: int,
    done: int,
    progress: Progress,
) -> Iterator[tuple[int, Rows, dict[str, tuple[int, int]]]]:
    """``(chunk, rows, layer sizes)`` of every chunk, in the order they finish.

    Args:
        plan: where to run; model: any device (shipped from the CPU); batches: must be
            picklable (Ray's cloudpickle: a ``functools.partial`` of a module function, or a
            closure), and read the images of the indices it is given on any worker.
        chunks: ``(chunk number, its indices of the sample list)`` of each chunk to compute.
        compute: ``(Collector, chunk_rows)`` (see :class:`CollectWorker`).
        label: the progress line's label; total, done: images of the whole sample list and
            those in chunks finished before.
    """
    if not chunks:
        return
    names = Names(
        stage="collect", label=label, items="images", units="chunks", units_maybe="chunk(s)"
    )
    pool = PoolJob(
        worker=CollectWorker,
        shipped=(on_cpu(model), batches, list(layers), sampling, compute),
        units=chunks,
        arguments=lambda chunk: (chunk[1],),
        size=lambda chunk: len(chunk[1]),
    )
    for (chunk, _), (rows, layer_hw) in run_on_pool(
        plan, pool, names, total=total, done=done, progress=progress
    ):
        yield chunk, rows, layer_hw
