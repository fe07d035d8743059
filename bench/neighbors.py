"""Benchmark: our exact nearest neighbours (``generator.atlas.layout.exact_neighbors``, blocked
float64 products) against scikit-learn's ``NearestNeighbors(algorithm="brute")``, in one run.

Both answer the same question (the exact ``k`` nearest rows of every row, itself first) for
UMAP's ``precomputed_knn``. For each size and metric: the best of ``--repeats`` timed runs of
each, the ratio, and how often the two agree (rows whose neighbour sets are identical; where
they differ, distances tie within float32 rounding). Data: seeded clustered non-negative
vectors, as activations after a ReLU.

Usage: ``python bench/neighbors.py [--sizes 2000 4000 8000] [--dim 128] [--k 15 50]
[--repeats 3]``; prints one Markdown row per case for bench/RESULTS.md ("Exact neighbours").
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.atlas.layout import exact_neighbors


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, (20, dim))
    labels = rng.integers(0, 20, n)
    return np.maximum(centres[labels] + rng.normal(0, 0.5, (n, dim)), 0).astype(np.float32)


def sklearn_neighbors(x: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    model = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(x)
    distances, indices = model.kneighbors(x)
    return indices, distances


def best(fn, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, nargs="+", default=[15, 50])
    parser.add_argument("--metrics", nargs="+", default=["cosine", "euclidean"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    warm = clustered(64, args.dim)  # imports and first-call set-up, not timed
    for metric in args.metrics:
        exact_neighbors(warm, 5, metric)
        sklearn_neighbors(warm, 5, metric)
    print("| N | dim | k | metric | ours s | scikit-learn brute s | ours / sklearn | same rows |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        x = clustered(n, args.dim)
        for k in args.k:
            for metric in args.metrics:
                ours_s, ours = best(partial(exact_neighbors, x, k, metric), args.repeats)
                sk_s, theirs = best(partial(sklearn_neighbors, x, k, metric), args.repeats)
                assert ours is not None
                same = np.mean(
                    [
                        set(a) == set(b)
                        for a, b in zip(ours[0], theirs[0], strict=True)  # type: ignore[index]
                    ]
                )
                print(
                    f"| {n} | {args.dim} | {k} | {metric} | {ours_s:.3f} | {sk_s:.3f} | "
                    f"{ours_s / sk_s:.2f} | {same:.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
