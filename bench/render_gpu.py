"""Atlas icon rendering on one GPU: throughput, precision modes, a whole 40x40 atlas, FLOP use.

Run on the device machine (one H100; about 3 minutes, within the 5 the budget allows)::

    python bench/render_gpu.py --out bench/out/render_gpu.json

and on a CPU as a smoke test of the script itself (minutes, tiny numbers)::

    python bench/render_gpu.py --device cpu --quick --out /tmp/render_gpu.json

What it measures (full-width Lucid InceptionV1, **random weights**, layer mixed4c, 80 px icons,
the atlas objective with whitening (calibrated, as the atlas renders) and the border penalty,
Adam 0.05; the render loop of
``generator.optvis.render`` and the atlas renderer of ``generator.icons.render_icons``):

1. ``peak``: the card's measured dense matmul throughput, bf16 and fp32 (TF32 off and on):
   best of several 8192^3 ``torch.matmul`` (2 n^3 FLOPs each).
2. ``flops_per_icon_step``: FLOPs of one optimization step (forward + backward) per icon,
   counted by ``torch.utils.flop_counter.FlopCounterMode`` as the difference between renders
   of 2 and 1 steps (which cancels the final evaluation pass); convolutions and matmuls only.
3. ``sweep``: for batch sizes 64..512 (and 1024, 2048: the heuristic's cap) and each mode (fp32 = TF32 convolutions, cuDNN's
   default; bf16 / fp16 autocast; with and without channels_last): the time of a step,
   measured over ``--timed-steps`` steps after ``--warmup-steps`` (each a fresh render, so
   cuDNN's algorithm search is not timed), from which icons/s at 512 steps (1 try) is
   **extrapolated** (a 512-step render repeats the same step 512 times), plus achieved
   TFLOP/s and its fraction of the measured matmul peak of the mode's precision, and peak
   memory.
4. ``fidelity``: per mode, 64 icons rendered for ``--fidelity-steps`` (128) steps (the mean cosine
   similarity of their centre activations with their directions): which modes keep fidelity.
5. ``atlas``: a 40x40 mixed4c atlas with every cell occupied (1,600 directions: means of the
   centre activations of 4 random smooth images each; whitening from those samples), rendered
   end to end by ``generator.icons.render_icons.render_icons`` (batch size from its memory
   heuristic, part files, fidelity) with the "fast" preset (512 steps, 1 try) in the best mode
   that keeps fidelity. When the sweep predicts it would not fit ``--atlas-budget`` seconds
   (100, and less when the run so far leaves less of ``--total-budget``, 270), it runs fewer
   steps and the JSON says so (``steps_run``, ``extrapolated``). The article
   preset (1024 steps, 4 tries) costs 8x the steps; its time is extrapolated.

Writes everything to ``--out`` as JSON (and a summary on stdout).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.atlas.artifacts import Activations, Grid  # noqa: E402
from generator.atlas.grid import whitening  # noqa: E402
from generator.atlas.progress import Progress  # noqa: E402
from generator.icons.batching import choose_batch_size  # noqa: E402
from generator.icons.objective import icon_objective  # noqa: E402
from generator.icons.render_icons import render_icons  # noqa: E402
from generator.icons.settings import RenderSettings  # noqa: E402
from generator.models.base import AtlasModel  # noqa: E402
from generator.models.inception import LUCID, build_inceptionv1  # noqa: E402
from generator.optvis import objectives as obj  # noqa: E402
from generator.optvis import param as optvis_param  # noqa: E402
from generator.optvis.render import render  # noqa: E402

LAYER = "mixed4c"

#: mode -> (autocast dtype or None, channels_last, the peak it is compared with)
MODES: dict[str, tuple[torch.dtype | None, bool, str]] = {
    "fp32": (None, False, "tf32"),
    "fp32-cl": (None, True, "tf32"),
    "bf16": (torch.bfloat16, False, "bf16"),
    "bf16-cl": (torch.bfloat16, True, "bf16"),
    "fp16-cl": (torch.float16, True, "fp16"),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable[[], Any]) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


# -- 1. the card's matmul peak ----------------------------------------------------------------


def matmul_peak(device: torch.device, n: int, repeats: int) -> dict[str, float]:
    """Best TFLOP/s of ``n x n @ n x n`` in bf16, fp16, fp32 (TF32 off) and TF32."""
    out = {}
    before = torch.backends.cuda.matmul.allow_tf32
    for name, dtype, tf32 in (
        ("bf16", torch.bfloat16, False),
        ("fp16", torch.float16, False),
        ("fp32", torch.float32, False),
        ("tf32", torch.float32, True),
    ):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        torch.matmul(a, b)
        best = min(timed(device, lambda a=a, b=b: torch.matmul(a, b)) for _ in range(repeats))
        out[name] = 2 * n**3 / best / 1e12
    torch.backends.cuda.matmul.allow_tf32 = before
    return out


# -- the workload -----------------------------------------------------------------------------


def directions(model: AtlasModel, n: int, per: int, size: int, device: torch.device) -> Any:
    """``(directions [n, C], samples [n * per, C])``: each direction the mean centre activation
    of ``per`` random smooth colourful images (Fourier noise, sd 0.5)."""
    samples = []
    for start in range(0, n * per, 256):
        count = min(256, n * per - start)
        gens = [torch.Generator().manual_seed(10_000 + start + i) for i in range(count)]
        _, image_f = optvis_param.fourier_image(
            count, size, size, generator=gens, sd=0.5, device=device
        )
        with torch.no_grad():
            act = model.forward_to(image_f(), [LAYER])[LAYER]
        h, w = act.shape[-2:]
        samples.append(act[:, :, h // 2, w // 2].float().cpu())
    vectors = torch.cat(samples).numpy()
    return vectors.reshape(n, per, -1).mean(axis=1), vectors


def objective(v: torch.Tensor, white: torch.Tensor | None) -> tuple[obj.Objective, obj.Objective]:
    """The atlas renderer's own objective (calibrated, with the border penalty)."""
    return icon_objective(
        LAYER,
        v.float().cpu().numpy(),
        whitening=white,
        cossim_pow=2.0,
        border=True,
        calibrate=True,
        device=v.device,
        dtype=torch.float32,
    )


def render_batch(
    model: AtlasModel,
    v: torch.Tensor,
    white: torch.Tensor | None,
    mode: str,
    steps: int,
    size: int,
    device: torch.device,
) -> Any:
    autocast, channels_last, _ = MODES[mode]
    goal, direction = objective(v, white)
    return render(
        model,
        goal,
        size=size,
        steps=steps,
        tries=1,
        seed=0,
        icon_seeds=list(range(len(v))),
        select_by=direction,
        device=device,
        autocast=autocast,
        channels_last=channels_last,
    )


def fidelity_of(model: AtlasModel, images: torch.Tensor, v: torch.Tensor) -> float:
    with torch.no_grad():
        act = model.forward_to(images.to(v.device), [LAYER])[LAYER].float()
    h, w = act.shape[-2:]
    cos = torch.nn.functional.cosine_similarity(act[:, :, h // 2, w // 2], v.float(), dim=1)
    return float(cos.mean())


# -- 2. FLOPs per icon-step -------------------------------------------------------------------


def flops_per_icon_step(
    model: AtlasModel, v: torch.Tensor, white: Any, size: int, device: Any
) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counts = []
    for steps in (1, 2):
        with FlopCounterMode(display=False) as counter:
            render_batch(model, v, white, "fp32", steps, size, device)
        counts.append(counter.get_total_flops())
    return (counts[1] - counts[0]) // len(v)


# -- 3-4. sweep and fidelity ------------------------------------------------------------------


def sweep(
    model: AtlasModel,
    pool: torch.Tensor,
    white: torch.Tensor | None,
    args: argparse.Namespace,
    flops: int,
    peak: dict[str, float],
    device: torch.device,
) -> list[dict[str, Any]]:
    rows = []
    for mode in args.modes:
        for batch in args.batches:
            v = pool[torch.arange(batch, device=pool.device) % len(pool)]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            render_batch(model, v, white, mode, args.warmup_steps, args.size, device)
            seconds = timed(
                device,
                lambda v=v, mode=mode: render_batch(
                    model, v, white, mode, args.timed_steps, args.size, device
                ),
            )
            step = seconds / args.timed_steps  # includes the one final evaluation pass
            achieved = flops * batch / step / 1e12
            precision = MODES[mode][2]
            row = {
                "mode": mode,
                "batch": batch,
                "step_ms": round(step * 1e3, 3),
                "icon_steps_per_s": round(batch / step, 1),
                "icons_per_s_at_512_steps": round(batch / step / 512, 3),
                "achieved_tflops": round(achieved, 2),
                "fraction_of_peak": round(achieved / peak[precision], 4),
                "peak_compared": precision,
                "fraction_of": {k: round(achieved / v, 4) for k, v in peak.items()},
                "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
                if device.type == "cuda"
                else None,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def fidelity_by_mode(
    model: AtlasModel,
    pool: torch.Tensor,
    white: torch.Tensor | None,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, float]:
    v = pool[: args.fidelity_batch]
    out = {}
    for mode in args.modes:
        rendered = render_batch(model, v, white, mode, args.fidelity_steps, args.size, device)
        out[mode] = round(fidelity_of(model, rendered.images, v), 4)
        print(f"fidelity {mode}: {out[mode]}", flush=True)
    return out


# -- 5. a whole atlas -------------------------------------------------------------------------


def atlas(
    model: AtlasModel,
    dirs: np.ndarray,
    white: np.ndarray | None,
    mode: str,
    step_seconds: dict[int, float],
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, Any]:
    g = args.atlas_grid
    cells = np.stack(np.meshgrid(np.arange(g), np.arange(g), indexing="xy"), -1).reshape(-1, 2)
    cells = cells[np.lexsort((cells[:, 0], cells[:, 1]))]
    m = len(cells)
    grid = Grid(
        size=g,
        min_count=0,
        cells=cells.astype(np.int64),
        counts=np.full(m, 8, np.int64),
        directions=dirs[:m].astype(np.float32),
        attributions=None,
        top_classes=np.zeros((m, 0), np.int64),
        top_values=np.zeros((m, 0), np.float32),
        sample_cell=np.arange(m, dtype=np.int64),
        n_samples=m,
    )
    plan = choose_batch_size(model, LAYER, args.size, device, icons=m)
    batches = -(-m // plan.size)
    per_batch = -(-m // batches)
    known = min(step_seconds, key=lambda b: abs(b - per_batch))
    predicted = batches * args.atlas_steps * step_seconds[known] * per_batch / known
    steps = args.atlas_steps
    if predicted > args.atlas_budget:
        steps = max(16, int(args.atlas_steps * args.atlas_budget / predicted))
    autocast, channels_last, _ = MODES[mode]
    settings = RenderSettings(
        preset="fast",
        icon_size=args.size,
        steps=steps,
        tries=1,
        seed=0,
        autocast={None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast],
        channels_last=channels_last,
    )
    with tempfile.TemporaryDirectory() as run_dir:
        seconds = timed(
            device,
            lambda: render_icons(
                model,
                LAYER,
                {g: grid},
                whitening=white,
                settings=settings,
                run_dir=Path(run_dir),
                key="bench",
                device=device,
                progress=Progress(),
            ),
        )
        from generator.icons.store import RenderRun

        _, results = RenderRun(Path(run_dir), "bench", args.size).load(m)
    scale = args.atlas_steps / steps
    fid = results["fidelity"]
    return {
        "grid": g,
        "icons": m,
        "mode": mode,
        "batch_plan": plan.why,
        "batch": plan.size,
        "steps": args.atlas_steps,
        "steps_run": steps,
        "extrapolated": steps != args.atlas_steps,
        "seconds_run": round(seconds, 2),
        "seconds_at_512_steps_1_try": round(seconds * scale, 2),
        "seconds_article_1024_steps_4_tries": round(seconds * scale * 8, 1),
        "icons_per_s": round(m / (seconds * scale), 2),
        "fidelity_mean": round(float(fid.mean()), 4),
        "fidelity_quartiles": [round(float(q), 4) for q in np.quantile(fid, [0.25, 0.5, 0.75])],
        "fidelity_note": "after steps_run steps" if steps != args.atlas_steps else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON results file")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=80, help="icon side in px")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--timed-steps", type=int, default=24)
    parser.add_argument("--fidelity-batch", type=int, default=64)
    parser.add_argument("--fidelity-steps", type=int, default=128)
    parser.add_argument("--atlas-grid", type=int, default=40)
    parser.add_argument("--atlas-steps", type=int, default=512)
    parser.add_argument(
        "--atlas-mode", default=None, help="default: the fastest that keeps fidelity"
    )
    parser.add_argument("--atlas-budget", type=float, default=100.0, help="seconds")
    parser.add_argument(
        "--total-budget", type=float, default=270.0, help="seconds; the atlas run shrinks to fit"
    )
    parser.add_argument("--width", type=float, default=1.0, help="InceptionV1 width multiplier")
    parser.add_argument("--quick", action="store_true", help="tiny settings (CPU smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batches, args.width = 48, [4, 8], 0.1
        args.timed_steps, args.warmup_steps, args.fidelity_steps = 2, 1, 8
        args.fidelity_batch, args.atlas_grid, args.atlas_steps, args.atlas_budget = 4, 4, 8, 5
        args.modes = ["fp32", "bf16-cl"]
    started = time.perf_counter()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    model = build_inceptionv1(LUCID, width=args.width, seed=0).to(device).eval()
    model.requires_grad_(False)
    print(
        f"# {device}: {torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor()}",
        flush=True,
    )

    peak = matmul_peak(device, 8192 if device.type == "cuda" else 512, 5)
    print("peak TFLOP/s", json.dumps({k: round(v, 1) for k, v in peak.items()}), flush=True)
    n_dirs = args.atlas_grid**2
    dirs, samples = directions(model, n_dirs, 4, args.size, device)
    acts = Activations(
        layer=LAYER,
        vectors=samples.astype(np.float32),
        image_index=np.arange(len(samples), dtype=np.int64),
        positions=np.zeros((len(samples), 2), np.int64),
        labels=np.zeros(len(samples), np.int64),
        layer_hw=(1, 1),
    )
    white_np = whitening(acts).matrix
    white = torch.as_tensor(white_np, device=device)
    pool = torch.as_tensor(dirs, device=device)

    flops = flops_per_icon_step(model, pool[:8], white, args.size, device)
    print(f"FLOPs per icon-step (forward + backward): {flops / 1e9:.2f} GFLOP", flush=True)
    rows = sweep(model, pool, white, args, flops, peak, device)
    fidelity = fidelity_by_mode(model, pool, white, args, device)
    best_fid = max(fidelity.values())
    keeps = [m for m in args.modes if fidelity[m] >= best_fid - 0.01]
    fastest = max((r for r in rows if r["mode"] in keeps), key=lambda r: r["icon_steps_per_s"])
    mode = args.atlas_mode or fastest["mode"]
    left = args.total_budget - (time.perf_counter() - started) - 15  # writing, a margin
    args.atlas_budget = max(10.0, min(args.atlas_budget, left))
    steps = {r["batch"]: r["step_ms"] / 1e3 for r in rows if r["mode"] == mode}
    result_atlas = atlas(model, dirs, white_np, mode, steps, args, device)
    print("atlas", json.dumps(result_atlas), flush=True)
    doc = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": f"InceptionV1 (Lucid), width {args.width}, random weights (seed 0)",
        "layer": LAYER,
        "icon_size": args.size,
        "objective": "atlas_direction (whitened, p=2, calibrated) + border_penalty; Adam 0.05; 1 try",
        "peak_tflops": peak,
        "flops_per_icon_step": flops,
        "sweep": rows,
        "note": "icons_per_s_at_512_steps extrapolated from timed_steps steps per render",
        "timed_steps": args.timed_steps,
        "fidelity_by_mode": {
            "steps": args.fidelity_steps,
            "batch": args.fidelity_batch,
            **fidelity,
        },
        "atlas": result_atlas,
        "best": fastest,
        "seconds_total": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out} in {doc['seconds_total']} s", flush=True)


if __name__ == "__main__":
    main()
