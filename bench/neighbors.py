"""Benchmark: our blocked float64 exact nearest neighbours (:func:`blocked`) against
scikit-learn's ``NearestNeighbors(algorithm="brute")``, in one run: the measurement behind
``generator.atlas.layout.exact_neighbors``, which uses scikit-learn's since ours was not faster
(issue 12; ours is kept here so the decision can be measured again). A last check: the
product's ``exact_neighbors`` gives the same neighbour sets.

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

_BLOCK_ELEMENTS = 1 << 23  # float64 distances of one block of rows (64 MiB)


def blocked(x: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Our own search before scikit-learn's replaced it (issue 12): float64 distances a block
    of rows at a time (cosine ``1 - u.v`` of unit rows; euclidean ``|x|^2 + |y|^2 - 2 x.y``,
    the square root of the ``k`` chosen only), each row itself first, then by distance and
    index."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    squares = np.einsum("ij,ij->i", x, x)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    rows = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        products = x[start:stop] @ x.T
        if metric == "cosine":
            block = np.subtract(1.0, products, out=products)
        else:
            block = np.add(squares[start:stop, None], squares[None])
            block -= np.multiply(products, 2.0, out=products)
        own = np.arange(stop - start)
        block[own, start + own] = -np.inf
        nearest = np.argpartition(block, k - 1)[:, :k]
        near = np.take_along_axis(block, nearest, axis=1)
        if metric != "cosine":
            near = np.where(near == -np.inf, near, np.sqrt(np.maximum(near, 0.0)))
        order = np.lexsort((nearest, near))
        indices[start:stop] = np.take_along_axis(nearest, order, axis=1)
        distances[start:stop] = np.maximum(np.take_along_axis(near, order, axis=1), 0.0)
    return indices, distances


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
        blocked(warm, 5, metric)
        sklearn_neighbors(warm, 5, metric)
    print(
        "| N | dim | k | metric | ours s | scikit-learn brute s | ours / sklearn | same rows "
        "| exact_neighbors same rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        x = clustered(n, args.dim)
        for k in args.k:
            for metric in args.metrics:
                ours_s, found = best(partial(blocked, x, k, metric), args.repeats)
                sk_s, theirs = best(partial(sklearn_neighbors, x, k, metric), args.repeats)
                product = exact_neighbors(x, k, metric)
                assert product is not None
                same, used = (
                    np.mean([set(a) == set(b) for a, b in zip(mine, theirs[0], strict=True)])  # type: ignore[index]
                    for mine in (found[0], product[0])  # type: ignore[index]
                )
                print(
                    f"| {n} | {args.dim} | {k} | {metric} | {ours_s:.3f} | {sk_s:.3f} | "
                    f"{ours_s / sk_s:.2f} | {same:.4f} | {used:.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
