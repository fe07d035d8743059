"""One batch of icons rendered: what a render in this process and a Ray worker both run.

:class:`BatchJob` is what every batch of a render shares besides the model; a
:class:`BatchRenderer` holds a model on a device and renders batches of directions (each with
its icon seed) into the arrays of :data:`generator.icons.store.FIELDS`. The objective and the
optimization are :func:`generator.icons.objective.icon_objective` and
:func:`generator.optvis.render.render`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from generator.icons.objective import icon_fidelity, icon_objective
from generator.icons.settings import AUTOCAST, RenderSettings

if TYPE_CHECKING:
    import torch

    from generator.models.base import AtlasModel

#: One unit of work: ``(ids [n] int64, directions [n, C] float32, icon seeds [n])``.
Unit = tuple[np.ndarray, np.ndarray, list[int]]


@dataclass(frozen=True)
class BatchJob:
    """What every batch of a render shares besides the model: the layer, the whitening
    (``[C, C]`` float32 or None), the settings and the dtype (small enough to ship to every
    worker of a cluster)."""

    layer: str
    whitening: np.ndarray | None
    settings: RenderSettings
    dtype: torch.dtype


class BatchRenderer:
    """Renders batches of icons with one model on one device (``model`` already there)."""

    def __init__(self, model: AtlasModel, job: BatchJob, device: torch.device) -> None:
        import torch

        self.model, self.job, self.device = model, job, device
        white = job.whitening
        self.white = (
            None if white is None else torch.as_tensor(white, device=device, dtype=job.dtype)
        )
        channels_last = job.settings.channels_last
        self.channels_last = (
            prefer_channels_last(device) if channels_last is None else channels_last
        )
        autocast = AUTOCAST[job.settings.autocast]
        self.autocast = getattr(torch, autocast) if autocast else None

    def render(
        self,
        directions: np.ndarray,
        seeds: list[int],
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """The :data:`FIELDS` arrays of the icons of ``directions`` ``[n, C]`` (one seed each)."""
        from generator.optvis import render as optvis

        model, job, settings, device = self.model, self.job, self.job.settings, self.device
        goal, direction = icon_objective(
            job.layer,
            directions,
            whitening=self.white,
            cossim_pow=settings.cossim_pow,
            border=settings.border,
            calibrate=settings.calibrate,
            device=device,
            dtype=job.dtype,
        )
        rendered = optvis.render(
            model,
            goal,
            size=settings.icon_size,
            steps=settings.steps,
            tries=settings.tries,
            lr=settings.lr,
            seed=settings.seed,
            icon_seeds=seeds,
            select_by=direction,
            device=device,
            dtype=job.dtype,
            autocast=self.autocast,
            channels_last=self.channels_last,
            progress=progress,
        )
        icons = rendered.icons().numpy()
        fidelity = icon_fidelity(
            model, job.layer, icons, directions, device=device, dtype=job.dtype
        )
        return {
            "images": icons,
            "values": rendered.values.numpy(),
            "fidelity": fidelity,
            "best_try": rendered.best_try.numpy(),
        }


def prefer_channels_last(device: torch.device) -> bool:
    """Whether to run the model channels-last when the spec does not say: yes on CUDA
    (tensor-core convolutions) and on the CPU, where oneDNN's NHWC convolutions beat the NCHW
    path: 1.9x on full-width InceptionV1 (bench/RESULTS.md, "Feature visualization") and
    1.3..1.6x on the demo model (64 px, batch 64; "Atlas rendering"); no elsewhere."""
    return device.type in ("cuda", "cpu")
