"""Batches of the synthetic world for training and validating the demo model.

Which indices each use may draw is fixed in :mod:`generator.models.train_settings`; the
training stream of seed ``s`` is images ``train_start(s), train_start(s) + 1, ...`` in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from generator.data.world import labels_of, render_batch
from generator.models.train_settings import DEMO_WORLD_SEED, train_start


def world_batch(
    start: int, count: int, *, size: int, world_seed: int = DEMO_WORLD_SEED
) -> tuple[Tensor, Tensor]:
    """Images ``[start, start + count)`` of the world: ``uint8 [B, 3, S, S]`` (a channels-last
    view of the renderer's ``[B, S, S, 3]``, no copy) and ``int64 [B]`` labels, on the CPU."""
    indices = np.arange(start, start + count, dtype=np.int64)
    images = render_batch(indices, seed=world_seed, size=size)
    labels = labels_of(indices, world_seed)
    return torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(labels)


def to_float(images: Tensor) -> Tensor:
    """``uint8 [B, 3, S, S]`` -> ``float32`` in [0, 1], memory format kept (channels last)."""
    return images.to(torch.float32).div_(255.0)


def training_batches(
    seed: int,
    batch_size: int,
    steps: int,
    *,
    size: int,
    first_step: int = 0,
    prefetch: bool = True,
    world_seed: int = DEMO_WORLD_SEED,
) -> Iterator[tuple[Tensor, Tensor]]:
    """The training stream: batch ``k`` holds images ``train_start(seed) + k * batch_size`` on.

    Yields ``(uint8 [B, 3, S, S], int64 [B])`` for steps ``first_step .. steps - 1``. With
    ``prefetch`` the next batch is drawn in a background thread while the caller trains on this
    one (numpy releases the GIL in its array loops); the batches are the same either way.
    """
    base = train_start(seed)

    def draw(step: int) -> tuple[Tensor, Tensor]:
        return world_batch(base + step * batch_size, batch_size, size=size, world_seed=world_seed)

    if not prefetch:
        for step in range(first_step, steps):
            yield draw(step)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-data") as pool:
        pending: Future[tuple[Tensor, Tensor]] | None = None
        for step in range(first_step, steps):
            batch = pending.result() if pending is not None else draw(step)
            pending = pool.submit(draw, step + 1) if step + 1 < steps else None
            yield batch
