"""Layout: the normalization formula, seeded UMAP/t-SNE, degenerate inputs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from generator.atlas.layout import (
    LayoutParams,
    compute_layout,
    default_layout_params,
    embed,
    exact_neighbors,
    layout_1d,
    normalize_axes,
)
from generator.errors import AtlasError


def clusters(n_per: int = 40, dims: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated non-negative clusters (like post-ReLU activations) and their labels."""
    rng = np.random.default_rng(seed)
    a = rng.random((n_per, dims)) * 0.2 + np.eye(dims)[0] * 3
    b = rng.random((n_per, dims)) * 0.2 + np.eye(dims)[1] * 3
    return np.concatenate([a, b]).astype(np.float32), np.repeat([0, 1], n_per)


def assert_normalized(xy: np.ndarray) -> None:
    """Each axis of a layout normalized as METHOD.md 3 says: its 1st and 99th percentiles,
    each moved out by 10% of their distance, went to 0 and 1, so they now sit at 0.1 / 1.2 and
    1.1 / 1.2 (min-max scaling, or percentiles without the margin, would not)."""
    assert xy.min() >= 0 and xy.max() <= 1
    np.testing.assert_allclose(
        np.percentile(xy, [1, 99], axis=0),
        [[1 / 12] * xy.shape[1], [11 / 12] * xy.shape[1]],
        atol=1e-6,
    )


def test_normalization_on_hand_computed_values() -> None:
    # x = 0, 1, ..., 100: 1st/99th percentiles 1 and 99, range 98, widened by 9.8 each side
    # to [-8.8, 108.8] (span 117.6); nothing is clipped.
    # y = x with two outliers: percentiles computed by numpy's linear rule, then clipped.
    x = np.arange(101, dtype=np.float64)
    out = normalize_axes(np.stack([x, x], axis=1))
    assert out.dtype == np.float32 and out.shape == (101, 2)
    span = 108.8 - -8.8
    for value in (0, 1, 50, 99, 100):
        assert out[value, 0] == pytest.approx((value + 8.8) / span, abs=1e-6)
    # Outliers beyond the widened range are clipped to 0 and 1.
    y = np.concatenate([[-1000.0], np.arange(99, dtype=np.float64), [1000.0]])
    lo, hi = np.percentile(y, [1, 99])  # 0.0 and 98.0
    assert (lo, hi) == (0.0, 98.0)
    out = normalize_axes(y[:, None])[:, 0]
    assert out[0] == 0.0 and out[-1] == 1.0
    assert out[1] == pytest.approx(9.8 / 117.6) and out[50] == pytest.approx((49 + 9.8) / 117.6)


def test_an_axis_without_spread_maps_to_the_middle() -> None:
    points = np.stack([np.full(10, 3.0), np.arange(10.0)], axis=1)
    out = normalize_axes(points)
    assert (out[:, 0] == 0.5).all()
    # the other axis as if alone: percentiles 0.09 and 8.91 of 0..9, widened by 0.882 each side
    np.testing.assert_allclose(out[:, 1], (np.arange(10) + 0.792) / 10.584, rtol=1e-6)


def test_article_defaults_per_layer() -> None:
    assert default_layout_params("mixed4c") == LayoutParams("umap", 50, 0.05, "cosine")
    assert default_layout_params("mixed5b") == LayoutParams("umap", 50, 0.05, "cosine")
    assert default_layout_params("mixed3b") == LayoutParams("umap", 200, 0.05, "euclidean")
    assert default_layout_params("mixed5b", kind="class") == LayoutParams(
        "umap", 20, 0.01, "cosine"
    )


def test_umap_layout_is_seeded_normalized_and_separates_clusters() -> None:
    vectors, labels = clusters()
    params = LayoutParams(n_neighbors=10, metric="cosine")
    a = compute_layout(vectors, params, seed=0)
    b = compute_layout(vectors, params, seed=0)
    c = compute_layout(vectors, params, seed=1)
    assert a.xy.shape == (80, 2) and a.xy.dtype == np.float32
    assert_normalized(a.xy)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert not np.array_equal(a.xy, c.xy)
    assert a.method == "umap" and a.params["n_neighbors"] == 10 and a.params["seed"] == 0
    centre = [a.xy[labels == k].mean(axis=0) for k in (0, 1)]
    spread = max(a.xy[labels == k].std(axis=0).max() for k in (0, 1))
    assert np.linalg.norm(centre[0] - centre[1]) > 4 * spread


def test_many_duplicates_are_laid_out_once_and_quickly() -> None:
    vectors, _ = clusters(n_per=30)
    duplicated = np.concatenate([np.repeat(vectors[:1], 3000, axis=0), vectors])
    start = time.monotonic()
    layout = compute_layout(duplicated, LayoutParams(n_neighbors=15), seed=0)
    assert time.monotonic() - start < 60
    assert layout.xy.shape == (3060, 2)
    # Identical vectors share one position.
    assert (layout.xy[:3000] == layout.xy[0]).all()
    np.testing.assert_array_equal(layout.xy[3000], layout.xy[0])


def test_small_inputs_cap_neighbours_and_too_few_distinct_vectors_fail_clearly() -> None:
    vectors, _ = clusters(n_per=4)
    layout = compute_layout(vectors, LayoutParams(n_neighbors=50), seed=0)
    assert layout.params["n_neighbors"] == 7
    three = np.repeat(np.eye(3, dtype=np.float32), 20, axis=0)
    with pytest.raises(AtlasError, match="too few distinct") as err:
        compute_layout(three, LayoutParams(), seed=0)
    assert err.value.fix and "samples" in err.value.fix


def test_tsne_and_one_dimensional_layouts() -> None:
    vectors, labels = clusters(n_per=20)
    params = LayoutParams(method="tsne", metric="cosine", perplexity=50, learning_rate=10)
    layout = compute_layout(vectors, params, seed=0)
    assert layout.method == "tsne" and layout.params["perplexity"] == pytest.approx(39 / 3)
    assert layout.xy.shape == (40, 2)
    assert_normalized(layout.xy)
    axis = layout_1d(vectors, params, seed=0)
    assert axis.shape == (40,) and axis.dtype == np.float32
    assert_normalized(axis[:, None])
    # The two clusters occupy (nearly) separate intervals of the axis.
    a, b = axis[labels == 0], axis[labels == 1]
    ordered = (a[:, None] < b[None, :]).mean()
    assert ordered > 0.9 or ordered < 0.1
    np.testing.assert_array_equal(axis, layout_1d(vectors, params, seed=0))


def test_unknown_method_is_refused() -> None:
    with pytest.raises(AtlasError, match="unknown layout method"):
        embed(np.eye(5, dtype=np.float32), LayoutParams(method="pca"), seed=0)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_neighbors_match_scipy_and_start_with_each_row(metric: str) -> None:
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(3)
    vectors = np.maximum(rng.normal(size=(300, 12)), 0).astype(np.float32)
    vectors[7] = 0.0  # a zero row: cosine distance 1 to everything else
    found = exact_neighbors(vectors, 9, metric)
    assert found is not None
    indices, distances = found
    assert indices.shape == distances.shape == (300, 9) and distances.dtype == np.float32
    assert (indices[:, 0] == np.arange(300)).all() and (distances[:, 0] == 0).all()
    full = cdist(vectors.astype(np.float64), vectors.astype(np.float64), metric)
    if metric == "cosine":
        full[7, :] = full[:, 7] = 1.0  # scipy gives nan for the zero row
    np.fill_diagonal(full, -1.0)
    expected = np.sort(full, axis=1)[:, :9]
    expected[:, 0] = 0.0
    np.testing.assert_allclose(distances, expected, atol=1e-6)
    assert (np.diff(distances, axis=1) >= 0).all()
    np.testing.assert_allclose(
        np.take_along_axis(np.where(full < 0, 0.0, full), indices, axis=1), distances, atol=1e-6
    )


def test_exact_neighbors_leave_other_metrics_and_huge_inputs_to_umap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import generator.atlas.layout as layout

    vectors = np.ones((20, 3), dtype=np.float32)
    assert exact_neighbors(vectors, 5, "manhattan") is None
    monkeypatch.setattr(layout, "EXACT_NEIGHBORS_MAX", 10)
    assert exact_neighbors(vectors, 5, "cosine") is None


def test_umap_past_its_small_data_limit_uses_the_exact_neighbors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 4,200 distinct vectors: umap-learn would search neighbours with pynndescent (a long numba
    # compile in every new process); with the exact neighbours handed over it never searches.
    import umap.umap_

    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("umap-learn searched for neighbours itself")

    monkeypatch.setattr(umap.umap_, "nearest_neighbors", no_search)
    rng = np.random.default_rng(0)
    centres = np.eye(16, dtype=np.float32)[:4] * 3
    vectors = np.concatenate([c + rng.random((1050, 16), dtype=np.float32) * 0.3 for c in centres])
    labels = np.repeat(np.arange(4), 1050)
    xy = compute_layout(vectors, LayoutParams(n_neighbors=15), seed=0).xy
    centroids = np.stack([xy[labels == c].mean(axis=0) for c in range(4)])
    spread = max(float(xy[labels == c].std(axis=0).max()) for c in range(4))
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i in range(4) for j in range(i)]
    assert min(gaps) > 3 * spread
