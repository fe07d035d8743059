"""Where the compute stages run: the device and the CPU thread pools.

:func:`resolve_device` turns ``[compute] device`` (or ``--device``) into a torch device;
:func:`torch_threads` applies ``[compute] threads`` for the duration of a computation. Every
compute entry point (bundles, grids, quality, experiments) goes through both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from generator.errors import SetupError

if TYPE_CHECKING:
    import torch


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
