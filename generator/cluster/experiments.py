"""A patch experiment's patched forward passes on Ray workers, one model load per worker.

The driver (this process) runs :func:`generator.experiments.run.run_experiment` as without a
cluster up to the patching: it draws and classifies each pair's images
(:meth:`~generator.experiments.measure.PairRunner.prepare`), then cuts every pair's correctly
classified images into the batches a run in this process makes (``spec.batch_size``
consecutive ids, :meth:`~generator.experiments.measure.PairWork.chunks`) and sends the batches of
all pairs, in one queue, to a :mod:`.pool` of :class:`ExperimentWorker` actors. A worker reads
its batch's images again and classifies them with every patch at every placement
(:meth:`~generator.experiments.measure.PairRunner.patched`, ``(1 + noise_patches) x placements``
forward passes: the experiment's expensive part); each batch's flips and target probabilities
come back through Ray's object store and the driver records them, then makes the statistics,
the few example images and the results folder as without a cluster.

A worker receives, once, through the object store: the model (from the CPU), the data set's
:class:`~generator.data.base.ImageSource` and resize mode (a folder data set must be at the
same path on every node, as for :mod:`.collect`), the experiment's spec (its placements and
batch size) and every pair's patches as the driver made them (``uint8`` bytes, so the patches
are the driver's on any node). A batch's images and patches are the same as in this process,
so its results are the same bytes on any worker, in any order, and when it is run again.
Faults and the progress line: :mod:`.pool`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from generator.cluster.pool import Names, PoolJob, on_cpu, run_on_pool
from generator.cluster.session import ClusterPlan

if TYPE_CHECKING:
    from generator.data.base import ImageSource
    from generator.experiments.measure import PairRunner, PairWork
    from generator.experiments.spec import ExperimentSpec
    from generator.models.base import AtlasModel

#: One patched batch: ``(image ids [B] int64, flips [1 + noise, P, B] bool, target_p [P, B]
#: float32)`` (see :meth:`generator.experiments.measure.PairWork.record`).
Patched = tuple[np.ndarray, np.ndarray, np.ndarray]

#: A unit of work: ``(pair number, the batch's image ids, the pair's target class)``.
Unit = tuple[int, list[int], int]


class ExperimentWorker:
    """A Ray actor's state: a :class:`~generator.experiments.measure.PairRunner` with the model
    on the worker's device, and every pair's patches there.

    Args:
        model: the experiment's model (on the CPU; moved to ``device`` here).
        source, resize: the data set and its resize mode.
        spec: the experiment (placements, batch size, noise patches).
        pixels: per pair, :attr:`~generator.experiments.measure.PairWork.pixels`.
        device: ``"cuda"`` (the GPU Ray gave this worker) or ``"cpu"``.
        threads: torch's CPU threads in this worker.
    """

    def __init__(
        self,
        model: AtlasModel,
        source: ImageSource,
        resize: str,
        spec: ExperimentSpec,
        pixels: Sequence[list[dict[int, np.ndarray]]],
        device: str,
        threads: int,
    ) -> None:
        import torch

        from generator.atlas.progress import Progress
        from generator.experiments.measure import PairRunner

        torch.set_num_threads(threads)
        where = torch.device(device)
        model = model.to(where)
        model.eval()
        self.runner = PairRunner(spec, model, source, resize, where, Progress(enabled=False))
        self.patches = [self.runner.patches(pair) for pair in pixels]

    def run(self, pair: int, ids: list[int], target: int) -> tuple[int, list[Patched]]:
        """``(this worker's process id, the batch's results)``: one :data:`Patched` per batch
        the loader makes of ``ids`` (one, as the ids are a batch of images read before)."""
        out = []
        for batch in self.runner.batches(np.asarray(ids, dtype=np.int64)):
            flips, target_p = self.runner.patched(batch.images, self.patches[pair], target)
            out.append((batch.indices.numpy(), flips, target_p))
        return os.getpid(), out


def patch_on_cluster(
    plan: ClusterPlan, runner: PairRunner, works: Sequence[PairWork]
) -> Iterator[tuple[int, list[Patched]]]:
    """``(pair number, its batch's results)`` of every batch of every pair of ``works``, in
    the order they finish (see the module docstring).

    Args:
        plan: where to run; runner: the driver's (its model on any device, shipped from the
            CPU; its source, resize, spec and progress); works: each pair, prepared.
    """
    spec = runner.spec
    units: list[Unit] = [
        (k, chunk.tolist(), work.target)
        for k, work in enumerate(works)
        for chunk in work.chunks(spec.batch_size)
    ]
    if not units:
        return
    names = Names(
        stage="experiment",
        label=f"experiment {spec.id}",
        items="images",
        units="batches",
        units_maybe="batch(es)",
    )
    pool = PoolJob(
        worker=ExperimentWorker,
        shipped=(
            on_cpu(runner.model),
            runner.source,
            runner.resize,
            spec,
            [work.pixels for work in works],
        ),
        units=units,
        arguments=lambda unit: unit,
        size=lambda unit: len(unit[1]),
    )
    total = sum(len(work.ids) for work in works)
    for (k, _, _), batches in run_on_pool(
        plan, pool, names, total=total, done=0, progress=runner.progress
    ):
        yield k, batches
