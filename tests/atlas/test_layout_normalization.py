"""Layout arithmetic without UMAP (issue 17, mutation testing of generator/atlas/layout.py):
axis normalization of 1-D, 2-D and integer points, the article's settings for every kind of
layout, duplicate vectors, and exact neighbours (scikit-learn's brute force, put in our order:
each row first, then by distance and index), in float64 for vectors far from the origin.

Expected values are worked out by hand in the comments or computed by a plain reference."""

from __future__ import annotations

import numpy as np
import pytest

from generator.atlas.layout import (
    LayoutParams,
    _distinct,
    default_layout_params,
    exact_neighbors,
    normalize_axes,
)


def test_one_dimensional_points_are_one_normalized_column() -> None:
    # 0..100: percentiles 1 and 99, widened by 9.8 each side to [-8.8, 108.8] (span 117.6)
    out = normalize_axes(np.arange(101, dtype=np.float64))
    assert out.shape == (101, 1) and out.dtype == np.float32
    assert out[0, 0] == pytest.approx(8.8 / 117.6, abs=1e-7)
    assert out[100, 0] == pytest.approx(108.8 / 117.6, abs=1e-7)


def test_integer_and_float32_points_are_normalized_in_float64() -> None:
    # the same 0..100 as above, as int64 and float32: (x + 8.8) / 117.6, not truncated
    expected = ((np.arange(101) + 8.8) / 117.6).astype(np.float32)
    for points in (np.arange(101), np.arange(101, dtype=np.float32), list(range(101))):
        out = normalize_axes(points)  # type: ignore[arg-type]
        assert out.dtype == np.float32
        np.testing.assert_allclose(out[:, 0], expected, rtol=0, atol=1e-7)


def test_each_axis_is_normalized_on_its_own_percentiles() -> None:
    # x = 0..100, y = 10 x, z = x / 1000 (a spread of 0.098 is a spread): the same normalized
    # values on the three axes; a constant fourth axis maps to 0.5 without touching the others.
    x = np.arange(101, dtype=np.float64)
    out = normalize_axes(np.stack([x, 10 * x, x / 1000, np.full(101, 7.0)], axis=1))
    expected = (x + 8.8) / 117.6
    for axis in range(3):
        np.testing.assert_allclose(out[:, axis], expected, atol=1e-6)
    assert (out[:, 3] == 0.5).all()


def test_values_beyond_the_widened_bounds_are_clipped_to_0_and_1() -> None:
    # 1st/99th percentiles of 101 values spaced 1 apart are 1 and 99; lo = 1 - 9.8 = -8.8 and
    # hi = 99 + 9.8 = 108.8. Points exactly there map to 0 and 1, points beyond are clipped.
    x = np.concatenate([np.arange(101, dtype=np.float64), [-8.8, 108.8, -50.0, 500.0]])
    out = normalize_axes(x)[:, 0]
    # the four extra points move the percentiles: recompute them the plain way
    lo, hi = np.percentile(x, [1.0, 99.0])
    r = hi - lo
    expected = (np.clip(x, lo - 0.1 * r, hi + 0.1 * r) - (lo - 0.1 * r)) / (1.2 * r)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out[-2] == 0.0 and out[-1] == 1.0
    assert out.min() == 0.0 and out.max() == 1.0


def test_the_article_settings_of_every_kind_of_layout() -> None:
    comparison = default_layout_params("mixed4c", kind="comparison")
    assert comparison == LayoutParams(
        method="tsne",
        n_neighbors=50,
        min_dist=0.05,
        metric="cosine",
        perplexity=50.0,
        learning_rate=10.0,
    )
    early = LayoutParams("umap", 200, 0.05, "euclidean", 50.0, 10.0)
    assert default_layout_params("mixed3a") == early
    assert default_layout_params("mixed3b", kind="layer") == early
    assert default_layout_params("mixed3a", kind="class") == LayoutParams(
        "umap", 20, 0.01, "cosine", 50.0, 10.0
    )
    assert default_layout_params("mixed4a") == LayoutParams("umap", 50, 0.05, "cosine", 50.0, 10.0)
    assert comparison.as_dict() == {
        "method": "tsne",
        "n_neighbors": 50,
        "min_dist": 0.05,
        "metric": "cosine",
        "perplexity": 50.0,
        "learning_rate": 10.0,
    }


def test_duplicate_vectors_are_laid_out_once() -> None:
    vectors = np.array([[1, 0], [0, 1], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    distinct, inverse = _distinct(vectors)
    assert distinct.tolist() == [[0, 1], [1, 0]]  # np.unique sorts the rows
    assert inverse.shape == (5,) and inverse.tolist() == [1, 0, 1, 1, 0]


def reference_neighbors(vectors: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Row by row: distances to every row (itself at -inf), sorted by (distance, index)."""
    x = vectors.astype(np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    indices, distances = [], []
    for i in range(len(x)):
        cosine = metric == "cosine"
        d = 1.0 - x @ x[i] if cosine else np.sqrt(((x - x[i]) ** 2).sum(axis=1))
        d[i] = -np.inf
        order = np.lexsort((np.arange(len(x)), d))[:k]
        indices.append(order)
        distances.append(np.maximum(d[order], 0.0))
    return np.array(indices), np.array(distances)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_neighbors_of_thousands_of_rows(metric: str) -> None:
    # 3,000 rows: more than scikit-learn computes in one chunk of its working memory
    n = 3000
    vectors = np.random.default_rng(5).random((n, 3)).astype(np.float32) + 0.01
    found = exact_neighbors(vectors, 4, metric)
    assert found is not None
    indices, distances = found
    assert indices.dtype == np.int64 and distances.dtype == np.float32
    expected_idx, expected_dist = reference_neighbors(vectors, 4, metric)
    np.testing.assert_array_equal(indices[:, 0], np.arange(n))
    np.testing.assert_array_equal(indices, expected_idx)
    np.testing.assert_allclose(distances, expected_dist, atol=1e-6)


def test_exact_neighbors_of_every_row_and_of_impossible_counts() -> None:
    # four points on a line: 0, 1, 3, 6; euclidean neighbours of each, all of them
    vectors = np.array([[0.0], [1.0], [3.0], [6.0]], dtype=np.float32)
    found = exact_neighbors(vectors, 4, "euclidean")
    assert found is not None
    indices, distances = found
    assert indices.tolist() == [[0, 1, 2, 3], [1, 0, 2, 3], [2, 1, 0, 3], [3, 2, 1, 0]]
    assert distances.tolist() == [[0, 1, 3, 6], [0, 1, 2, 5], [0, 2, 3, 3], [0, 3, 5, 6]]
    one = exact_neighbors(vectors, 1, "euclidean")  # each row's nearest is itself
    assert one is not None and one[0].tolist() == [[0], [1], [2], [3]]
    assert one[1].tolist() == [[0.0]] * 4
    assert exact_neighbors(vectors, 0, "euclidean") is None
    assert exact_neighbors(vectors, 5, "euclidean") is None
    # equal distances go to the lower index: 1 is at 1 from both 0 and 2
    found = exact_neighbors(np.array([[0.0], [1.0], [2.0]], dtype=np.float32), 3, "euclidean")
    assert found is not None and found[0].tolist() == [[0, 1, 2], [1, 0, 2], [2, 1, 0]]


def test_exact_neighbors_are_computed_up_to_the_limit_inclusive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import generator.atlas.layout as layout

    monkeypatch.setattr(layout, "EXACT_NEIGHBORS_MAX", 4)
    line = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]], dtype=np.float32)
    assert exact_neighbors(line[:4], 2, "euclidean") is not None  # N == the limit
    assert exact_neighbors(line, 2, "euclidean") is None  # N == limit + 1


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_each_row_comes_first_among_more_copies_than_neighbours(metric: str) -> None:
    # Rows 0..4 are one vector, row 5 another: rows 0..4 are at distance 0 from each other, so
    # k = 2 nearest of row 3 are {3, and one of 0, 1, 2, 4}; ours: itself, then the lowest
    # index (0); row 0: itself, then 1. Row 5's nearest after itself is row 0 (ties: lowest).
    vectors = np.array([[1.0, 2.0]] * 5 + [[2.0, 1.0]], dtype=np.float32)
    found = exact_neighbors(vectors, 2, metric)
    assert found is not None
    indices, distances = found
    assert indices.tolist() == [[0, 1], [1, 0], [2, 0], [3, 0], [4, 0], [5, 0]]
    assert distances[:5, 0].tolist() == [0.0] * 5  # itself: exactly 0
    assert np.all(distances[:5, 1] < 1e-6)  # a copy: 0 up to rounding (1 - cos in float64)
    assert distances[5, 0] == 0.0 and distances[5, 1] > 0
    assert indices.dtype == np.int64 and distances.dtype == np.float32


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_neighbors_of_vectors_far_from_the_origin_are_computed_in_float64(
    metric: str,
) -> None:
    # 60 vectors within 0.01 of (100, 100, 100, 100): in float32, |x|^2 = 4e4 carries an error
    # of ~0.005, more than the squared distances (~1e-4), and 1 - cos is ~1e-9, below float32
    # resolution; in float64 both are resolved. Expected: distances of the float32 inputs
    # computed directly (differences; angles from normalized differences) in float64.
    rng = np.random.default_rng(12)
    vectors = (100 + rng.random((60, 4)) * 0.01).astype(np.float32)
    found = exact_neighbors(vectors, 5, metric)
    assert found is not None
    indices, distances = found
    x = vectors.astype(np.float64)
    if metric == "euclidean":
        full = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    else:
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        full = ((unit[:, None, :] - unit[None, :, :]) ** 2).sum(axis=2) / 2  # = 1 - cos
    np.testing.assert_array_equal(indices[:, 0], np.arange(60))
    nearest = np.sort(full, axis=1)[:, 1:5]
    scale = nearest.max()
    np.testing.assert_allclose(distances[:, 1:], nearest, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_allclose(
        np.take_along_axis(full, indices[:, 1:], axis=1), nearest, rtol=1e-3, atol=1e-3 * scale
    )
