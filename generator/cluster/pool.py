"""A pool of Ray actors, one model load per worker, that runs a stage's units of work.

The cluster stages use it: icon rendering (:mod:`.render`, a unit is a batch of icons),
activation collection (:mod:`.collect`, a unit is a chunk of the sample list), the dataset
examples' crops (:mod:`.examples`, a unit is a group of images) and patch experiments
(:mod:`.experiments`, a unit is a batch of one pair's images, patched at every placement).
The driver (this process) keeps everything that is saved: :func:`run_on_pool` yields each
unit's result as it comes back through Ray's object store, in the order units finish, and the
caller writes it into its resumable run folder as it writes a local result, so the cache needs
no shared file system.

A worker is an instance of the stage's actor class, made once per worker process from
``shipped`` (put in the object store once: the model from the CPU, the job, the data source)
and the worker's ``device`` and ``threads``; its ``run`` method takes one unit's arguments and
returns ``(its process id, the result)``. A unit's result must depend only on its arguments,
so it is the same bytes on any worker, in any order, and when it is run again.

Faults: a worker process that dies is restarted by Ray (:data:`MAX_RESTARTS`, its constructor
run again: what was shipped comes from the object store again) and its units are retried
(:data:`MAX_TASK_RETRIES`); a worker that cannot be restarted is dropped and its units go to
the others; the stage fails only when no worker is left. The progress line counts the stage's
items over all workers, with the rate, the ETA, the units done, the workers alive and the
restarts seen.
"""

from __future__ import annotations

import copy
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from generator.atlas.progress import Progress, Task
from generator.cluster.session import ClusterPlan, connect, require_ray
from generator.errors import AtlasError

if TYPE_CHECKING:
    from generator.models.base import AtlasModel

#: Restarts of a dead worker process, and retries of the units it was running, before it is
#: given up (a node lost for good; a unit that kills its worker every time).
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3

#: Units kept in flight per worker: the next one is queued while one runs, so a worker does
#: not wait for the driver between units.
IN_FLIGHT = 2

U = TypeVar("U")


@dataclass(frozen=True)
class Names:
    """How a stage's work is named in its messages and progress line.

    Attributes:
        stage: the messages' prefix (``"render"``).
        label: the progress line's label (``"render"``, ``"collect mixed4c"``).
        items: what the progress line counts (``"icons"``, ``"images"``).
        units, units_maybe: a unit of work in the plural (``"batches"``) and in a count that
            may be one (``"batch(es)"``).
    """

    stage: str
    label: str
    items: str
    units: str
    units_maybe: str


@dataclass(frozen=True)
class PoolJob(Generic[U]):
    """What a pool runs: the actor class, what each worker is made from, the units.

    Attributes:
        worker: the actor class; ``worker(*shipped, device, threads)``, then
            ``run(*arguments(unit))`` -> ``(pid, result)``.
        shipped: the constructor's first arguments, each put in the object store once.
        units: the units of work, in the order they are handed out.
        arguments: a unit's arguments to ``run``.
        size: a unit's items (for the progress line).
    """

    worker: type
    shipped: Sequence[Any]
    units: Sequence[U]
    arguments: Callable[[U], tuple[Any, ...]]
    size: Callable[[U], int]


def run_on_pool(
    plan: ClusterPlan,
    job: PoolJob[U],
    names: Names,
    *,
    total: int,
    done: int,
    progress: Progress,
) -> Iterator[tuple[U, Any]]:
    """``(unit, result)`` of every unit of ``job``, in the order they finish (see the module
    docstring); total, done: items of the whole stage and those finished before."""
    ray = require_ray()
    shape = connect(plan)
    count = min(shape.count, len(job.units))
    progress.message(
        f"{names.stage}: {len(job.units)} {names.units_maybe} on {count} of {shape.describe()} "
        f"(cluster {plan.address or 'on this machine'})"
    )
    resources = {"num_gpus": 1, "num_cpus": 0} if shape.gpus else {"num_cpus": 1}
    actor = ray.remote(_with_pid(job.worker)).options(
        max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES, **resources
    )
    shipped = [ray.put(value) for value in job.shipped]
    device = "cuda" if shape.gpus else "cpu"
    workers = [actor.remote(*shipped, device, shape.threads) for _ in range(count)]
    # each worker's process id, asked first: it answers before any unit (an actor runs its
    # calls in order), so a process killed before its first unit is seen as restarted too
    started = [worker.process_id.remote() for worker in workers]
    meter = _PoolMeter(
        progress.task(names.label, total, unit=names.items, done=done),
        names,
        count,
        len(job.units),
    )
    queue: deque[U] = deque(job.units)
    running: dict[Any, tuple[int, U]] = {}  # object ref -> (worker, unit)
    load = [0] * count
    dead: set[int] = set()

    def feed() -> None:
        for w in sorted(set(range(count)) - dead, key=lambda w: load[w]):
            while queue and load[w] < IN_FLIGHT:
                unit = queue.popleft()
                running[workers[w].run.remote(*job.arguments(unit))] = (w, unit)
                load[w] += 1

    try:
        feed()
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            w, unit = running.pop(ref)
            load[w] -= 1
            try:
                pid, result = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                dead.add(w)
                queue.appendleft(unit)
                meter.lost(w)
                if len(dead) == count:
                    raise AtlasError(
                        f"every {names.stage} worker died ({err.__class__.__name__}; each was "
                        f"restarted {MAX_RESTARTS} times)",
                        where=plan.address or "Ray on this machine",
                        fix="look at the workers' logs (/tmp/ray/session_latest/logs on each "
                        f"node); run again: finished {names.units} are kept",
                    ) from err
                feed()
                continue
            if w not in meter.pids:
                meter.pids[w] = ray.get(started[w])
            meter.finished(w, pid, job.size(unit))
            yield unit, result
            feed()
    finally:
        for worker in workers:
            ray.kill(worker)
    meter.close()


def _with_pid(worker: type) -> type:
    """``worker`` (same name: Ray titles its processes by it) with a ``process_id`` method."""

    class Reporting(worker):
        def process_id(self) -> int:
            return os.getpid()

    Reporting.__name__ = Reporting.__qualname__ = worker.__name__
    return Reporting


def on_cpu(model: AtlasModel) -> AtlasModel:
    """``model`` itself when its weights are on the CPU, else a CPU copy (a worker without the
    driver's device must be able to unpickle it)."""
    if all(p.device.type == "cpu" for p in model.parameters()):
        return model
    return copy.deepcopy(model).cpu()


class _PoolMeter:
    """The progress line of a pool: items done over all workers, rate, ETA, units done,
    workers alive, restarts seen (a worker answering from a new process id was restarted)."""

    def __init__(self, task: Task, names: Names, workers: int, units: int) -> None:
        self.task = task
        self.names = names
        self.workers = workers
        self.units = units
        self.done = 0
        self.pids: dict[int, int] = {}  # worker -> its process (the first: as it started)
        self.dead: set[int] = set()
        self.restarts = 0
        self._describe()

    def _describe(self) -> None:
        alive = self.workers - len(self.dead)
        restarts = f", {self.restarts} restart(s)" if self.restarts else ""
        self.task.note = (
            f"{self.done}/{self.units} {self.names.units}, {alive}/{self.workers} workers alive"
            f"{restarts}"
        )

    def finished(self, worker: int, pid: int, items: int) -> None:
        if self.pids.setdefault(worker, pid) != pid:
            self.pids[worker] = pid
            self.restarts += 1
        self.done += 1
        self._describe()
        self.task.advance(items)

    def lost(self, worker: int) -> None:
        self.dead.add(worker)
        self._describe()
        self.task.progress.message(
            f"{self.names.stage}: worker {worker} is gone; its {self.names.units} go elsewhere"
        )

    def close(self) -> None:
        self.task.close()
