"""Render the icons of an atlas: one feature visualization per kept cell of every grid level.

METHOD.md 5. Each icon maximizes the atlas objective of its cell's direction ``v`` (the cell's
mean activation) at the layer's centre position, ``dot * max(0.1, cossim)^p`` with ``v``
whitened by the layer's ``S`` when the spec says so (mixed4a..5b by default), plus the recipe's
border penalty; tries are ranked by the direction term alone, as the recipe did. Icons of all
levels form one work list (coarsest level first, cells in grid order) rendered in batches,
every batch element with its own direction (:func:`generator.optvis.render.render`).

Resumable. Every finished batch is saved at once (:class:`generator.atlas.icons.RenderRun`);
an interrupted render continues with the icons no saved batch holds, and nothing is rendered
twice. An icon's randomness depends only on the seed and its cell (``icon_seeds`` from
:func:`icon_seed`; the transforms' draws are shared by every batch), so the result does not
depend on where a run stopped nor on the batch size: equal bit for bit with the same batch
size, and with another one up to the last-bit rounding of batched convolutions (exactly equal
in float64, see :mod:`generator.optvis.render`).

Fidelity, for every icon: the cosine similarity between the activation the finished icon (as
saved, uint8) produces at the layer's centre and its cell's (unwhitened) direction. Whitening
steers icons toward ``v @ S``, the rarer parts of ``v``, so its icons can score somewhat lower
on this plain measure than unwhitened ones while looking more specific.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.atlas.artifacts import Grid
from generator.atlas.icons import FIELDS, Icons, RenderRun
from generator.atlas.progress import Progress, format_duration

if TYPE_CHECKING:
    import torch

    from generator.models.base import AtlasModel

#: Presets (``[atlas.<id>.render] preset``); every key can be overridden in that table.
#: "article": the article's builds (METHOD.md 5: 80 px, 1024 steps, best of 4 tries);
#: "fast": the reference notebooks' 512 steps, one try (about 8x cheaper);
#: "tiny": for tests and smoke runs (32 px, 16 steps).
PRESETS: dict[str, dict[str, int]] = {
    "article": {"icon_size": 80, "steps": 1024, "tries": 4},
    "fast": {"icon_size": 80, "steps": 512, "tries": 1},
    "tiny": {"icon_size": 32, "steps": 16, "tries": 1},
}
DEFAULT_PRESET = "article"

#: The recipe's cosine exponent p (METHOD.md 5: 2 in the recipe, 4 in the notebooks) and
#: Adam's learning rate (the same as generator.optvis.render.LEARNING_RATE).
DEFAULT_COSSIM_POW = 2.0
DEFAULT_LR = 0.05

#: Version of what the render computes; part of its cache key.
RENDER_VERSION = 1

#: Largest batch the heuristic picks. CUDA: a render step costs about the same from 64 to 256
#: icons on an H100 (launch-bound; bench/RESULTS.md, "Feature visualization"), so batches grow
#: until memory binds, up to 512 (the benchmarked range). CPU: throughput rose up to 64 icons
#: per batch and flattens beyond (the recipe's batches were 32..100).
MAX_BATCH = {"cuda": 512, "cpu": 64}

#: Share of free memory the heuristic lets a batch use (CUDA: free device memory; CPU:
#: available RAM), and the factor on the measured saved-activation bytes per icon that covers
#: the backward pass's transient gradients.
MEMORY_SHARE = {"cuda": 0.5, "cpu": 0.25}
TRANSIENT_FACTOR = 2.0

#: Keys of ``[atlas.<id>.render]`` read here (compose reads its own, see compose.py).
RENDER_KEYS = (
    "preset",
    "icon_size",
    "steps",
    "tries",
    "batch_size",
    "lr",
    "cossim_pow",
    "border",
    "seed",
    "autocast",
    "channels_last",
)
AUTOCAST = {"off": None, "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class RenderSettings:
    """How icons are rendered (a preset with the spec's overrides).

    Attributes:
        preset: the preset the values started from.
        icon_size: S, icon side in px; the network sees this size (no upsampling).
        steps, tries: Adam steps per try; tries per icon (the best by the direction term).
        lr: Adam's learning rate; cossim_pow: p of the atlas objective.
        border: add the recipe's border penalty.
        seed: the render's seed (icons also depend on their cell).
        autocast: ``"off"``, ``"bf16"`` or ``"fp16"``: mixed precision of the forward.
        channels_last: None (choose for the device), True or False.
        batch_size: icons per batch, None for the memory heuristic.
    """

    preset: str = DEFAULT_PRESET
    icon_size: int = 80
    steps: int = 1024
    tries: int = 4
    lr: float = DEFAULT_LR
    cossim_pow: float = DEFAULT_COSSIM_POW
    border: bool = True
    seed: int = 0
    autocast: str = "off"
    channels_last: bool | None = None
    batch_size: int | None = None

    def key_parts(self) -> dict[str, Any]:
        """What changes the icons (batch size, channels_last and device only change float
        rounding, so a render may resume with other ones)."""
        parts = asdict(self)
        for name in ("preset", "channels_last", "batch_size"):
            parts.pop(name)
        return parts


def render_settings(
    table: Mapping[str, Any], *, seed: int, problems: list[tuple[str, Any, str]]
) -> RenderSettings:
    """The :class:`RenderSettings` of a ``render`` table (keys :data:`RENDER_KEYS`; others are
    left to the caller); each bad value is appended to ``problems`` as ``(key, value,
    expected)`` and replaced by its default."""
    preset = table.get("preset", DEFAULT_PRESET)
    if preset not in PRESETS:
        problems.append(("render.preset", preset, " | ".join(f'"{p}"' for p in PRESETS)))
        preset = DEFAULT_PRESET
    values: dict[str, Any] = {"preset": preset, "seed": seed, **PRESETS[preset]}
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "icon_size": (lambda v: _is_int(v) and 8 <= v <= 1024, "an integer in [8, 1024]"),
        "steps": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "tries": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "lr": (lambda v: _is_number(v) and 0 < v <= 10, "a number in (0, 10]"),
        "cossim_pow": (lambda v: _is_number(v) and 0 <= v <= 16, "a number in [0, 16]"),
        "border": (lambda v: isinstance(v, bool), "true or false"),
        "autocast": (lambda v: v in AUTOCAST, " | ".join(f'"{a}"' for a in AUTOCAST)),
        "channels_last": (lambda v: isinstance(v, bool) or v == "auto", 'true, false or "auto"'),
    }
    for key, (ok, expected) in checks.items():
        if key not in table:
            continue
        value = table[key]
        if not ok(value):
            problems.append((f"render.{key}", value, expected))
            continue
        values[key] = float(value) if key in ("lr", "cossim_pow") else value
    if values.get("channels_last") == "auto":
        values["channels_last"] = None
    return RenderSettings(**values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def icon_seed(grid: int, xbin: int, ybin: int) -> int:
    """The noise stream of the icon of cell ``(xbin, ybin)`` of a ``grid`` x ``grid`` level
    (distinct for every cell of every level up to 2^20 cells per side)."""
    return (int(grid) << 40) | (int(ybin) << 20) | int(xbin)


# -- batch size ------------------------------------------------------------------------------


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


# -- fidelity --------------------------------------------------------------------------------


def icon_fidelity(
    model: AtlasModel,
    layer: str,
    icons: np.ndarray,
    directions: np.ndarray,
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
    batch: int = 256,
) -> np.ndarray:
    """Cosine similarity ``[B] float32`` in [-1, 1] between each icon's activation at the
    layer's centre ``(h // 2, w // 2)`` and its direction.

    Args:
        icons: ``[B, S, S, 3] uint8`` (or float in [0, 1]).
        directions: ``[B, C]`` float, the cells' mean activations.
    """
    import torch

    dtype = dtype or torch.float32
    out = np.zeros(len(icons), dtype=np.float32)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(icons), batch):
                chunk = torch.as_tensor(np.asarray(icons[start : start + batch]))
                images = chunk.to(device=device).permute(0, 3, 1, 2).to(dtype)
                if chunk.dtype == torch.uint8:
                    images = images / 255.0
                act = model.forward_to(images, [layer])[layer]
                h, w = act.shape[-2:]
                centre = act[:, :, h // 2, w // 2].double()
                v = torch.as_tensor(directions[start : start + batch], device=device).double()
                cos = torch.nn.functional.cosine_similarity(centre, v, dim=1, eps=1e-12)
                out[start : start + len(chunk)] = cos.float().cpu().numpy()
    finally:
        model.train(training)
    return out


# -- the render ------------------------------------------------------------------------------


def work_list(grids: Mapping[int, Grid]) -> list[tuple[int, int]]:
    """``(grid, cell row)`` of every icon, coarsest level first: the ids of a render."""
    return [(size, m) for size in sorted(grids) for m in range(grids[size].kept)]


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

    Returns ``{G: Icons}`` with the cells in each grid's order.
    """
    import torch

    from generator.optvis import objectives as obj
    from generator.optvis import render as optvis

    progress = progress or Progress()
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
    channels_last = settings.channels_last
    if channels_last is None:
        channels_last = prefer_channels_last(device)
    autocast = AUTOCAST[settings.autocast]
    white = None if whitening is None else torch.as_tensor(whitening, device=device, dtype=dtype)
    meter = _Meter(progress, total, int(done.sum()))
    for ids in split_batches(todo, size):
        cells = [work[i] for i in ids]
        directions = np.stack([grids[g].directions[m] for g, m in cells])
        seeds = [icon_seed(g, *grids[g].cells[m]) for g, m in cells]
        v = torch.as_tensor(directions, device=device, dtype=dtype)
        direction = obj.atlas_direction(layer, v, whitening=white, cossim_pow=settings.cossim_pow)
        goal = direction + obj.border_penalty() if settings.border else direction
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
            dtype=dtype,
            autocast=getattr(torch, autocast) if autocast else None,
            channels_last=channels_last,
            progress=meter.stepper(len(ids)),
        )
        icons = rendered.icons().numpy()
        batch = {
            "images": icons,
            "values": rendered.values.numpy(),
            "fidelity": icon_fidelity(model, layer, icons, directions, device=device, dtype=dtype),
            "best_try": rendered.best_try.numpy(),
        }
        run.save(ids, batch)
        for name in FIELDS:
            results[name][ids] = batch[name]
        meter.batch_done(len(ids))
    meter.close()
    return _levels(grids, work, results)


def prefer_channels_last(device: torch.device) -> bool:
    """Whether to run the model channels-last when the spec does not say: yes on CUDA
    (tensor-core convolutions) and on the CPU, where oneDNN's NHWC convolutions beat the NCHW
    path: 1.9x on full-width InceptionV1 (bench/RESULTS.md, "Feature visualization") and
    1.3..1.6x on the demo model (64 px, batch 64; "Atlas rendering"); no elsewhere."""
    return device.type in ("cuda", "cpu")


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
