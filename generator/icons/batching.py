"""How many icons to render at once: a documented heuristic from measured memory.

A render step keeps, for the backward pass, every activation of the truncated forward of each
icon; those bytes decide how many icons fit. :func:`saved_bytes_per_icon` measures them on the
model itself (``torch.autograd.graph.saved_tensors_hooks`` around one forward), and
:func:`choose_batch_size` fits as many icons as :data:`MEMORY_SHARE` of the free memory allows
at :data:`TRANSIENT_FACTOR` times those bytes, capped by :data:`MAX_BATCH`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from generator.models.base import AtlasModel

#: Largest batch the heuristic picks. CUDA: a render step cost about the same from 64 to 256
#: icons on an H100 (launch-bound; bench/RESULTS.md, "Feature visualization"), so batches grow
#: until memory binds, up to 2048 (InceptionV1 mixed4c at 80 px keeps ~4.2 MiB per icon for
#: the backward pass: 2048 icons ~17 GiB with the transient factor; a 40x40 atlas is then one
#: batch; bench/render_gpu.py sweeps 64..2048). CPU: 549 / 704 / 651 icon-steps/s at 32 / 64 /
#: 128 icons on the demo model (bench/RESULTS.md, "Atlas rendering"), the recipe's batches
#: were 32..100.
MAX_BATCH = {"cuda": 2048, "cpu": 64}

#: Share of free memory the heuristic lets a batch use (CUDA: free device memory; CPU:
#: available RAM), and the factor on the measured saved-activation bytes per icon that covers
#: the backward pass's transient gradients.
MEMORY_SHARE = {"cuda": 0.5, "cpu": 0.25}
TRANSIENT_FACTOR = 2.0


@dataclass(frozen=True)
class BatchPlan:
    """The batch size chosen for a device: ``size`` icons; why, in words."""

    size: int
    per_icon_bytes: int
    budget_bytes: int
    why: str


def saved_bytes_per_icon(
    model: AtlasModel, layer: str, icon_size: int, device: torch.device, dtype: torch.dtype
) -> int:
    """Bytes autograd keeps for the backward pass of one icon's forward to ``layer`` (measured
    on a batch of 2 with ``saved_tensors_hooks``; weights and shared storage counted once and
    not at all, respectively)."""
    import torch

    weights = {p.data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights and ptr not in seen:
            seen.add(ptr)
            total += t.untyped_storage().nbytes()
        return t

    images = torch.full((2, 3, icon_size, icon_size), 0.5, device=device, dtype=dtype)
    images.requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.forward_to(images, [layer])
    return max(1, total // 2)


def _free_bytes(device: torch.device) -> int:
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not Linux: assume 4 GiB
        return 4 << 30


def choose_batch_size(
    model: AtlasModel,
    layer: str,
    icon_size: int,
    device: torch.device,
    *,
    dtype: torch.dtype | None = None,
    icons: int | None = None,
) -> BatchPlan:
    """The batch size for ``device``: as many icons as fit in :data:`MEMORY_SHARE` of the free
    memory at :data:`TRANSIENT_FACTOR` x the measured saved bytes per icon, at most
    :data:`MAX_BATCH` for the device type and ``icons`` (the number left to render), at least 1.
    """
    import torch

    per_icon = saved_bytes_per_icon(model, layer, icon_size, device, dtype or torch.float32)
    kind = "cuda" if device.type == "cuda" else "cpu"
    budget = int(_free_bytes(device) * MEMORY_SHARE[kind])
    fit = int(budget // (per_icon * TRANSIENT_FACTOR))
    size = max(1, min(MAX_BATCH[kind], fit, icons if icons else MAX_BATCH[kind]))
    why = (
        f"{size} icons per batch ({per_icon / 2**20:.1f} MiB saved per icon, "
        f"{MEMORY_SHARE[kind]:.0%} of {budget / MEMORY_SHARE[kind] / 2**30:.1f} GiB free "
        f"{'device memory' if kind == 'cuda' else 'RAM'}, at most {MAX_BATCH[kind]} on {kind})"
    )
    return BatchPlan(size=size, per_icon_bytes=per_icon, budget_bytes=budget, why=why)


def split_batches(ids: np.ndarray, size: int) -> list[np.ndarray]:
    """``ids`` cut into ``ceil(n / size)`` consecutive batches of near-equal length (never
    longer than ``size``), so the last batch is not a small remainder."""
    if not len(ids):
        return []
    count = -(-len(ids) // size)
    return [part for part in np.array_split(ids, count) if len(part)]
