"""Icon batches rendered on Ray workers, one model load per worker.

The driver (this process) cuts the work into the same batches as a render in this process
(:func:`generator.icons.render_icons.plan_render`) and runs them on a :mod:`.pool` of
:class:`RenderWorker` actors: each batch's directions and seeds go to a worker, and each result
comes back through Ray's object store to the driver, which writes it into the atlas's run
folder as it writes a local batch, so an interrupted cluster render resumes like a local one. A
worker (a Ray actor with one GPU or some CPU threads) receives the models once, through the
object store, and renders with :class:`generator.icons.renderer.BatchRenderer`. A batch's
result depends only on its inputs (its icon seeds name its cells), so it is the same bytes on
any worker, in any order, and when it is run again. Faults and the progress line: :mod:`.pool`.

One queue serves any number of atlases (:func:`render_queue_on_cluster`): a build of several
atlases sends every batch of every level of every atlas at once
(:mod:`generator.atlas.render_queue`), so the workers never wait while the driver lays out or
composes the next atlas; one atlas's render (:func:`render_on_cluster`, from
:func:`~generator.icons.render_icons.render_icons`) is a queue of one. A worker receives each
distinct model once and makes one renderer per atlas when that atlas's first batch arrives.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from generator.atlas.progress import Progress
from generator.cluster.pool import Names, PoolJob, on_cpu, run_on_pool
from generator.cluster.session import ClusterPlan

if TYPE_CHECKING:
    from generator.icons.renderer import BatchJob, BatchRenderer, Unit
    from generator.models.base import AtlasModel

NAMES = Names(
    stage="render", label="render", items="icons", units="batches", units_maybe="batch(es)"
)


class RenderWorker:
    """A Ray actor rendering the batches of one or more atlases.

    Args:
        models: the atlases' render copies of their models (on the CPU; each distinct model
            once, moved to ``device`` when first used).
        jobs: per atlas, ``(its model's index in models, its BatchJob)``.
        device: ``"cuda"`` (the GPU Ray gave this worker) or ``"cpu"``.
        threads: torch's CPU threads in this worker.
    """

    def __init__(
        self,
        models: tuple[AtlasModel, ...],
        jobs: tuple[tuple[int, BatchJob], ...],
        device: str,
        threads: int,
    ) -> None:
        import torch

        torch.set_num_threads(threads)
        self.where = torch.device(device)
        self.models = models
        self.jobs = jobs
        self.placed: dict[int, AtlasModel] = {}
        self.renderers: dict[int, BatchRenderer] = {}

    def renderer(self, atlas: int) -> BatchRenderer:
        from generator.icons.renderer import BatchRenderer

        if atlas not in self.renderers:
            index, job = self.jobs[atlas]
            if index not in self.placed:
                self.placed[index] = self.models[index].to(self.where)
            if job.whitening is not None:  # arrays from the object store are read-only
                job = dataclasses.replace(job, whitening=np.array(job.whitening))
            self.renderers[atlas] = BatchRenderer(self.placed[index], job, self.where)
        return self.renderers[atlas]

    def run(
        self, atlas: int, directions: np.ndarray, seeds: list[int]
    ) -> tuple[int, dict[str, np.ndarray]]:
        """``(this worker's process id, the batch's FIELDS arrays)`` of atlas ``atlas``."""
        return os.getpid(), self.renderer(atlas).render(np.array(directions), seeds)


def render_on_cluster(
    plan: ClusterPlan,
    model: AtlasModel,
    job: BatchJob,
    units: list[Unit],
    total: int,
    done: int,
    progress: Progress,
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """``(ids, batch)`` of every unit of one atlas, in the order they finish: a queue of one
    atlas (:func:`render_queue_on_cluster`).

    Args:
        plan: where to run; model: the render copy (any device; shipped from the CPU).
        units: ``(ids, directions, seeds)`` per batch; total, done: icons of the whole render
            and those finished before (for the progress line).
    """
    queue = [(0, unit) for unit in units]
    for _, ids, batch in render_queue_on_cluster(
        plan, [model], [(0, job)], queue, total, done, progress
    ):
        yield ids, batch


def render_queue_on_cluster(
    plan: ClusterPlan,
    models: list[AtlasModel],
    jobs: list[tuple[int, BatchJob]],
    units: list[tuple[int, Unit]],
    total: int,
    done: int,
    progress: Progress,
) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
    """``(atlas, ids, batch)`` of every unit of every atlas, in the order they finish: one
    queue, so the workers stay busy from one atlas to the next.

    Args:
        plan: where to run; models: the distinct render copies (any device; shipped from the
            CPU); jobs: per atlas, ``(model index, BatchJob)``.
        units: ``(atlas, (ids, directions, seeds))`` of every batch, in queue order.
        total, done: icons of all these atlases' renders and those finished before.
    """
    pool = PoolJob(
        worker=RenderWorker,
        shipped=(tuple(on_cpu(model) for model in models), tuple(jobs)),
        units=units,
        arguments=lambda unit: (unit[0], unit[1][1], unit[1][2]),
        size=lambda unit: len(unit[1][0]),
    )
    for (atlas, unit), batch in run_on_pool(
        plan, pool, NAMES, total=total, done=done, progress=progress
    ):
        yield atlas, unit[0], batch
