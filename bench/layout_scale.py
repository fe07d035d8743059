"""Benchmark: a UMAP layout of N seeded clustered vectors by one back end, timed, with its quality.

Data: a seeded Gaussian mixture shaped like activations: ``--clusters`` clusters in 10 groups
(cluster centres scattered around their group's centre), each cluster spread along 4 random
directions of its own plus isotropic noise, clipped at 0 like a ReLU's output; each vector's
cluster is its label. The layout is ``generator.atlas.layout.compute_layout`` with the mixed4c
settings (50 neighbours, min_dist 0.05, cosine; seed 0) through the chosen back end
(``generator.atlas.layout_backends``; ``auto`` decides as the pipeline does).

Printed: the time of the layout alone (not the data), the process's peak resident memory
(data included), the load average before and after, and two quality measures:

* trustworthiness at k = 15 (``sklearn.manifold.trustworthiness``, the layout's metric) on a
  fixed subsample of 2,000 vectors (``default_rng(12345)``; the same rows for every back end);
* neighbour agreement at 20x20 (``generator.atlas.quality.neighbour_agreement``): cells with
  more than 5 vectors, each labelled with its most frequent group of clusters, agreeing with
  the majority of their occupied neighbours.

Usage: ``python bench/layout_scale.py --n 1000000 --dim 128 --backend landmarks [--landmarks
20000] [--warm-up] [--json OUT]`` (``--warm-up``: lay 600 vectors out first, untimed, so that
umap-learn's numba compile is not in the time; pynndescent's, above 32,768 vectors, still is). The last line is ``layout n=N dim=D backend=B seconds=S peak_rss_gb=R
trustworthiness=T`` (B: the back end that ran).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.atlas.layout import LayoutParams, compute_layout
from generator.atlas.layout_backends import (
    BACKENDS,
    DEFAULT_LANDMARKS,
    BackendSettings,
    resolve_backend,
)
from generator.atlas.quality import neighbour_agreement

#: Subsample of the trustworthiness, its neighbours and seed.
TRUST_SAMPLE = 2000
TRUST_K = 15
TRUST_SEED = 12345
#: Grid and fewest vectors per cell of the neighbour agreement (a layer atlas's finest default
#: min_count, at the 20x20 level the quality check uses).
AGREEMENT_GRID = 20
AGREEMENT_MIN_COUNT = 5
#: Vectors of the untimed warm-up layout (``--warm-up``).
WARM_UP = 600
#: Latent directions per cluster, groups of clusters.
CLUSTER_DIRECTIONS = 4
GROUPS = 10


def mixture(
    n: int, dim: int, *, clusters: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors [n, dim] float32 >= 0, labels [n] int64)`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    groups = rng.gamma(1.0, 1.0, (GROUPS, dim)) * (rng.random((GROUPS, dim)) < 0.3)
    centres = groups[np.arange(clusters) % GROUPS] + rng.normal(0.0, 0.25, (clusters, dim))
    spread = rng.normal(0.0, 0.3, (clusters, CLUSTER_DIRECTIONS, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    vectors = np.empty((n, dim), dtype=np.float32)
    chunk = max(1, (1 << 24) // (CLUSTER_DIRECTIONS * dim))
    for start in range(0, n, chunk):
        lab = labels[start : start + chunk]
        z = rng.standard_normal((len(lab), CLUSTER_DIRECTIONS), dtype=np.float32)
        x = centres[lab].astype(np.float32) + np.einsum("nk,nkd->nd", z, spread[lab])
        x += 0.1 * rng.standard_normal((len(lab), dim), dtype=np.float32)
        vectors[start : start + chunk] = np.maximum(x, 0.0)
    return vectors, labels


def trust_rows(n: int) -> np.ndarray:
    """The fixed subsample of the trustworthiness (all rows when ``n`` is smaller)."""
    if n <= TRUST_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(TRUST_SEED).choice(n, TRUST_SAMPLE, replace=False))


def trustworthiness(vectors: np.ndarray, xy: np.ndarray, metric: str) -> float:
    from sklearn.manifold import trustworthiness as sk_trust

    rows = trust_rows(len(vectors))
    k = min(TRUST_K, len(rows) // 2 - 1)
    return float(sk_trust(vectors[rows], xy[rows], n_neighbors=k, metric=metric))


def agreement(xy: np.ndarray, labels: np.ndarray) -> float:
    """Neighbour agreement of the 20x20 grid's cells labelled by their commonest group of
    clusters (``labels`` mod :data:`GROUPS`: a group spans many cells, as a class does in an
    atlas; one of 50 clusters covers about 8 of the 400 cells)."""
    labels = labels % GROUPS
    cells = np.minimum((xy * AGREEMENT_GRID).astype(np.int64), AGREEMENT_GRID - 1)
    cell = cells[:, 0] * AGREEMENT_GRID + cells[:, 1]
    width = int(labels.max()) + 1
    counts = np.bincount(cell * width + labels, minlength=AGREEMENT_GRID**2 * width)
    counts = counts.reshape(AGREEMENT_GRID**2, width)
    rows = [
        [index // AGREEMENT_GRID, index % AGREEMENT_GRID, int(total), [int(top)], []]
        for index, (total, top) in enumerate(zip(counts.sum(1), counts.argmax(1), strict=True))
        if total > AGREEMENT_MIN_COUNT
    ]
    return neighbour_agreement(rows, AGREEMENT_GRID).fraction


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def device_type(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = LayoutParams(n_neighbors=args.n_neighbors, min_dist=args.min_dist, metric=args.metric)
    device = device_type(args.device)
    backend = resolve_backend(
        BackendSettings(backend=args.backend, landmarks=args.landmarks),
        device=device,
        n=args.n,
        metric=args.metric,
    )
    if args.warm_up:  # numba's compile of umap-learn, outside the time
        warm, _ = mixture(WARM_UP, args.dim, seed=args.seed + 1)
        small = dataclasses.replace(backend, landmarks=WARM_UP // 3)
        compute_layout(warm, params, seed=args.seed, backend=small)
    started = time.perf_counter()
    vectors, labels = mixture(args.n, args.dim, seed=args.seed)
    made = time.perf_counter() - started
    print(f"data: {args.n:,} x {args.dim} in {made:.1f} s; back end {backend}", flush=True)
    load_before = load()
    started = time.perf_counter()
    layout = compute_layout(vectors, params, seed=args.seed, backend=backend)
    seconds = time.perf_counter() - started
    load_after = load()
    print(f"layout: {seconds:.1f} s (load {load_before} -> {load_after})", flush=True)
    trust = trustworthiness(vectors, layout.xy, args.metric)
    agree = agreement(layout.xy, labels)
    return {
        "n": args.n,
        "dim": args.dim,
        "backend": backend.name,
        "device": device,
        "landmarks": backend.landmarks if backend.name == "landmarks" else None,
        "params": layout.params,
        "seconds": round(seconds, 2),
        "data_seconds": round(made, 2),
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "trustworthiness": round(trust, 4),
        "agreement": round(agree, 4),
        "load_before": load_before,
        "load_after": load_after,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--landmarks", type=int, default=DEFAULT_LANDMARKS)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--n-neighbors", type=int, default=50)
    parser.add_argument("--min-dist", type=float, default=0.05)
    parser.add_argument("--metric", default="cosine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument(
        "--warm-up", action="store_true", help="lay out 600 vectors first, untimed (compiles)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = run(args)
    print(f"agreement (20x20, cells > {AGREEMENT_MIN_COUNT}): {result['agreement']:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"layout n={result['n']} dim={result['dim']} backend={result['backend']} "
        f"seconds={result['seconds']:.1f} peak_rss_gb={result['peak_rss_gb']:.2f} "
        f"trustworthiness={result['trustworthiness']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
