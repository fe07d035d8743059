"""Render the icons of an atlas: one feature visualization per kept cell of every grid level.

METHOD.md 5. Each icon maximizes the atlas objective of its cell's direction ``v`` (the cell's
mean activation) at the layer's centre position, ``dot * max(0.1, cossim)^p`` with ``v``
whitened by the layer's ``S`` when the spec says so (mixed4a..5b by default), plus the recipe's
border penalty; tries are ranked by the direction term alone, as the recipe did. Icons of all
levels form one work list (coarsest level first, cells in grid order) rendered in batches,
every batch element with its own direction (:func:`generator.optvis.render.render`).

Resumable. Every finished batch is saved at once (:class:`generator.icons.store.RenderRun`);
an interrupted render continues with the icons no saved batch holds, and nothing is rendered
twice. An icon's randomness depends only on the seed and its cell (``icon_seeds`` from
:func:`icon_seed`; the transforms' draws are shared by every batch), so the result does not
depend on where a run stopped nor on the batch size: equal bit for bit with the same batch
size, and with another one up to the last-bit rounding of batched convolutions (exactly equal
in float64, see :mod:`generator.optvis.render`).

On a cluster (``[compute] cluster``, :mod:`generator.cluster.render`) the same batches are
rendered by Ray workers and come back here to be saved: the same bytes, resumable the same way.

The parts: :mod:`generator.icons.settings` (presets and keys),
:mod:`generator.icons.objective` (objective, calibration, fidelity),
:mod:`generator.icons.renderer` (one batch rendered),
:mod:`generator.icons.batching` (batch size), :mod:`generator.icons.store` (the artifact and
the saved batches), :mod:`generator.icons.lean` (the model copy that renders).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from generator.atlas.artifacts import Grid
from generator.atlas.progress import Progress, format_duration
from generator.icons.batching import (
    choose_batch_size,
    split_batches,
)
from generator.icons.renderer import BatchJob, BatchRenderer, Unit
from generator.icons.settings import RenderSettings
from generator.icons.store import FIELDS, Icons, RenderRun

if TYPE_CHECKING:
    import torch

    from generator.cluster.session import ClusterPlan
    from generator.models.base import AtlasModel


def icon_seed(grid: int, xbin: int, ybin: int) -> int:
    """The noise stream of the icon of cell ``(xbin, ybin)`` of a ``grid`` x ``grid`` level
    (distinct for every cell of every level up to 2^20 cells per side)."""
    return (int(grid) << 40) | (int(ybin) << 20) | int(xbin)


def work_list(grids: Mapping[int, Grid]) -> list[tuple[int, int]]:
    """``(grid, cell row)`` of every icon, coarsest level first: the ids of a render."""
    return [(size, m) for size in sorted(grids) for m in range(grids[size].kept)]


@dataclass
class RenderPlan:
    """A render's state before its batches run: what is done, and what is left in batches.

    Attributes:
        run: the resumable run folder; work: ``(grid, cell row)`` of every icon
            (:func:`work_list`); done: ``[len(work)] bool``, icons a saved batch holds;
        results: the icons' arrays by :data:`~generator.icons.store.FIELDS` name, filled for
            the done ones; units: ``(ids, directions, seeds)`` of each batch left to render;
        job: what every batch shares (layer, whitening, settings, dtype).
    """

    run: RenderRun
    work: list[tuple[int, int]]
    done: np.ndarray
    results: dict[str, np.ndarray]
    units: list[Unit]
    job: BatchJob

    @property
    def total(self) -> int:
        return len(self.work)

    def record(self, ids: np.ndarray, batch: dict[str, np.ndarray]) -> None:
        """Save a rendered batch in the run folder and into :attr:`results`."""
        self.run.save(ids, batch)
        for name in FIELDS:
            self.results[name][ids] = batch[name]
        self.done[ids] = True


def plan_render(
    model: AtlasModel,
    layer: str,
    grids: Mapping[int, Grid],
    *,
    whitening: np.ndarray | None,
    settings: RenderSettings,
    run_dir: Path,
    key: str,
    device: torch.device,
    dtype: torch.dtype | None = None,
    progress: Progress,
) -> RenderPlan:
    """The :class:`RenderPlan` of :func:`render_icons` (arguments as there): the saved batches
    loaded, the icons left cut into batches of ``settings.batch_size`` or of the size the
    device's memory allows (:func:`~generator.icons.batching.choose_batch_size`). Every caller
    that renders an atlas's icons (here, or on a cluster's queue of every atlas:
    :mod:`generator.atlas.render_queue`) plans them here, so the batches are the same."""
    import torch

    dtype = dtype or torch.float32
    work = work_list(grids)
    total = len(work)
    run = RenderRun(run_dir, key, settings.icon_size)
    done, results = run.load(total)
    todo = np.flatnonzero(~done)
    if done.any():
        progress.message(f"render: resuming, {int(done.sum()):,} of {total:,} icons already done")
    if settings.batch_size is not None:
        size = settings.batch_size
    else:
        plan = choose_batch_size(
            model, layer, settings.icon_size, device, dtype=dtype, icons=len(todo)
        )
        size = plan.size
        if len(todo):
            progress.message(f"render: {plan.why}")
    units = [(ids, *unit_inputs(grids, work, ids)) for ids in split_batches(todo, size)]
    job = BatchJob(layer, whitening, settings, dtype)
    return RenderPlan(run, work, done, results, units, job)


def render_icons(
    model: AtlasModel,
    layer: str,
    grids: Mapping[int, Grid],
    *,
    whitening: np.ndarray | None,
    settings: RenderSettings,
    run_dir: Path,
    key: str,
    device: torch.device,
    dtype: torch.dtype | None = None,
    progress: Progress | None = None,
    cluster: ClusterPlan | None = None,
) -> dict[int, Icons]:
    """Render (or finish rendering) the icons of every level of ``grids``.

    Args:
        model: the atlas's model on ``device``; layer: the layer the grids come from.
        grids: ``{G: Grid}``; every kept cell gets an icon.
        whitening: ``[C, C]`` float32, or None for plain directions.
        settings: see :class:`RenderSettings`.
        run_dir: where finished batches are kept until the render completes (the caller
            removes it once the result is saved); key: the render's cache key.
        dtype: of the optimized images and the model (float32; float64 in exactness tests).
        progress: icons done, icons per second and ETA, on stderr by default.
        cluster: render the batches on Ray workers (:mod:`generator.cluster.render`; the
            same batches, the same bytes), or None: here, one batch after the other.

    Returns ``{G: Icons}`` with the cells in each grid's order.
    """
    progress = progress or Progress()
    plan = plan_render(
        model,
        layer,
        grids,
        whitening=whitening,
        settings=settings,
        run_dir=run_dir,
        key=key,
        device=device,
        dtype=dtype,
        progress=progress,
    )
    done = int(plan.done.sum())
    if cluster is not None and plan.units:
        from generator.cluster.render import render_on_cluster

        batches = render_on_cluster(
            cluster, model, plan.job, plan.units, plan.total, done, progress
        )
    else:
        meter = _Meter(progress, plan.total, done)
        batches = _render_here(model, plan.job, plan.units, device, meter)
    for ids, batch in batches:
        plan.record(ids, batch)
    return _levels(grids, plan.work, plan.results)


def unit_inputs(
    grids: Mapping[int, Grid], work: list[tuple[int, int]], ids: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """The directions ``[n, C]`` and icon seeds of the icons ``ids``: everything a batch's
    result depends on besides the model and the settings (the seeds name the cells, so a
    batch renders the same wherever and in whatever order it runs)."""
    cells = [work[i] for i in ids]
    directions = np.stack([grids[g].directions[m] for g, m in cells])
    seeds = [icon_seed(g, *grids[g].cells[m]) for g, m in cells]
    return directions, seeds


def _render_here(
    model: AtlasModel, job: BatchJob, units: list[Unit], device: torch.device, meter: _Meter
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """The batches rendered in this process, one after the other."""
    renderer = BatchRenderer(model, job, device)
    for ids, directions, seeds in units:
        yield ids, renderer.render(directions, seeds, progress=meter.stepper(len(ids)))
        meter.batch_done(len(ids))
    meter.close()


def _levels(
    grids: Mapping[int, Grid], work: list[tuple[int, int]], results: dict[str, np.ndarray]
) -> dict[int, Icons]:
    levels = {}
    for size in sorted(grids):
        rows = np.array([i for i, (g, _) in enumerate(work) if g == size], dtype=np.int64)
        levels[size] = Icons(
            grid=size,
            cells=grids[size].cells.astype(np.int64),
            **{name: results[name][rows] for name in FIELDS},
        )
    return levels


class _Meter:
    """The render's progress line: icons done (counting the running batch's progress),
    icons per second of this run, ETA."""

    def __init__(self, progress: Progress, total: int, done: int) -> None:
        self.progress = progress
        self.total = total
        self.done = done
        self.start_done = done
        self.start = progress.clock()
        self.last = float("-inf")

    def _line(self, done: float) -> str:
        elapsed = self.progress.clock() - self.start
        rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else float("inf")
        return (
            f"render: {int(done):,}/{self.total:,} icons  {rate:,.2f} icons/s  "
            f"ETA {format_duration(left)}"
        )

    def stepper(self, batch: int) -> Callable[[int, int], None]:
        """The optvis progress callback of a batch of ``batch`` icons."""
        return lambda step, steps: self.step(batch, step / max(1, steps))

    def step(self, batch: int, fraction: float) -> None:
        now = self.progress.clock()
        if now - self.last >= self.progress.draw_interval:
            self.last = now
            self.progress.draw(self._line(self.done + batch * fraction))

    def batch_done(self, n: int) -> None:
        self.done += n
        self.last = self.progress.clock()
        self.progress.draw(self._line(self.done))

    def close(self) -> None:
        elapsed = self.progress.clock() - self.start
        rendered = self.done - self.start_done
        if rendered:
            self.progress.message(
                f"render: {rendered:,} icons in {format_duration(elapsed)} "
                f"({rendered / max(elapsed, 1e-9):,.2f} icons/s)"
            )
