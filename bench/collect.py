"""Benchmark: activation collection with and without attribution, and UMAP time against N.

1. Collection (``generator.atlas.collect.collect``, chunks written to a temporary folder) of one
   layer from in-memory random images, so decoding is not measured: images/s for activations
   alone and with attribution (forward-mode JVP, smooth max-pool relaxation), and the ratio
   (goal: attribution <= 2x collection alone). Models: full-size InceptionV1 (Lucid variant,
   random weights, 224 px) and the small demo variant (width 0.25, 64 px, random weights).
   ``--double-vjp`` adds the fallback method for comparison.
2. Layout: ``compute_layout`` (dedupe + UMAP + normalization) against plain umap-learn with the
   same settings (mixed4c defaults: 50 neighbours, min_dist 0.05, cosine, seed 0) on N
   clustered non-negative 256-d vectors; the first call's numba compile is timed separately.

Usage: ``python bench/collect.py [--images 64] [--threads 2] [--umap 1000,5000,20000]
[--layers mixed3b,mixed4c,mixed5b] [--skip-umap] [--skip-collect] [--device cpu]``; prints
Markdown tables for bench/RESULTS.md ("## Collection and layout").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from generator.atlas.collect import Sampling, collect
from generator.atlas.layout import LayoutParams, compute_layout
from generator.models.registry import load_model


@dataclass
class Batch:
    indices: torch.Tensor
    images: torch.Tensor


def collection_rate(
    model: torch.nn.Module,
    layer: str,
    images: torch.Tensor,
    *,
    batch_size: int,
    attribution: bool,
    method: str,
    device: torch.device,
    repeats: int,
) -> tuple[float, float]:
    """(best images/s of wall time, best CPU seconds) of ``repeats`` collections of ``images``.

    CPU time (all threads of this process) is less disturbed than wall time by other jobs on
    a shared machine; ratios are taken from it.
    """
    n = images.shape[0]

    def batches(indices: object) -> object:
        idx = list(indices)  # type: ignore[call-overload]
        for k in range(0, len(idx), batch_size):
            chunk = idx[k : k + batch_size]
            yield Batch(torch.tensor(chunk), images[chunk[0] : chunk[-1] + 1].to(device))

    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start, start_cpu = time.perf_counter(), time.process_time()
            collect(
                model,  # type: ignore[arg-type]
                batches,  # type: ignore[arg-type]
                list(range(n)),
                layers=[layer],
                run_dir=tmp,
                run_key="bench",
                device=device,
                sampling=Sampling(attribution=attribution, attribution_method=method),
                chunk_images=batch_size * 4,
            )
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return n / best, best_cpu


def bench_collection(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    methods = ["jvp", "double-vjp"] if args.double_vjp else ["jvp"]
    head = "| model | layer | images | activations only: img/s |"
    for method in methods:
        head += f" + attribution ({method}): img/s | ratio (CPU time) |"
    print(head)
    print("|---|---|---|---|" + "---|---|" * len(methods))
    models = (
        ("inceptionv1", "InceptionV1 (Lucid, random, 224 px)", args.images),
        ("demo", "demo (width 0.25, 64 px, random)", args.images * 8),
    )
    for name, label, count in models:
        model = load_model(name, device=device, weights="random")
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(count, 3, model.input_size, model.input_size, generator=generator)
        batch = args.batch_size
        # Warm-up (allocator, oneDNN primitive caches, torch.func).
        for method in methods:
            collection_rate(
                model,
                "mixed4c",
                images[:batch],
                batch_size=batch,
                attribution=True,
                method=method,
                device=device,
                repeats=1,
            )
        for layer in args.layers.split(","):
            rate, cpu = collection_rate(
                model,
                layer,
                images,
                batch_size=batch,
                attribution=False,
                method="jvp",
                device=device,
                repeats=args.repeats,
            )
            row = f"| {label} | {layer} | {count} | {rate:,.1f} |"
            for method in methods:
                rate_attr, cpu_attr = collection_rate(
                    model,
                    layer,
                    images,
                    batch_size=batch,
                    attribution=True,
                    method=method,
                    device=device,
                    repeats=args.repeats,
                )
                row += f" {rate_attr:,.1f} | {cpu_attr / cpu:.2f}x |"
            print(row, flush=True)


def clustered(n: int, dims: int = 256, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Non-negative vectors around ``clusters`` random centres (ReLU-like activations)."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, size=(clusters, dims)) * (rng.random((clusters, dims)) < 0.3)
    members = rng.integers(0, clusters, size=n)
    noise = rng.normal(0.0, 0.3, size=(n, dims))
    return np.maximum(centres[members] + noise, 0.0).astype(np.float32)


def bench_umap(args: argparse.Namespace) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Tensorflow not installed", category=ImportWarning
        )
        import umap
    params = LayoutParams()  # mixed4c defaults: 50, 0.05, cosine

    def plain(x: np.ndarray) -> None:
        umap.UMAP(
            n_neighbors=params.n_neighbors,
            min_dist=params.min_dist,
            metric=params.metric,
            random_state=0,
            n_jobs=1,
        ).fit_transform(x)

    start = time.perf_counter()
    compute_layout(clustered(300), params, seed=0)
    print(f"first UMAP call (numba compile, N=300): {time.perf_counter() - start:.1f} s\n")
    start = time.perf_counter()
    compute_layout(clustered(5000), params, seed=0)
    print(
        f"first call on N >= 4096 (pynndescent compile, N=5000): "
        f"{time.perf_counter() - start:.1f} s\n"
    )
    print("| N | compute_layout (s) | plain umap-learn (s) | ratio |")
    print("|---|---|---|---|")
    for n in (int(v) for v in args.umap.split(",")):
        x = clustered(n, seed=n)
        start = time.perf_counter()
        plain(x)
        base = time.perf_counter() - start
        start = time.perf_counter()
        compute_layout(x, params, seed=0)
        ours = time.perf_counter() - start
        print(f"| {n:,} | {ours:.1f} | {base:.1f} | {ours / base:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64, help="images for InceptionV1 (demo: 8x)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layers", default="mixed3b,mixed4c,mixed5b")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--umap", default="1000,5000,20000")
    parser.add_argument("--double-vjp", action="store_true")
    parser.add_argument("--skip-umap", action="store_true")
    parser.add_argument("--skip-collect", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}\n")
    if not args.skip_collect:
        bench_collection(args)
        print()
    if not args.skip_umap:
        bench_umap(args)


if __name__ == "__main__":
    main()
