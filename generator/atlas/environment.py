"""Where and with what the compute stages run: one :class:`ComputeEnvironment`.

:meth:`ComputeEnvironment.from_config` makes it from ``atlas.toml`` (``[compute]``, the model
and data-set registries' tables, the cache folder, the project root) and a ``--device``
override; every compute entry point (bundles, grids, quality, experiments) then runs inside
:meth:`ComputeEnvironment.threads_capped` and opens its model and images through
:meth:`~ComputeEnvironment.open_model` and :meth:`~ComputeEnvironment.open_data`, so they are
opened one way everywhere. :func:`resolve_device` turns a device name into a torch device;
:func:`torch_threads` applies a thread count for the duration of a block.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import SetupError

if TYPE_CHECKING:
    import torch

    from generator.cluster.session import ClusterPlan
    from generator.config import Config
    from generator.data.base import ImageSource
    from generator.models.base import AtlasModel


#: Images per batch when collecting, unless ``[compute] batch_size`` says otherwise.
BATCH_SIZE = 64


@dataclass(frozen=True)
class ComputeEnvironment:
    """Everything a computation needs besides its spec.

    Attributes:
        cache: the project's cache folder (``[paths] cache``).
        device: where models run.
        models, datasets: ``atlas.toml``'s ``[models]`` and ``[datasets]`` tables.
        root: the folder relative paths of those tables start from (atlas.toml's).
        threads: CPU threads for the computation (None: torch's own choice).
        batch_size, workers: image loading (results do not depend on them beyond float
            rounding).
        cluster: where collection, icon rendering, example cropping and patch experiments are
            spread (``[compute] cluster``; None: this process).
    """

    cache: Path
    device: torch.device
    models: Mapping[str, Any] = field(default_factory=dict)
    datasets: Mapping[str, Any] = field(default_factory=dict)
    root: Path | None = None
    threads: int | None = None
    batch_size: int = BATCH_SIZE
    workers: int = 0
    cluster: ClusterPlan | None = None
    #: Data sets opened so far, by name (:meth:`open_data` opens each once).
    _opened: dict[str, tuple[ImageSource, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_config(cls, config: Config, *, device: str | None = None) -> ComputeEnvironment:
        """The environment of a project's :class:`generator.config.Config`; ``device``
        overrides ``[compute] device`` (``--device``)."""
        from generator.cluster.session import plan_cluster

        compute = config.compute
        where = resolve_device(device or compute.device)
        cluster = plan_cluster(
            compute.cluster,
            workers=compute.cluster_workers,
            device=where,
            threads=compute.threads,
        )
        return cls(
            cache=Path(config.paths.cache),
            device=where,
            models=dict(config.models),
            datasets=dict(config.datasets),
            root=config.root,
            threads=compute.threads,
            batch_size=BATCH_SIZE if compute.batch_size is None else compute.batch_size,
            workers=0 if compute.workers is None else compute.workers,
            cluster=cluster,
        )

    def threads_capped(self) -> contextlib.AbstractContextManager[None]:
        """The block in which a computation runs: :attr:`threads` CPU threads."""
        return torch_threads(self.threads)

    def open_model(self, name: str) -> AtlasModel:
        """Model ``name`` (built in, or a ``[models.<name>]`` table) on :attr:`device`."""
        from generator.models.model_spec import resolve_spec
        from generator.models.registry import load_model

        return load_model(
            resolve_spec(name, dict(self.models), base_dir=self.root), device=self.device
        )

    def open_data(self, name: str) -> tuple[ImageSource, str]:
        """Data set ``name`` (built in, or a ``[datasets.<name>]`` table) and its resize mode;
        an unknown name fails listing the known ones. Opened once per environment: the atlases
        computed with one environment share it (an image folder of a million files is listed
        once, not once per atlas)."""
        if name not in self._opened:
            self._opened[name] = self._open_data(name)
        return self._opened[name]

    def _open_data(self, name: str) -> tuple[ImageSource, str]:
        from generator.data.registry import BUILTINS, dataset_spec, open_dataset

        tables = dict(self.datasets)
        if name not in tables and name not in BUILTINS:
            open_dataset(name, tables=tables, cache_dir=self.cache)  # raises, listing names
        data_spec = dataset_spec(name, tables.get(name))
        source = open_dataset(data_spec, tables=tables, cache_dir=self.cache, base_dir=self.root)
        return source, data_spec.resize


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SetupError(
            f"device {name!r} was asked for, but CUDA is not available here",
            where="[compute] device / --device",
            expected='"auto" or "cpu" on this machine',
            fix="use --device cpu (or auto)",
        )
    return device


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Within the block, the compute stages use ``threads`` CPU threads (None: unchanged;
    ``[compute] threads``, validated by :mod:`generator.config`).

    torch's intra-op pool, and every OpenMP/BLAS pool: those already loaded through
    threadpoolctl, those loaded inside the block (scikit-learn's OpenMP runtime, imported by the
    t-SNE layout) through ``OMP_NUM_THREADS``, which an OpenMP runtime reads when it loads. On a
    machine whose cores other processes share, ``threads = 1`` avoids oversubscribed pools
    (bench/RESULTS.md, "Demo build": t-SNE of 30 points 18 s on 2 threads, 0.16 s on one).
    """
    if threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    omp_before = os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
        if omp_before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp_before
