"""Lay sampled activations out in 2-D (or 1-D), each axis normalized to [0, 1] (METHOD.md 3).

UMAP (umap-learn) on the raw, not whitened, activation vectors, with the article's per-layer
settings as defaults; t-SNE (scikit-learn) as an alternative; 1-D layouts for the y axis of class
comparisons. Seeded (``random_state``), so a layout is reproducible; umap-learn then runs on one
thread.

Degenerate inputs are handled before they reach UMAP: exact duplicate vectors are laid out once
and share their position (many duplicates made umap-learn/pynndescent crawl or hit a
RecursionError: METHOD.md 8); ``n_neighbors`` and the t-SNE perplexity are capped for small
inputs; fewer than :data:`MIN_DISTINCT` distinct vectors raise an :class:`AtlasError`.

UMAP's nearest neighbours are computed here, exactly, by blocked matrix products
(:func:`exact_neighbors`; cosine and euclidean metrics, up to :data:`EXACT_NEIGHBORS_MAX`
distinct vectors) and handed to umap-learn as ``precomputed_knn``. umap-learn itself computes
all pairwise distances below 4096 points through a per-pair Python call (60 s of a 67 s layout
of 4,000 vectors on the project's machine) and from 4096 points on runs pynndescent, whose
numba compilation took ~120 s in every new process (bench/RESULTS.md, "Collection and
layout"); the exact neighbours take about a second for 4,000 vectors and compile nothing.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.atlas.artifacts import Layout
from generator.errors import AtlasError

if TYPE_CHECKING:
    from generator.atlas.layout_backends import LayoutBackend

log = logging.getLogger(__name__)

#: Layout methods.
METHODS = ("umap", "tsne")

#: Fewest distinct vectors a layout is computed for (umap-learn's spectral initialisation needs
#: more than n_components + 1 points).
MIN_DISTINCT = 4

#: Layers the article laid out with euclidean UMAP and 200 neighbours (METHOD.md 3).
EARLY_LAYERS = ("mixed3a", "mixed3b")

#: Most distinct vectors whose UMAP neighbours are computed exactly (O(N^2 C) multiply-adds:
#: ~10 s for 32k 256-d vectors on one core); above it umap-learn's own search (pynndescent).
EXACT_NEIGHBORS_MAX = 32_768

#: Metrics :func:`exact_neighbors` computes (others go to umap-learn's own search).
EXACT_METRICS = ("cosine", "euclidean")

#: Percentiles and relative margin of the axis normalization (METHOD.md 3).
NORMALIZE_PERCENTILES = (1.0, 99.0)
NORMALIZE_MARGIN = 0.1


@dataclass(frozen=True)
class LayoutParams:
    """Settings of a layout; all of them are part of its cache key.

    Attributes:
        method: ``umap`` or ``tsne``.
        n_neighbors: UMAP neighbourhood size (capped to the number of distinct vectors - 1).
        min_dist: UMAP minimum distance in the embedding.
        metric: distance between activation vectors (``cosine``, ``euclidean``...).
        perplexity: t-SNE perplexity (article: 50; capped to (distinct - 1) / 3).
        learning_rate: t-SNE learning rate (article: 10).
    """

    method: str = "umap"
    n_neighbors: int = 50
    min_dist: float = 0.05
    metric: str = "cosine"
    perplexity: float = 50.0
    learning_rate: float = 10.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_layout_params(layer: str, kind: str = "layer") -> LayoutParams:
    """The article's settings (METHOD.md 3): class atlases UMAP(20, 0.01, cosine); the y axis of
    a two-class comparison 1-D t-SNE (cosine, perplexity 50, learning rate 10); mixed3a/3b
    UMAP(200, 0.05, euclidean); every other layer (mixed4a..5b) UMAP(50, 0.05, cosine).

    :class:`LayoutParams`' own defaults are the last of these (and t-SNE's perplexity 50 and
    learning rate 10), so each case names only what differs from them."""
    if kind == "comparison":
        return LayoutParams(method="tsne")
    if kind == "class":
        return LayoutParams(n_neighbors=20, min_dist=0.01)
    if layer in EARLY_LAYERS:
        return LayoutParams(n_neighbors=200, metric="euclidean")
    return LayoutParams()


def normalize_axes(points: np.ndarray) -> np.ndarray:
    """Normalize each column of ``points [N, D]`` to [0, 1] as METHOD.md section 3 says.

    Per axis: ``lo, hi`` = the 1st and 99th percentiles (numpy's linear interpolation);
    widen both by 10% of ``hi - lo`` (``lo -= 0.1 r``, ``hi += 0.1 r`` with the same
    ``r = hi - lo``); clip to ``[lo, hi]``; map ``lo -> 0``, ``hi -> 1`` linearly. An axis
    whose percentiles coincide (no spread) maps to 0.5. Returns ``[N, D] float32`` in [0, 1]
    (exactly: a value clipped to ``[lo, hi]`` gives ``0 <= x - lo <= hi - lo`` in floating
    point too, rounding being monotonic).
    (Lucid's ``normalize_layout`` widened ``hi`` by 10% of the already widened range and
    rescaled by the clipped data's min and max; we follow the method as written.)
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    low_q, high_q = NORMALIZE_PERCENTILES
    out = np.empty_like(points)
    for axis in range(points.shape[1]):
        column = points[:, axis]
        lo, hi = np.percentile(column, [low_q, high_q])
        spread = hi - lo
        lo, hi = lo - NORMALIZE_MARGIN * spread, hi + NORMALIZE_MARGIN * spread
        if not spread > 0:
            out[:, axis] = 0.5
            continue
        out[:, axis] = (np.clip(column, lo, hi) - lo) / (hi - lo)
    return out.astype(np.float32)


def _distinct(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows ``[U, C]``, inverse ``[N]`` with ``distinct[inverse] == vectors``)."""
    unique, inverse = np.unique(vectors, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def _import_umap() -> Any:
    with warnings.catch_warnings():
        # umap-learn announces at import that ParametricUMAP (TensorFlow) is unavailable.
        warnings.filterwarnings(
            "ignore", message="Tensorflow not installed", category=ImportWarning
        )
        import umap

    return umap


def exact_neighbors(
    vectors: np.ndarray, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """The exact ``k`` nearest neighbours of every row of ``vectors [N, C]``, itself first.

    Returns ``(indices [N, k] int64, distances [N, k] float32)``, each row by increasing
    distance, then index (row ``i`` starts with ``i`` at distance 0), as umap-learn's
    ``precomputed_knn`` wants them; None when ``metric`` is not one of :data:`EXACT_METRICS` or
    ``N`` exceeds :data:`EXACT_NEIGHBORS_MAX`. Cosine distance is ``1 - x.y / (|x| |y|)`` (a
    zero row at distance 1 from every other row), euclidean ``|x - y|``; both by
    scikit-learn's ``NearestNeighbors(algorithm="brute")`` in float64 (as fast as our own
    blocked search for cosine, 1.5x faster for euclidean: bench/RESULTS.md "Exact
    neighbours").
    """
    n = vectors.shape[0]
    if metric not in EXACT_METRICS or n > EXACT_NEIGHBORS_MAX or not 1 <= k <= n:
        return None
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(vectors, dtype=np.float64)
    search = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(x)
    distances, indices = search.kneighbors(x)
    rows = np.arange(n)
    own = indices == rows[:, None]
    missing = ~own.any(axis=1)  # more than k rows at distance 0, its own index not among them
    indices[missing, -1] = rows[missing]
    own[missing, -1] = True
    order = np.lexsort((indices, np.where(own, -np.inf, distances)))  # own, then by distance
    return (
        np.take_along_axis(indices, order, axis=1).astype(np.int64),
        np.maximum(np.take_along_axis(np.where(own, 0.0, distances), order, axis=1), 0.0).astype(
            np.float32
        ),
    )


def _fit(
    vectors: np.ndarray,
    params: LayoutParams,
    n_components: int,
    seed: int,
    backend: LayoutBackend | None = None,
) -> np.ndarray:
    """The raw embedding ``[U, n_components]`` of distinct ``vectors``; warnings are logged.
    ``backend``: another UMAP than umap-learn (:mod:`generator.atlas.layout_backends`)."""
    count = vectors.shape[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if params.method == "umap" and backend is not None and backend.name != "umap-learn":
            embedding = backend.fit(vectors, params, n_components, seed)
        elif params.method == "umap":
            umap = _import_umap()
            knn = exact_neighbors(vectors, params.n_neighbors, params.metric)
            model = umap.UMAP(
                n_components=n_components,
                n_neighbors=params.n_neighbors,
                min_dist=params.min_dist,
                metric=params.metric,
                random_state=seed,
                n_jobs=1,  # implied by random_state; said explicitly to avoid umap's warning
                precomputed_knn=(None, None, None) if knn is None else (*knn, None),
            )
            embedding = model.fit_transform(vectors)
        else:
            from sklearn.manifold import TSNE

            model = TSNE(
                n_components=n_components,
                perplexity=params.perplexity,
                learning_rate=params.learning_rate,
                metric=params.metric,
                init="random" if count <= n_components + 1 else "pca",
                random_state=seed,
            )
            embedding = model.fit_transform(vectors)
    _log_warnings(caught, params.method, count)
    return np.asarray(embedding, dtype=np.float64)


def embed(
    vectors: np.ndarray,
    params: LayoutParams,
    *,
    seed: int,
    n_components: int = 2,
    backend: LayoutBackend | None = None,
) -> tuple[np.ndarray, LayoutParams]:
    """Normalized layout ``[N, n_components] float32`` in [0, 1] and the settings used.

    Args:
        vectors: ``[N, C]`` activation vectors (float; any precision).
        params: see :class:`LayoutParams`.
        seed: random state of UMAP / t-SNE.
        n_components: 2 for an atlas, 1 for a comparison axis.
        backend: the UMAP back end (default: umap-learn; see
            :mod:`generator.atlas.layout_backends`).

    Raises:
        AtlasError: unknown method, or fewer than :data:`MIN_DISTINCT` distinct vectors.
    """
    if params.method not in METHODS:
        raise AtlasError(
            f"unknown layout method {params.method!r}",
            where="layout.method",
            expected=" | ".join(METHODS),
            got=params.method,
        )
    if params.method == "umap" and backend is not None and backend.streams:
        return _embed_streamed(vectors, params, n_components, seed, backend)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    distinct, inverse = _distinct(vectors)
    count = distinct.shape[0]
    if count < MIN_DISTINCT:
        raise too_few_distinct(count, vectors.shape[0])
    if count < vectors.shape[0]:
        log.info("layout: %d duplicate vectors share positions", vectors.shape[0] - count)
    used = replace(
        params,
        n_neighbors=max(2, min(params.n_neighbors, count - 1)),
        perplexity=float(min(params.perplexity, max(1.0, (count - 1) / 3))),
    )
    try:
        raw = _fit(distinct, used, n_components, seed, backend)
    except RecursionError as err:
        raise AtlasError(
            f"{used.method} failed on these activations (recursion too deep)",
            where="layout",
            fix="use more images or a different layer; report this with the atlas spec",
        ) from err
    _check_finite(raw, used.method)
    return normalize_axes(raw)[inverse], used


def _embed_streamed(
    vectors: np.ndarray,
    params: LayoutParams,
    n_components: int,
    seed: int,
    backend: LayoutBackend,
) -> tuple[np.ndarray, LayoutParams]:
    """:func:`embed` by a back end that reads ``vectors`` block by block (the landmarks):
    they are neither converted nor deduplicated whole, so a float16 memory map of a million
    rows stays on disk; the back end lays out every row (duplicates included)."""
    count = vectors.shape[0]
    if count < MIN_DISTINCT:
        raise too_few_distinct(count, count)
    used = replace(params, n_neighbors=max(2, min(params.n_neighbors, count - 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = backend.fit(vectors, used, n_components, seed)
    _log_warnings(caught, used.method, count)
    _check_finite(raw, used.method)
    return normalize_axes(raw), used


def too_few_distinct(count: int, total: int, *, among: str = "") -> AtlasError:
    """The error for ``count`` distinct vectors (fewer than :data:`MIN_DISTINCT`) of ``total``
    samples; ``among``: where they were counted when not among all samples."""
    return AtlasError(
        f"too few distinct activation vectors to lay out ({count} distinct of {total} "
        f"samples{among})",
        where="layout",
        expected=f"at least {MIN_DISTINCT} distinct vectors",
        got=str(count),
        fix="use more images (`samples`) or more `positions` per image, or another layer",
    )


def _check_finite(raw: np.ndarray, method: str) -> None:
    if not np.isfinite(raw).all():
        raise AtlasError(
            f"{method} produced non-finite coordinates for {raw.shape[0]} vectors",
            where="layout",
            fix='try `metric = "euclidean"` or more samples',
        )


def _log_warnings(caught: list[warnings.WarningMessage], method: str, count: int) -> None:
    for warning in caught:
        if "knn_search_index" in str(warning.message):
            continue  # umap-learn's note that transform() needs its own index: not used here
        log.warning("%s layout of %d points: %s", method, count, warning.message)


def compute_layout(
    vectors: np.ndarray,
    params: LayoutParams,
    *,
    seed: int,
    backend: LayoutBackend | None = None,
) -> Layout:
    """The 2-D :class:`Layout` of ``vectors [N, C]`` (see :func:`embed`); its ``params`` name
    the back end when it is not umap-learn."""
    xy, used = embed(vectors, params, seed=seed, n_components=2, backend=backend)
    facts = {} if backend is None else backend.facts()
    return Layout(xy=xy, method=used.method, params={**used.as_dict(), "seed": seed, **facts})


def layout_1d(vectors: np.ndarray, params: LayoutParams, *, seed: int) -> np.ndarray:
    """A 1-D layout ``[N] float32`` in [0, 1] (the y axis of a class comparison; article:
    t-SNE with cosine distance)."""
    values, _ = embed(vectors, params, seed=seed, n_components=1)
    return values[:, 0]
