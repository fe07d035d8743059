"""Where cluster work runs: Ray started on this machine, or an existing Ray cluster.

``[compute] cluster`` (``--cluster``), checked by :mod:`generator.config`:

* ``"none"`` (default): no Ray; every stage runs in this process.
* ``"local"``: start Ray on this machine with one worker per GPU when computing on CUDA, else
  ``cluster_workers`` CPU workers (default: one per core).
* ``"auto"``: ``"local"`` when computing on CUDA and this machine has more than one GPU, else
  ``"none"``.
* an address: join a running cluster, ``"ray://head:10001"`` (Ray Client, from any machine) or
  ``"head:6379"`` (the head's address, from a machine of the cluster); one worker per GPU of the
  cluster when computing on CUDA, else ``cluster_workers`` (default: one per CPU of the cluster).

:func:`plan_cluster` resolves the value when the environment is made (a missing Ray fails there,
naming the extra); :func:`connect` starts or joins Ray the first time work is sent. The session
lasts as long as the process (Ray shuts it down at exit), so the atlases of one build share it;
a session already started (``ray.init`` by the caller, as the tests do) is used as it is.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from generator.errors import SetupError

if TYPE_CHECKING:
    import torch

#: How to install the extra (named by every "Ray is missing" error).
INSTALL = "pip install -e '.[cluster]'"


@dataclass(frozen=True)
class ClusterPlan:
    """Where cluster work goes (see the module docstring).

    Attributes:
        address: the cluster to join; None: start Ray on this machine.
        workers: how many workers (None: one per GPU, or one per CPU).
        gpus: whether each worker takes one GPU (computing on CUDA) or runs on CPUs.
        threads: CPU threads of each CPU worker (None: the CPUs shared out among them).
    """

    address: str | None
    workers: int | None
    gpus: bool
    threads: int | None = None


@dataclass(frozen=True)
class Workers:
    """The workers a computation starts on a connected cluster: ``count`` of them, each with
    one GPU (``gpus``) or ``threads`` CPU threads."""

    count: int
    gpus: bool
    threads: int

    def describe(self) -> str:
        each = "one GPU" if self.gpus else f"{self.threads} CPU thread(s)"
        return f"{self.count} Ray worker(s), {each} each"


def plan_cluster(
    cluster: str, *, workers: int | None, device: torch.device, threads: int | None = None
) -> ClusterPlan | None:
    """The plan of a ``[compute] cluster`` value (already validated), or None for no cluster.

    Raises:
        SetupError: a cluster is asked for and Ray is not installed.
    """
    gpus = device.type == "cuda"
    if cluster == "none":
        return None
    if cluster == "auto":
        if not gpus or _local_gpus() < 2:
            return None
        cluster = "local"
    require_ray(f'[compute] cluster = "{cluster}"')
    address = None if cluster == "local" else cluster
    return ClusterPlan(address=address, workers=workers, gpus=gpus, threads=threads)


def require_ray(why: str = "a Ray cluster") -> ModuleType:
    """The ``ray`` module, or a :class:`SetupError` naming the extra that installs it."""
    try:
        import ray
    except ImportError as err:
        raise SetupError(
            f"{why} needs Ray, which is not installed here",
            where="[compute] cluster / --cluster",
            expected='Ray installed, or cluster = "none"',
            fix=f'run `{INSTALL}` (or set [compute] cluster = "none")',
        ) from err
    return ray


def connect(plan: ClusterPlan) -> Workers:
    """Start or join Ray for ``plan`` (once per process) and size its workers: ``plan.workers``
    (or one per GPU, or per CPU), at most as many as the cluster has GPUs (CPUs)."""
    ray = require_ray()
    cores = os.cpu_count() or 1
    if not ray.is_initialized():
        options = {"include_dashboard": False, "logging_level": logging.WARNING}
        try:
            if plan.address is None:
                gpus = _local_gpus() if plan.gpus else 0
                count = plan.workers or gpus or cores
                ray.init(num_cpus=max(count, cores), num_gpus=gpus, **options)
            else:
                ray.init(address=plan.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise SetupError(
                f"cannot start or join the Ray cluster ({err})",
                where="[compute] cluster / --cluster",
                got=plan.address or "local",
                fix="start its head with `ray start --head` and give its address "
                '("ray://host:10001" or "host:6379"), or use cluster = "local"',
            ) from err
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", cores)))
    if plan.gpus and gpus < 1:
        raise SetupError(
            "the Ray cluster has no GPU, but the computation runs on CUDA",
            where="[compute] cluster / device",
            got=str(resources),
            fix='add GPU nodes to the cluster, or set [compute] device = "cpu"',
        )
    # One GPU, or one CPU, per worker: more workers than the cluster has would wait forever.
    if plan.gpus:
        return Workers(count=min(plan.workers or gpus, gpus), gpus=True, threads=plan.threads or 1)
    count = min(plan.workers or cpus, cpus)
    return Workers(count=count, gpus=False, threads=plan.threads or max(1, cpus // count))


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
