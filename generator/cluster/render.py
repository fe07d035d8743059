"""An atlas's icon batches rendered on Ray workers, one model load per worker.

The driver (this process) keeps everything that is saved. It cuts the work into the same
batches as a render in this process (:func:`generator.icons.render_icons.render_icons`), sends
each batch's directions and seeds to a worker and yields each result as it comes back through
Ray's object store; render_icons writes it into the run folder as it writes a local batch, so
the cache needs no shared file system and an interrupted cluster render resumes like a local
one. A worker (:class:`RenderWorker`, a Ray actor with one GPU or some CPU threads) receives the
model once, through the object store, and renders with
:class:`generator.icons.renderer.BatchRenderer`. A batch's result depends only on its
inputs (its icon seeds name its cells), so it is the same bytes on any worker, in any order,
and when it is run again.

Faults: a worker process that dies is restarted by Ray (:data:`MAX_RESTARTS`, its constructor
run again: the model comes from the object store again) and its batches are retried
(:data:`MAX_TASK_RETRIES`); a worker that cannot be restarted is dropped and its batches go to
the others; the render fails only when no worker is left. The progress line counts icons over
all workers, with the rate, the ETA, the workers alive and the restarts seen.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.atlas.progress import Progress, Task
from generator.cluster.session import ClusterPlan, connect, require_ray
from generator.errors import AtlasError

if TYPE_CHECKING:
    from generator.icons.renderer import BatchJob, Unit
    from generator.models.base import AtlasModel

#: Restarts of a dead worker process, and retries of the batches it was running, before it is
#: given up (a node lost for good; a batch that kills its worker every time).
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3

#: Batches kept in flight per worker: the next one is queued while one renders, so a worker
#: does not wait for the driver between batches.
IN_FLIGHT = 2


class RenderWorker:
    """A Ray actor's state: the model on the worker's device and a batch renderer.

    Args:
        model: the render copy of the model (on the CPU; moved to ``device`` here).
        job: the render's :class:`~generator.icons.renderer.BatchJob`.
        device: ``"cuda"`` (the GPU Ray gave this worker) or ``"cpu"``.
        threads: torch's CPU threads in this worker.
    """

    def __init__(self, model: AtlasModel, job: BatchJob, device: str, threads: int) -> None:
        import torch

        from generator.icons.renderer import BatchRenderer

        torch.set_num_threads(threads)
        where = torch.device(device)
        if job.whitening is not None:  # arrays from the object store are read-only
            job = dataclasses.replace(job, whitening=np.array(job.whitening))
        self.renderer = BatchRenderer(model.to(where), job, where)

    def render(self, directions: np.ndarray, seeds: list[int]) -> tuple[int, dict[str, np.ndarray]]:
        """``(this worker's process id, the batch's FIELDS arrays)``."""
        return os.getpid(), self.renderer.render(np.array(directions), seeds)


def render_on_cluster(
    plan: ClusterPlan,
    model: AtlasModel,
    job: BatchJob,
    units: list[Unit],
    total: int,
    done: int,
    progress: Progress,
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """``(ids, batch)`` of every unit, in the order they finish (see the module docstring).

    Args:
        plan: where to run; model: the render copy (any device; shipped from the CPU).
        units: ``(ids, directions, seeds)`` per batch; total, done: icons of the whole render
            and those finished before (for the progress line).
    """
    ray = require_ray()
    shape = connect(plan)
    count = min(shape.count, len(units))
    progress.message(
        f"render: {len(units)} batch(es) on {count} of {shape.describe()} "
        f"(cluster {plan.address or 'on this machine'})"
    )
    resources = {"num_gpus": 1, "num_cpus": 0} if shape.gpus else {"num_cpus": 1}
    actor = ray.remote(RenderWorker).options(
        max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES, **resources
    )
    shipped = ray.put(_on_cpu(model))
    device = "cuda" if shape.gpus else "cpu"
    workers = [actor.remote(shipped, job, device, shape.threads) for _ in range(count)]
    meter = _ClusterMeter(
        progress.task("render", total, unit="icons", done=done), count, len(units)
    )
    queue: deque[Unit] = deque(units)
    running: dict[Any, tuple[int, Unit]] = {}  # object ref -> (worker, unit)
    load = [0] * count
    dead: set[int] = set()

    def feed() -> None:
        for w in sorted(set(range(count)) - dead, key=lambda w: load[w]):
            while queue and load[w] < IN_FLIGHT:
                unit = queue.popleft()
                running[workers[w].render.remote(unit[1], unit[2])] = (w, unit)
                load[w] += 1

    try:
        feed()
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            w, unit = running.pop(ref)
            load[w] -= 1
            try:
                pid, batch = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                dead.add(w)
                queue.appendleft(unit)
                meter.lost(w)
                if len(dead) == count:
                    raise AtlasError(
                        f"every render worker died ({err.__class__.__name__}; each was "
                        f"restarted {MAX_RESTARTS} times)",
                        where=plan.address or "Ray on this machine",
                        fix="look at the workers' logs (/tmp/ray/session_latest/logs on each "
                        "node); run again: finished batches are kept",
                    ) from err
                feed()
                continue
            meter.finished(w, pid, len(unit[0]))
            yield unit[0], batch
            feed()
    finally:
        for worker in workers:
            ray.kill(worker)
    meter.close()


def _on_cpu(model: AtlasModel) -> AtlasModel:
    """``model`` itself when its weights are on the CPU, else a CPU copy (a worker without the
    driver's device must be able to unpickle it)."""
    if all(p.device.type == "cpu" for p in model.parameters()):
        return model
    return copy.deepcopy(model).cpu()


class _ClusterMeter:
    """The progress line of a cluster render: icons done over all workers, rate, ETA, batches
    done, workers alive, restarts seen (a worker answering from a new process id was
    restarted)."""

    def __init__(self, task: Task, workers: int, batches: int) -> None:
        self.task = task
        self.workers = workers
        self.batches = batches
        self.done = 0
        self.pids: dict[int, int] = {}
        self.dead: set[int] = set()
        self.restarts = 0
        self._describe()

    def _describe(self) -> None:
        alive = self.workers - len(self.dead)
        restarts = f", {self.restarts} restart(s)" if self.restarts else ""
        self.task.note = (
            f"{self.done}/{self.batches} batches, {alive}/{self.workers} workers alive{restarts}"
        )

    def finished(self, worker: int, pid: int, icons: int) -> None:
        if self.pids.setdefault(worker, pid) != pid:
            self.pids[worker] = pid
            self.restarts += 1
        self.done += 1
        self._describe()
        self.task.advance(icons)

    def lost(self, worker: int) -> None:
        self.dead.add(worker)
        self._describe()
        self.task.progress.message(f"render: worker {worker} is gone; its batches go elsewhere")

    def close(self) -> None:
        self.task.close()
