"""A large-N layout on a CPU: UMAP of a seeded subset of landmarks, every other vector placed
from its nearest landmarks in the original space.

The shape: ``vectors [N, C] -> raw embedding [N, d] float64`` (not yet normalized:
:func:`generator.atlas.layout.embed` normalizes every back end's result the same way).

1. **Landmarks**: ``L = min(landmarks, N)`` rows drawn without replacement by
   ``numpy.random.default_rng(seed)``, in index order (identical landmarks share one UMAP
   point).
2. **Their UMAP**: umap-learn with the layout's settings, seeded, on the landmarks' exact
   nearest neighbours among themselves (:func:`nearest`, handed over as ``precomputed_knn``,
   so pynndescent and its ~120 s numba compile are never needed).
3. **Placement**: each other row's :data:`PLACE_NEIGHBORS` nearest landmarks, exactly, in the
   original space (:func:`nearest`); its position is their positions' mean weighted by UMAP's
   membership strengths, as umap-learn's ``transform()`` initializes new points
   (``smooth_knn_dist`` with ``local_connectivity = 0``, weight ``exp(-d / sigma)``). The
   landmarks keep their UMAP positions. The placed points are not refined afterwards
   (umap-learn's transform() runs 30 more epochs of its SGD against the fixed landmarks):
   placement alone came within 0.005 of full UMAP's trustworthiness (bench/RESULTS.md,
   "Layout at scale").

Cost: ``2 L^2 C`` (landmark neighbours) + ``2 (N - L) L C`` (placement) multiply-adds in
float32 blocks of :data:`BLOCK_ELEMENTS`, plus umap-learn on ``L`` points; memory: the
landmarks in float32, the ``[N, d]`` result, and one block of :data:`PLACE_ROWS` vectors with
its scores: the vectors are read block by block (a float16 memory map stays on disk), so the
memory does not grow with ``N x C`` (bench/RESULTS.md, "Layout at scale"). Deterministic for a seed on one machine
(float32 products may round differently on another BLAS, which can swap near-tied neighbours).
Metrics: those of :data:`generator.atlas.layout.EXACT_METRICS`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from generator.atlas.layout import LayoutParams

log = logging.getLogger(__name__)

#: Landmarks each placed vector is averaged from (umap-learn's transform() uses the model's
#: n_neighbors; 10 measured as good as 15 and 50 in bench/RESULTS.md, "Layout at scale").
PLACE_NEIGHBORS = 10

#: float32 elements of one block of the query x landmark score matrix: 64 MiB on a CPU, 1 GiB
#: on a GPU (bigger products keep it busy).
BLOCK_ELEMENTS = {"cpu": 1 << 24, "cuda": 1 << 28}

#: Rows of the vectors placed at a time: read (from a memory map), converted to float32 and
#: searched block by block, so the vectors are never held whole (a million 1,024-channel
#: float16 rows are 2 GB on disk; a float32 copy would be 4 GB, and each further copy as much).
PLACE_ROWS = 1 << 16

#: Version of this computation (part of the layout's cache key when this back end runs).
#: 2: the landmarks are drawn from every row, not from the distinct ones (which needed a sorted
#: copy of all vectors), and the vectors are streamed.
LANDMARKS_VERSION = 2


def choose_landmarks(count: int, landmarks: int, seed: int) -> np.ndarray:
    """Indices ``[min(landmarks, count)] int64`` of the landmark rows, increasing, drawn
    without replacement by ``default_rng(seed)`` (all rows when ``landmarks >= count``)."""
    if landmarks >= count:
        return np.arange(count, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, size=landmarks, replace=False)).astype(np.int64)


def _prepared(vectors: np.ndarray, metric: str) -> np.ndarray:
    """float32 rows, unit length for cosine (a zero row stays zero: distance 1 to all)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = (x / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
    return x


def nearest(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    metric: str,
    *,
    same: bool = False,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest rows of ``base [L, C]`` to each row of ``queries [M, C]``.

    Returns ``(indices [M, k] int64, distances [M, k] float32)``, each row by increasing
    distance. ``same``: ``queries`` is ``base`` and row ``i``'s own index comes first at
    distance 0 (umap-learn's ``precomputed_knn`` layout). Cosine distance ``1 - cos``,
    euclidean ``|x - y|``, from float32 products a block of :data:`BLOCK_ELEMENTS` at a time
    on ``device`` (a device type; on a CPU torch's matmul and top-k use every thread torch is
    allowed). Results are numpy arrays on the CPU.
    """
    import torch

    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"nearest: metric {metric!r} is not cosine or euclidean")
    b = torch.from_numpy(_prepared(base, metric)).to(device)
    m, count = queries.shape[0], b.shape[0]
    k = min(k, count)
    b_t = b.T.contiguous()
    b_squares = (b * b).sum(dim=1)
    indices = np.empty((m, k), dtype=np.int64)
    distances = np.empty((m, k), dtype=np.float32)
    rows = max(1, BLOCK_ELEMENTS.get(device, BLOCK_ELEMENTS["cpu"]) // max(1, count))
    with torch.no_grad():
        for start in range(0, m, rows):
            stop = min(m, start + rows)
            # the queries are read and prepared a block at a time (they may be a float16 memory
            # map of a million rows): each row's values do not depend on the block
            block = b[start:stop] if same else _query_block(queries[start:stop], metric, b)
            # larger score = nearer: x.y for unit vectors, 2 x.y - |y|^2 for euclidean
            if metric == "cosine":
                score = block @ b_t
            else:
                score = torch.addmm(b_squares, block, b_t, beta=-1.0, alpha=2.0)
            if same:
                own = torch.arange(stop - start, device=b.device)
                score[own, own + start] = torch.inf
            top, idx = torch.topk(score, k, dim=1)
            if metric == "cosine":
                dist = (1.0 - top).clamp_min(0.0)
            else:
                squares = (block * block).sum(dim=1, keepdim=True)
                dist = (squares - top).clamp_min(0.0).sqrt()
            if same:
                dist[:, 0] = 0.0
            indices[start:stop] = idx.cpu().numpy()
            distances[start:stop] = dist.cpu().numpy()
    return indices, distances


def _query_block(rows: np.ndarray, metric: str, like: Any) -> Any:
    """A block of query rows as prepared float32 on ``like``'s device."""
    import torch

    return torch.from_numpy(_prepared(rows, metric)).to(like.device)


def placement_weights(distances: np.ndarray) -> np.ndarray:
    """UMAP membership strengths ``[M, k] float64`` of each query's nearest landmarks, each row
    summing to 1: umap-learn's ``smooth_knn_dist`` with ``local_connectivity = 0`` (its
    transform()'s bipartite setting), weight ``exp(-d / sigma)``. A row whose weights all
    vanish falls back to equal weights."""
    from umap.umap_ import smooth_knn_dist

    dists = np.ascontiguousarray(distances, dtype=np.float32)
    sigmas, rhos = smooth_knn_dist(dists, float(dists.shape[1]), local_connectivity=0.0)
    excess = np.maximum(dists.astype(np.float64) - rhos[:, None], 0.0)
    weights = np.exp(-excess / sigmas[:, None])
    totals = weights.sum(axis=1, keepdims=True)
    flat = ~(totals[:, 0] > 0)
    weights[flat] = 1.0
    totals[flat] = dists.shape[1]
    return weights / totals


def place(indices: np.ndarray, weights: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Each query's position ``[M, d] float64``: the ``weights``-weighted mean of
    ``positions[indices]`` (``indices``, ``weights`` ``[M, k]``, ``positions [L, d]``)."""
    return np.einsum("mk,mkd->md", weights, positions[indices].astype(np.float64))


def landmark_umap(
    vectors: np.ndarray,
    params: LayoutParams,
    *,
    n_components: int,
    seed: int,
    landmarks: int,
) -> np.ndarray:
    """The raw layout ``[N, n_components] float64`` of ``vectors [N, C]`` (see the module
    docstring), in any float precision and possibly memory-mapped: they are read a block of
    :data:`PLACE_ROWS` rows at a time and never copied whole. ``params``: n_neighbors (capped
    to the distinct landmarks less one), min_dist and metric (cosine or euclidean) of
    umap-learn on the landmarks. Duplicate landmarks share one UMAP point.

    Raises:
        AtlasError: fewer than :data:`generator.atlas.layout.MIN_DISTINCT` distinct landmarks.
        ValueError: a metric other than cosine or euclidean (the spec's is checked when the
            back end is chosen: :func:`generator.atlas.layout_backends.choose_backend`).
    """
    from generator.atlas.layout import MIN_DISTINCT, _import_umap, too_few_distinct

    count = vectors.shape[0]
    chosen = choose_landmarks(count, landmarks, seed)
    subset = np.ascontiguousarray(vectors[chosen], dtype=np.float32)
    distinct, inverse = np.unique(subset, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(distinct) < MIN_DISTINCT:
        raise too_few_distinct(
            len(distinct), count, among=f" among the {len(chosen)} landmarks drawn"
        )
    k = max(2, min(params.n_neighbors, len(distinct) - 1))
    start = time.monotonic()
    knn = nearest(distinct, distinct, k, params.metric, same=True)
    log.info(
        "landmarks: neighbours of %d landmarks in %.1fs", len(distinct), time.monotonic() - start
    )
    start = time.monotonic()
    model = _import_umap().UMAP(
        n_components=n_components,
        n_neighbors=k,
        min_dist=params.min_dist,
        metric=params.metric,
        random_state=seed,
        n_jobs=1,
        precomputed_knn=(*knn, None),
    )
    anchor = np.asarray(model.fit_transform(distinct), dtype=np.float64)
    log.info("landmarks: UMAP of %d landmarks in %.1fs", len(distinct), time.monotonic() - start)
    out = np.empty((count, n_components), dtype=np.float64)
    out[chosen] = anchor[inverse]
    others = np.setdiff1d(np.arange(count), chosen, assume_unique=True)
    start = time.monotonic()
    for first in range(0, len(others), PLACE_ROWS):
        rows = others[first : first + PLACE_ROWS]
        idx, dist = nearest(vectors[rows], distinct, PLACE_NEIGHBORS, params.metric)
        out[rows] = place(idx, placement_weights(dist), anchor)
    if len(others):
        log.info("landmarks: placed %d vectors in %.1fs", len(others), time.monotonic() - start)
    return out
