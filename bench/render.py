"""Feature visualization: our optvis against torch-lucent's ``render_vis``, pair by pair.

Run by hand (results go to bench/RESULTS.md, section "Feature visualization (optvis)")::

    python bench/render.py                       # InceptionV1 + demo-size variant (or tiny)
    python bench/render.py --models demo-trained  # the trained demo model (fidelity counts)
    python bench/render.py --models tiny --steps 32 --batch 4   # a smoke run

For each model and icon size, both renderers get the same batch of directions (centre
activations of random smooth images at the layer), the same objective (the atlas objective
``dot * max(0.1, cossim)^2`` at the centre, by default; ``--objective cosine`` for Lucent's
own ``direction_neuron``), the same icon size with no upsampling, the same number of steps,
Adam 0.05, Fourier parameterization with decorrelated colours, and the recipe's transforms
(Lucent's own implementations for Lucent: kornia rotation, numpy draws, translation jitter).
Lucent renders the whole batch in one ``render_vis`` call (one objective per batch element,
its best case); ``--lucent-per-icon`` also times it one icon per call (its common use).

Measured: icon-steps/s (icons x steps / wall time of the whole render; best of the same
number of interleaved runs for every renderer and mode) and fidelity, the cosine similarity
between the rendered icon's own centre activation (no transforms) and its direction, with the
same cosine for the images the render starts from and for uniform noise: the "gain" columns are
a render's fidelity minus the better of those two. On random weights almost any image scores
near 1 (activations of a random network point the same way), so fidelity discriminates only on
``demo-trained``, the committed demo model, whose directions are its activations on the
synthetic world it learnt (the directions an atlas of it averages). Both renderers are handed an identical frozen copy of the model; ours renders it
as ``atlas`` does (a lean copy with batch norms folded into their convolutions, made inside
the timed run; ``--no-lean`` renders the model as handed; channels-last unless
``--no-channels-last``). Never imported by ``generator/``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.models.base import AtlasModel  # noqa: E402
from generator.optvis import objectives as obj  # noqa: E402
from generator.optvis import param as our_param  # noqa: E402
from generator.optvis.render import render  # noqa: E402
from generator.optvis.transform import RECIPE_ANGLES, RECIPE_SCALES  # noqa: E402

# -- models -----------------------------------------------------------------------------------


def tiny_model() -> AtlasModel:
    """The optvis tests' tiny net (used when generator/models has not landed)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from optvis.conftest import TinyNet

    return TinyNet(seed=0)


def build(name: str) -> tuple[AtlasModel, str]:
    """``(model, layer)`` for a benchmark model name; random weights drawn from seed 0."""
    if name == "tiny":
        return tiny_model(), "conv3"
    from generator.models.inception import build_inceptionv1

    if name == "inceptionv1":  # Lucid's geometry, LRN, 1008 logits, full width
        return build_inceptionv1(seed=0), "mixed4c"
    if name == "demo":  # the demo-size variant: a quarter of the width, batch norm, 64 px
        from generator.models.demo import demo_config

        return build_inceptionv1(demo_config(10), seed=0), "mixed4c"
    if name == "demo-trained":  # the committed, trained demo model: where fidelity discriminates
        from generator.models.registry import load_model

        return load_model("demo", device=torch.device("cpu")), "mixed4c"
    raise SystemExit(f"unknown model {name!r}: tiny | inceptionv1 | demo | demo-trained")


#: First index of the world's images whose activations are the trained model's directions (the
#: test range of generator/models/train_settings.py: no atlas or training draws from it).
WORLD_DIRECTIONS_START = 3 << 30


def frozen(model: AtlasModel) -> AtlasModel:
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def directions_for(
    model: AtlasModel, layer: str, batch: int, size: int, world: bool = False
) -> Tensor:
    """``[batch, C]``: centre activations of random smooth colourful images (Fourier noise),
    or with ``world`` of the synthetic world's images (the directions an atlas of the trained
    demo model averages: its activations on the data it learnt)."""
    device = next(model.parameters()).device
    if world:
        from generator.data.world import render_batch

        pixels = render_batch(range(WORLD_DIRECTIONS_START, WORLD_DIRECTIONS_START + batch))
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255.0)
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear")
        images = images.to(device)
    else:
        gens = [torch.Generator().manual_seed(1000 + i) for i in range(batch)]
        _, image_f = our_param.fourier_image(
            batch, size, size, generator=gens, sd=0.5, device=device
        )
        images = image_f().detach()
    with torch.no_grad():
        acts = model.forward_to(images, [layer])[layer]
    h, w = acts.shape[-2:]
    return acts[:, :, h // 2, w // 2].clone()


def baseline_images(
    model: AtlasModel, layer: str, directions: Tensor, size: int, objective: str
) -> dict[str, Tensor]:
    """What fidelity is measured against: ``start``, the images our render starts from (its
    parameterization at the initial values, seed 0, as ``run_ours``: a render of 0 steps), and
    ``noise``, uniform noise (seeded). A fidelity that does not beat these says nothing."""
    start = render(model, goal_for(objective, layer, directions), size=size, steps=0, seed=0)
    batch = directions.shape[0]
    noise = torch.rand((batch, 3, size, size), generator=torch.Generator().manual_seed(7))
    return {"start": start.images, "noise": noise}


def fidelity(model: AtlasModel, layer: str, images: Tensor, directions: Tensor) -> Tensor:
    """``[B]`` cosine similarity of each icon's centre activation with its direction."""
    with torch.no_grad():
        acts = model.forward_to(images, [layer])[layer]
    h, w = acts.shape[-2:]
    centre = acts[:, :, h // 2, w // 2]
    return torch.nn.functional.cosine_similarity(centre, directions, dim=1)


def atlas_value(centre: Tensor, v: Tensor, p: float = 2.0) -> Tensor:
    """METHOD.md 5 (for Lucent's objective): ``[B, C]`` centre vectors -> ``[B]``."""
    dot = (centre * v).mean(dim=1)
    cossim = (dot / (1e-4 + centre.norm(dim=1))).clamp_min(0.1)
    return dot * cossim**p


# -- ours -------------------------------------------------------------------------------------


def goal_for(objective: str, layer: str, directions: Tensor) -> obj.Objective:
    if objective == "atlas":
        return obj.atlas_direction(layer, directions)
    return obj.direction_neuron(layer, directions, cosine=True)


def run_ours(
    model: AtlasModel,
    layer: str,
    directions: Tensor,
    size: int,
    steps: int,
    objective: str,
    channels_last: bool = True,
    lean: bool = True,
) -> tuple[Tensor, float]:
    """Our render of ``directions``, as ``atlas`` runs it: on a lean copy of the model (batch
    norms folded into their convolutions, ``generator.icons.lean``; the copy is timed too)
    unless ``lean`` is off, channels-last unless ``channels_last`` is off."""
    from generator.icons.lean import render_copy

    goal = goal_for(objective, layer, directions)
    started = time.perf_counter()
    renderer = render_copy(model)[0] if lean else model
    result = render(
        renderer, goal, size=size, steps=steps, tries=1, seed=0, channels_last=channels_last
    )
    return result.images, time.perf_counter() - started


# -- Lucent -----------------------------------------------------------------------------------


def lucent_modules() -> tuple[object, object, object, object]:
    """Import Lucent with the shims it needs here (kornia 0.4.1, current torch)."""
    warnings.filterwarnings("ignore")
    from lucent.optvis import objectives, param, render, transform

    return objectives, param, render, transform


def lucent_transforms(transform: object, size: int) -> list[Callable[[Tensor], Tensor]]:
    """The recipe's list in Lucent's implementations (translation jitter, kornia rotation),
    then a centre crop/pad back to ``size`` (Lucent has none; ``fixed_image_size`` would
    resample instead)."""
    t = transform

    def crop_or_pad(images: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        images = images[..., top : top + size, left : left + size]
        h, w = images.shape[-2:]
        dh, dw = size - h, size - w
        return nn.functional.pad(images, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))

    return [
        t.pad(16, mode="constant", constant_value=0.5),  # type: ignore[attr-defined]
        t.jitter(4),  # type: ignore[attr-defined]
        t.jitter(4),  # type: ignore[attr-defined]
        t.jitter(8),  # type: ignore[attr-defined]
        t.jitter(8),  # type: ignore[attr-defined]
        t.jitter(8),  # type: ignore[attr-defined]
        t.random_scale(list(RECIPE_SCALES)),  # type: ignore[attr-defined]
        t.random_rotate(list(RECIPE_ANGLES)),  # type: ignore[attr-defined]
        t.jitter(2),  # type: ignore[attr-defined]
        crop_or_pad,
    ]


def remove_hooks(model: nn.Module) -> None:
    """Lucent's render_vis never removes the hooks it puts on every module (shim)."""
    for m in model.modules():
        m._forward_hooks.clear()


def run_lucent(
    model: AtlasModel, layer: str, directions: Tensor, size: int, steps: int, objective: str
) -> tuple[Tensor, float]:
    objectives, param, render_mod, transform = lucent_modules()
    name = "stages_" + layer  # Lucent names modules by their attribute path
    b = directions.shape[0]

    def one(i: int) -> object:
        v = directions[i]
        if objective == "cosine":
            return objectives.direction_neuron(name, v, batch=i)  # type: ignore[attr-defined]

        def loss(hook: Callable[[str], Tensor]) -> Tensor:
            acts = hook(name)
            h, w = acts.shape[-2:]
            return -atlas_value(acts[i : i + 1, :, h // 2, w // 2], v[None]).sum()

        return objectives.Objective(loss)  # type: ignore[attr-defined]

    goal = objectives.Objective.sum([one(i) for i in range(b)])  # type: ignore[attr-defined]
    np.random.seed(0)  # Lucent draws from the global random states
    torch.manual_seed(0)
    started = time.perf_counter()
    images = render_mod.render_vis(  # type: ignore[attr-defined]
        model,
        goal,
        lambda: param.image(size, batch=b, fft=True, decorrelate=True),  # type: ignore[attr-defined]
        transforms=lucent_transforms(transform, size),
        thresholds=(steps,),
        preprocess=False,  # our models preprocess inside their forward
        progress=False,
        show_image=False,
        fixed_image_size=size,  # no upsampling to 224
    )
    seconds = time.perf_counter() - started
    remove_hooks(model)
    return torch.from_numpy(np.asarray(images[-1])).permute(0, 3, 1, 2).float(), seconds


# -- the comparison ---------------------------------------------------------------------------


class CumsumLRN(nn.Module):
    """The same function as ``nn.LocalResponseNorm(size, alpha, beta, k)`` with the channel
    window summed by a cumulative sum instead of ``avg_pool3d`` (``--fast-lrn``, bench only:
    torch's LRN forward + backward is ~40% of a full-width InceptionV1 step on this CPU)."""

    def __init__(self, lrn: nn.LocalResponseNorm) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = lrn.size, lrn.alpha, lrn.beta, lrn.k

    def forward(self, x: Tensor) -> Tensor:
        n = self.size
        squares = nn.functional.pad(x * x, (0, 0, 0, 0, n // 2 + 1, (n - 1) // 2))
        sums = squares.cumsum(dim=1)
        window = sums[:, n:] - sums[:, :-n]
        return x * (self.k + self.alpha / n * window).pow(-self.beta)


def with_fast_lrn(model: AtlasModel) -> int:
    """Swap every ``nn.LocalResponseNorm`` of ``model`` for :class:`CumsumLRN`; how many."""
    swapped = 0
    for parent in list(model.modules()):
        for key, child in list(parent._modules.items()):
            if isinstance(child, nn.LocalResponseNorm):
                parent._modules[key] = CumsumLRN(child)
                swapped += 1
    return swapped


@dataclass
class Pair:
    model: str
    layer: str
    size: int
    steps: int
    batch: int
    objective: str
    lucent_mode: str
    repeats: int
    ours_seconds: float  # best of the repeats
    lucent_seconds: float
    ours_icon_steps_per_s: float
    lucent_icon_steps_per_s: float
    speedup: float
    ours_fidelity: float  # mean over the batch
    lucent_fidelity: float
    fidelity_wins: int  # icons where ours >= Lucent's
    start_fidelity: float  # the images both renders start from (no step taken)
    noise_fidelity: float  # uniform noise
    ours_gain: float  # ours - max(start, noise): what the render adds
    lucent_gain: float


def compare(
    name: str,
    size: int,
    steps: int,
    batch: int,
    objective: str,
    per_icon: bool,
    channels_last: bool,
    repeats: int,
    fast_lrn: bool,
    lean: bool = True,
) -> list[Pair]:
    model, layer = build(name)
    model = frozen(model)
    if fast_lrn:
        print(f"# {name}: {with_fast_lrn(model)} LocalResponseNorm modules swapped", flush=True)
    lucent_model = frozen(model)
    directions = directions_for(model, layer, batch, size, world=name == "demo-trained")
    baselines = {
        key: float(fidelity(model, layer, images, directions).mean())
        for key, images in baseline_images(model, layer, directions, size, objective).items()
    }
    floor = max(baselines.values())
    # warm-up (first-call allocations, lazy imports) for both, not timed
    run_ours(model, layer, directions[:2], size, 2, objective, channels_last, lean)
    run_lucent(lucent_model, layer, directions[:1], size, 2, objective)

    def lucent_per_icon() -> tuple[Tensor, float]:
        parts, total = [], 0.0
        for i in range(batch):
            img, s = run_lucent(lucent_model, layer, directions[i : i + 1], size, steps, objective)
            parts.append(img)
            total += s
        return torch.cat(parts), total

    # Interleaved runs, best time of each, the same number of runs for every renderer and mode
    # (the machine is shared: the minimum is the least disturbed run); every renderer is
    # deterministic, so the images do not change between runs.
    ours_times, lucent_times, per_icon_times = [], [], []
    for _ in range(repeats):
        ours_images, s = run_ours(
            model, layer, directions, size, steps, objective, channels_last, lean
        )
        ours_times.append(s)
        lucent_images, s = run_lucent(lucent_model, layer, directions, size, steps, objective)
        lucent_times.append(s)
        if per_icon:
            per_icon_images, s = lucent_per_icon()
            per_icon_times.append(s)
    runs = [("batched", lucent_images, min(lucent_times), repeats)]
    if per_icon:
        runs.append(("per icon", per_icon_images, min(per_icon_times), repeats))
    ours_s = min(ours_times)
    ours_fid = fidelity(model, layer, ours_images, directions)
    pairs = []
    for mode, images, lucent_s, n in runs:
        lucent_fid = fidelity(model, layer, images, directions)
        work = batch * steps
        pairs.append(
            Pair(
                model=name + (" (fast LRN)" if fast_lrn else "") + ("" if lean else " (not lean)"),
                layer=layer,
                size=size,
                steps=steps,
                batch=batch,
                objective=objective,
                lucent_mode=mode,
                repeats=n,
                ours_seconds=round(ours_s, 2),
                lucent_seconds=round(lucent_s, 2),
                ours_icon_steps_per_s=round(work / ours_s, 1),
                lucent_icon_steps_per_s=round(work / lucent_s, 1),
                speedup=round(lucent_s / ours_s, 2),
                ours_fidelity=round(float(ours_fid.mean()), 3),
                lucent_fidelity=round(float(lucent_fid.mean()), 3),
                fidelity_wins=int((ours_fid >= lucent_fid).sum()),
                start_fidelity=round(baselines["start"], 3),
                noise_fidelity=round(baselines["noise"], 3),
                ours_gain=round(float(ours_fid.mean()) - floor, 3),
                lucent_gain=round(float(lucent_fid.mean()) - floor, 3),
            )
        )
        print(json.dumps(asdict(pairs[-1])), flush=True)
    return pairs


MODES = {  # name -> (autocast dtype, channels_last)
    "fp32": (None, False),
    "fp32-cl": (None, True),
    "bf16": (torch.bfloat16, False),
    "bf16-cl": (torch.bfloat16, True),
    "fp16-cl": (torch.float16, True),
}


def ours_only(
    name: str, size: int, steps: int, batches: list[int], modes: list[str], device: str
) -> list[dict[str, object]]:
    """Our render alone on ``device`` (the GPU check): icon-steps/s and fidelity per batch
    size and precision mode, with the time a 1600-cell atlas would take at 512 steps."""
    model, layer = build(name)
    model = frozen(model).to(device)
    rows = []
    for batch in batches:
        directions = directions_for(model, layer, batch, size).to(device)
        goal = obj.atlas_direction(layer, directions)
        for mode in modes:
            amp, cl = MODES[mode]
            render(model, goal, size=size, steps=2, autocast=amp, channels_last=cl)  # warm-up
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            result = render(model, goal, size=size, steps=steps, autocast=amp, channels_last=cl)
            seconds = time.perf_counter() - started  # render() returns CPU tensors: synced
            rate = batch * steps / seconds
            row = {
                "model": name,
                "layer": layer,
                "size": size,
                "steps": steps,
                "batch": batch,
                "mode": mode,
                "icon_steps_per_s": round(rate, 1),
                "atlas_1600_cells_512_steps_s": round(1600 * 512 / rate, 1),
                "fidelity": round(
                    float(fidelity(model, layer, result.images.to(device), directions).mean()), 3
                ),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["inceptionv1", "demo"])
    parser.add_argument("--size", type=int, default=64, help="icon side in px")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16, help="directions per batch")
    parser.add_argument("--objective", choices=["atlas", "cosine"], default="atlas")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timed runs")
    parser.add_argument("--lucent-per-icon", action="store_true")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="our render's channels_last option (Lucent has none)",
    )
    parser.add_argument(
        "--lean",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ours renders a lean copy (batch norms folded), as atlas does",
    )
    parser.add_argument("--fast-lrn", action="store_true", help="see CumsumLRN")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the pairs as JSON here")
    parser.add_argument("--ours-only", action="store_true", help="no Lucent (e.g. on a GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["fp32", "bf16-cl"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} threads, {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    if args.ours_only:
        rows = []
        for name in args.models:
            rows += ours_only(name, args.size, args.steps, args.batches, args.modes, args.device)
        if args.out:
            args.out.write_text(json.dumps(rows, indent=1))
        return
    pairs: list[Pair] = []
    for name in args.models:
        pairs += compare(
            name,
            args.size,
            args.steps,
            args.batch,
            args.objective,
            args.lucent_per_icon,
            args.channels_last,
            args.repeats,
            args.fast_lrn,
            args.lean,
        )
    if args.out:
        args.out.write_text(json.dumps([asdict(p) for p in pairs], indent=1))


if __name__ == "__main__":
    main()
