"""Atlas icon rendering on the CPU: what the lean path buys, and icons/s to plan a demo.

    python bench/render_cpu.py --out bench/out/render_cpu.json

For each model (the demo model with its trained weights at 64 px icons; full-width Lucid
InceptionV1 with random weights at 80 px), layer mixed4c, a batch of directions (centre
activations of random smooth images), the atlas objective + border penalty, Adam: the best of
``--repeats`` interleaved timings of ``--steps`` steps for each variant:

* ``as loaded``: the model as the registry builds it (torch's LRN for InceptionV1, batch norm
  for the demo model), NCHW;
* ``lean``: ``generator.icons.lean.render_copy`` (batch norms folded into convolutions) with
  our LocalResponseNorm (window sums by doubling; InceptionV1's default now), NCHW;
* ``lean + channels_last``: what ``atlas`` renders with on a CPU;

each with 1 and 2 torch threads. Reports icon-steps/s (wall and per CPU-second of this
process) and icons/s at 512 steps, 1 try (= icon-steps/s / 512). Wall numbers on a machine
shared with other jobs vary run to run; the CPU-second rate is steadier.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.icons.lean import render_copy  # noqa: E402
from generator.models.base import AtlasModel  # noqa: E402
from generator.models.layers import LocalResponseNorm  # noqa: E402
from generator.models.registry import load_model  # noqa: E402
from generator.optvis import objectives as obj  # noqa: E402
from generator.optvis import param as optvis_param  # noqa: E402
from generator.optvis.render import render  # noqa: E402

LAYER = "mixed4c"


class TorchLRN(nn.LocalResponseNorm):
    """torch's own LocalResponseNorm (what our subclass replaced on the CPU)."""


def with_torch_lrn(model: AtlasModel) -> AtlasModel:
    for parent in list(model.modules()):
        for key, child in list(parent._modules.items()):
            if isinstance(child, LocalResponseNorm):
                parent._modules[key] = TorchLRN(child.size, child.alpha, child.beta, child.k)
    return model


def directions(model: AtlasModel, batch: int, size: int) -> torch.Tensor:
    gens = [torch.Generator().manual_seed(100 + i) for i in range(batch)]
    _, image_f = optvis_param.fourier_image(batch, size, size, generator=gens, sd=0.5)
    with torch.no_grad():
        act = model.forward_to(image_f(), [LAYER])[LAYER]
    h, w = act.shape[-2:]
    return act[:, :, h // 2, w // 2].clone()


def time_render(
    model: AtlasModel, v: torch.Tensor, size: int, steps: int, channels_last: bool
) -> tuple[float, float]:
    direction = obj.atlas_direction(LAYER, v)
    goal = direction + obj.border_penalty()
    wall, cpu = time.perf_counter(), time.process_time()
    render(model, goal, size=size, steps=steps, select_by=direction, channels_last=channels_last)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    cpu = torch.device("cpu")
    if name == "demo":
        base, size = load_model("demo", device=cpu), 64
    else:
        base, size = load_model("inceptionv1", device=cpu, weights="random"), 80
    lean, folded = render_copy(base)
    variants = {
        "as loaded": (with_torch_lrn(copy.deepcopy(base).eval()), False),
        "lean": (lean, False),
        "lean + channels_last": (lean, True),
    }
    v = directions(base, args.batch, size)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeats):
            for label, (model, channels_last) in variants.items():
                time_render(model, v, size, 1, channels_last)  # warm-up
                wall, proc = time_render(model, v, size, args.steps, channels_last)
                old = best.get(label, (float("inf"), float("inf")))
                best[label] = (min(old[0], wall), min(old[1], proc))
        for label, (wall, proc) in best.items():
            rate = args.batch * args.steps / wall
            row = {
                "model": name,
                "icon_px": size,
                "variant": label,
                "threads": threads,
                "batch": args.batch,
                "steps_timed": args.steps,
                "icon_steps_per_s": round(rate, 1),
                "icon_steps_per_cpu_s": round(args.batch * args.steps / proc, 1),
                "icons_per_s_at_512_steps": round(rate / 512, 3),
                "batch_norms_folded": folded,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["demo", "inceptionv1"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for name in args.models:
        rows += measure(name, args)
    doc = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
