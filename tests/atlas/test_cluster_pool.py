"""The actor pool's faults on a local Ray (two CPU workers): a worker lost for good (its process
dies on every unit, through every restart Ray gives it, like a node that is gone) is dropped,
its units go to the other worker and every result still comes back; when no worker is left,
the stage fails with an error that says so and how to go on.

The workers here are a small class of this file (pickled by value to the workers), so the pool
itself is what runs: the stages' own workers are tested in test_cluster*.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from generator.atlas.progress import Progress
from generator.cluster.pool import MAX_RESTARTS, Names, PoolJob, run_on_pool
from generator.cluster.session import ClusterPlan
from generator.errors import AtlasError

NAMES = Names(stage="square", label="square", items="numbers", units="units", units_maybe="unit(s)")


def fragile_worker() -> type:
    """A worker class whose first ``doomed`` actors to run a unit die on every unit (their
    process exits; a restarted process is the same actor and dies again)."""

    class Fragile:
        def __init__(self, folder: str, doomed: int, device: str, threads: int) -> None:
            import ray

            self.folder = Path(folder)
            self.doomed = doomed
            self.me = ray.get_runtime_context().get_actor_id()

        def run(self, x: int) -> tuple[int, int]:
            for i in range(self.doomed):
                claim = self.folder / f"doomed-{i}"
                try:
                    fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    if claim.read_text() == self.me:
                        os._exit(1)
                    continue
                os.write(fd, self.me.encode())
                os.close(fd)
                os._exit(1)
            return os.getpid(), x * x

    return Fragile


def squares(folder: Path, doomed: int, log: io.StringIO) -> dict[int, int]:
    job = PoolJob(
        worker=fragile_worker(),
        shipped=(str(folder), doomed),
        units=list(range(12)),
        arguments=lambda x: (x,),
        size=lambda x: 1,
    )
    plan = ClusterPlan(None, workers=2, gpus=False)
    progress = Progress(log, log_interval=0.0)
    return dict(run_on_pool(plan, job, NAMES, total=12, done=0, progress=progress))


def test_a_worker_lost_for_good_is_dropped_and_the_other_finishes_its_units(
    ray_session: Any, tmp_path: Path
) -> None:
    log = io.StringIO()
    assert squares(tmp_path, 1, log) == {x: x * x for x in range(12)}
    text = log.getvalue()
    assert "square: worker " in text and "is gone; its units go elsewhere" in text
    assert "12/12 units, 1/2 workers alive" in text


def test_when_every_worker_is_lost_the_stage_fails_saying_so(
    ray_session: Any, tmp_path: Path
) -> None:
    with pytest.raises(AtlasError) as err:
        squares(tmp_path, 2, io.StringIO())
    text = str(err.value)
    assert "every square worker died" in text and f"restarted {MAX_RESTARTS} times" in text
    assert "finished units are kept" in text
