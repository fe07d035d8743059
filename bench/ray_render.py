"""Icon rendering over Ray workers against no Ray: the speed-up and Ray's cost per batch.

    python bench/ray_render.py --out bench/out/ray_render.json            # CPU: 1 and 2 workers
    python bench/ray_render.py --device cuda --out bench/out/ray_render.json  # 1 and N GPUs

One atlas level of ``--grid`` x ``--grid`` cells (every cell kept; directions: mixed4c centre
activations of seeded smooth random images) on the demo model's render copy (batch norms
folded, as ``atlas`` renders), ``--steps`` Adam steps, one try, ``--batch`` icons per batch,
rendered by :func:`generator.icons.render_icons.render_icons`:

* ``none``: in this process (CPU: ``--threads`` torch threads);
* ``ray N``: on N Ray workers of a local Ray started here (CPU: ``--threads`` threads each;
  CUDA: one GPU each), for each N of ``--workers`` (default 1 and 2; on CUDA 1 and every GPU).

Reports, per run, seconds and icons/s, the speed-up over ``none``, whether the icons are the
same bytes as ``none``'s, and, from the times the progress line reports each finished batch:
the fixed cost of a Ray render (starting its workers, shipping the model: the wait for the
first batch less one steady batch) and the steady seconds per batch; Ray's overhead per batch
is ``ray 1``'s steady seconds per batch less ``none``'s. Ray's own start (``ray.init``) is
reported once. ``none`` runs after a warm-up render.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.atlas.artifacts import Grid  # noqa: E402
from generator.atlas.progress import Progress  # noqa: E402
from generator.cluster.session import ClusterPlan  # noqa: E402
from generator.icons.lean import render_copy  # noqa: E402
from generator.icons.render_icons import render_icons  # noqa: E402
from generator.icons.settings import RenderSettings  # noqa: E402
from generator.models.registry import load_model  # noqa: E402
from generator.optvis import param as optvis_param  # noqa: E402

LAYER = "mixed4c"


def full_grid(model: Any, side: int, device: torch.device) -> Grid:
    """Every cell of a ``side`` x ``side`` level kept, each with the centre activation of its
    own seeded smooth image as its direction."""
    m = side * side
    gens = [torch.Generator().manual_seed(100 + i) for i in range(m)]
    _, image_f = optvis_param.fourier_image(m, model.input_size, model.input_size, generator=gens)
    with torch.no_grad():
        act = model.forward_to(image_f().to(device), [LAYER])[LAYER]
    h, w = act.shape[-2:]
    directions = act[:, :, h // 2, w // 2].float().cpu().numpy()
    cells = np.array([(x, y) for y in range(side) for x in range(side)], dtype=np.int64)
    return Grid(
        size=side,
        min_count=0,
        cells=cells,
        counts=np.ones(m, dtype=np.int64),
        directions=directions,
        attributions=None,
        top_classes=np.zeros((m, 0), dtype=np.int64),
        top_values=np.zeros((m, 0), dtype=np.float32),
        sample_cell=np.arange(m, dtype=np.int64),
        n_samples=m,
    )


class BatchClock(io.StringIO):
    """A progress stream that notes when the cluster's progress line reports a batch done
    (its lines end with "workers alive")."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def write(self, text: str) -> int:
        if "workers alive" in text and " in " not in text:  # not the closing summary
            self.times.append(time.perf_counter())
        return super().write(text)


def timed_render(
    model: Any,
    grid: Grid,
    settings: RenderSettings,
    device: torch.device,
    cluster: ClusterPlan | None,
    clock: BatchClock | None = None,
) -> tuple[float, np.ndarray]:
    progress = Progress(clock, log_interval=0.0) if clock else Progress(enabled=False)
    with tempfile.TemporaryDirectory() as run:
        start = time.perf_counter()
        icons = render_icons(
            model,
            LAYER,
            {grid.size: grid},
            whitening=None,
            settings=settings,
            run_dir=Path(run),
            key="bench",
            device=device,
            progress=progress,
            cluster=cluster,
        )
        if clock is not None:
            clock.times.insert(0, start)
        return time.perf_counter() - start, icons[grid.size].images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--grid", type=int, default=8, help="cells per side (all kept)")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8, help="icons per batch (a Ray unit)")
    parser.add_argument("--icon-size", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--workers", type=int, nargs="+", default=None)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import ray

    device = torch.device(args.device)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    workers = args.workers or ([1, gpus] if gpus > 1 else [1] if gpus else [1, 2])
    torch.set_num_threads(args.threads)
    model, _ = render_copy(load_model("demo", device=device))
    grid = full_grid(model, args.grid, device)
    settings = RenderSettings(
        icon_size=args.icon_size,
        steps=args.steps,
        tries=1,
        lr=0.15,
        border=False,
        seed=0,
        batch_size=args.batch,
    )
    batches = -(-grid.kept // args.batch)
    load_before = os.getloadavg()

    start = time.perf_counter()
    cores = os.cpu_count() or 1
    ray.init(
        num_cpus=max(cores, max(workers)),
        num_gpus=gpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    ray_init = time.perf_counter() - start

    one = dataclasses.replace(grid, size=1, cells=grid.cells[:1], **_first(grid))
    timed_render(model, one, dataclasses.replace(settings, steps=1), device, None)  # warm-up
    none_s, reference = timed_render(model, grid, settings, device, None)
    rows: list[dict[str, Any]] = [
        {"run": "none", "seconds": none_s, "icons_per_s": grid.kept / none_s, "same": True}
    ]
    print(f"none: {none_s:.2f} s, {grid.kept / none_s:.2f} icons/s ({batches} batches)")
    for n in workers:
        plan = ClusterPlan(address=None, workers=n, gpus=gpus > 0, threads=args.threads)
        clock = BatchClock()
        seconds, images = timed_render(model, grid, settings, device, plan, clock)
        start, first, last = clock.times[0], clock.times[1], clock.times[-1]
        steady = (last - first) / max(1, len(clock.times) - 2) * n  # one worker's batch
        fixed = first - start - steady
        row = {
            "run": f"ray {n}",
            "workers": n,
            "seconds": seconds,
            "icons_per_s": grid.kept / seconds,
            "speedup": none_s / seconds,
            "fixed_s": fixed,
            "steady_s_per_batch": steady,
            "per_batch_overhead_s": steady - none_s / batches if n == 1 else None,
            "same": bool(np.array_equal(images, reference)),
        }
        rows.append(row)
        print(
            f"ray {n}: {seconds:.2f} s, {row['icons_per_s']:.2f} icons/s, speed-up "
            f"{row['speedup']:.2f}x, fixed cost {fixed:.2f} s, same bytes {row['same']}"
            + (
                f", overhead {row['per_batch_overhead_s']:.3f} s/batch"
                if row["per_batch_overhead_s"] is not None
                else ""
            )
        )
    ray.shutdown()
    doc = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "device": str(device),
        "gpus": gpus,
        "cpus": cores,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "torch": torch.__version__,
        "ray": ray.__version__,
        "icons": grid.kept,
        "batches": batches,
        "settings": dataclasses.asdict(settings),
        "threads": args.threads,
        "ray_init_s": ray_init,
        "rows": rows,
    }
    print(f"ray.init: {ray_init:.2f} s; load average {load_before} -> {os.getloadavg()}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1))
    return 0 if all(row["same"] for row in rows) else 1


def _first(grid: Grid) -> dict[str, Any]:
    """The fields of ``grid`` cut to its first cell (a one-icon render)."""
    return {
        "counts": grid.counts[:1],
        "directions": grid.directions[:1],
        "top_classes": grid.top_classes[:1],
        "top_values": grid.top_values[:1],
        "sample_cell": np.zeros(1, dtype=np.int64),
        "n_samples": 1,
    }


if __name__ == "__main__":
    sys.exit(main())
