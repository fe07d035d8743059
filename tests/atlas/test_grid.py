"""Grids: half-open bins, minimum counts, cell means, top classes; whitening."""

from __future__ import annotations

import numpy as np
import pytest

from generator.atlas.artifacts import Activations, Layout
from generator.atlas.grid import assign_bins, make_grid, make_grids, top_classes, whitening


def samples(n: int = 500, channels: int = 6, classes: int = 4, seed: int = 0) -> Activations:
    rng = np.random.default_rng(seed)
    return Activations(
        layer="mixed4a",
        vectors=rng.random((n, channels)).astype(np.float32),
        image_index=np.arange(n, dtype=np.int64),
        positions=np.zeros((n, 2), dtype=np.int64),
        labels=np.full(n, -1, dtype=np.int64),
        layer_hw=(4, 4),
        attributions=rng.normal(size=(n, classes)).astype(np.float32),
    )


def layout_of(xy: np.ndarray) -> Layout:
    return Layout(xy=np.asarray(xy, dtype=np.float32), method="umap")


def test_bins_are_half_open_and_the_top_edge_belongs_to_the_last_bin() -> None:
    xy = np.array([[0.0, 0.0], [0.25, 0.5], [0.2499, 0.7499], [0.75, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(assign_bins(xy, 4), [[0, 0], [1, 2], [0, 2], [3, 3], [3, 3]])
    np.testing.assert_array_equal(assign_bins(xy, 1), np.zeros((5, 2)))
    # Exact multiples of 1/G of float32 coordinates never land in two cells or out of range.
    edges = np.linspace(0, 1, 41, dtype=np.float32)
    bins = assign_bins(np.stack([edges, edges], axis=1), 40)
    assert bins.min() == 0 and bins.max() == 39 and (np.diff(bins[:, 0]) >= 0).all()


def test_every_sample_is_in_exactly_one_cell_and_counts_add_up() -> None:
    acts = samples()
    xy = np.random.default_rng(1).beta(2, 2, size=(500, 2))
    xy[:5] = [[0, 0], [1, 1], [0.5, 0.5], [1, 0], [0.1, 0.9]]  # boundary points
    grid = make_grid(acts, layout_of(xy), 10, min_count=4)
    bins = assign_bins(xy.astype(np.float32), 10)
    all_counts = np.bincount(bins[:, 1] * 10 + bins[:, 0], minlength=100)
    assert all_counts.sum() == 500
    assert grid.counts.sum() + grid.dropped_samples == 500
    assert (grid.counts > 4).all()
    assert grid.kept == (all_counts > 4).sum()
    kept = grid.sample_cell >= 0
    np.testing.assert_array_equal(grid.cells[grid.sample_cell[kept]], bins[kept])
    np.testing.assert_array_equal(
        np.bincount(grid.sample_cell[kept], minlength=grid.kept), grid.counts
    )
    dropped_flat = bins[~kept, 1] * 10 + bins[~kept, 0]
    assert (all_counts[dropped_flat] <= 4).all()
    # Kept cells are sorted by (ybin, xbin).
    order = grid.cells[:, 1] * 10 + grid.cells[:, 0]
    assert (np.diff(order) > 0).all()


def test_cell_means_and_top_classes() -> None:
    acts = samples()
    xy = np.random.default_rng(2).random((500, 2))
    grid = make_grid(acts, layout_of(xy), 4, min_count=0, top_k=3)
    assert grid.directions.shape == (grid.kept, 6) and grid.directions.dtype == np.float32
    assert grid.attributions is not None and grid.attributions.shape == (grid.kept, 4)
    for row in range(grid.kept):
        members = grid.sample_cell == row
        np.testing.assert_allclose(
            grid.directions[row], acts.vectors[members].mean(axis=0), rtol=1e-5
        )
        assert acts.attributions is not None
        mean_attr = acts.attributions[members].mean(axis=0)
        np.testing.assert_allclose(grid.attributions[row], mean_attr, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(grid.top_classes[row], np.argsort(-mean_attr)[:3])
    assert grid.top_classes.shape == grid.top_values.shape == (grid.kept, 3)


def test_top_classes_ties_and_excluded_classes() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.5], [0.0, -1.0, 2.0, 9.0]])
    idx, val = top_classes(scores, 2)
    np.testing.assert_array_equal(idx, [[1, 2], [3, 2]])
    np.testing.assert_array_equal(val, [[3.0, 3.0], [9.0, 2.0]])
    idx, _ = top_classes(scores, 5, valid=np.array([True, True, True, False]))
    np.testing.assert_array_equal(idx, [[1, 2, 0], [2, 0, 1]])


def test_all_resolutions_come_from_one_layout_without_attributions() -> None:
    acts = samples()
    plain = Activations(
        layer=acts.layer,
        vectors=acts.vectors,
        image_index=acts.image_index,
        positions=acts.positions,
        labels=acts.labels,
        layer_hw=acts.layer_hw,
    )
    xy = np.random.default_rng(3).random((500, 2))
    grids = make_grids(plain, layout_of(xy), (2, 4, 8), min_count=0)
    assert sorted(grids) == [2, 4, 8]
    for size, grid in grids.items():
        assert grid.size == size and grid.counts.sum() == 500
        assert grid.attributions is None and grid.top_classes.shape == (grid.kept, 0)
    # A coarse cell's count is the sum of the fine cells inside it.
    fine, coarse = grids[8], grids[4]
    for (x, y), count in zip(coarse.cells, coarse.counts, strict=True):
        inside = (fine.cells[:, 0] // 2 == x) & (fine.cells[:, 1] // 2 == y)
        assert fine.counts[inside].sum() == count


def test_no_cell_kept_is_a_valid_empty_grid() -> None:
    grid = make_grid(samples(n=20), layout_of(np.random.default_rng(0).random((20, 2))), 20)
    assert grid.kept == 0 and grid.directions.shape == (0, 6)
    assert (grid.sample_cell == -1).all() and grid.dropped_samples == 20


def test_whitening_is_the_inverse_second_moment() -> None:
    acts = samples(n=400)
    white = whitening(acts)
    a = acts.vectors.astype(np.float64)
    expected = np.linalg.inv(a.T @ a / 400)
    assert white.ridge == 0.0 and white.matrix.dtype == np.float32 and white.n_samples == 400
    np.testing.assert_allclose(white.matrix, expected, rtol=1e-4)


def test_whitening_of_a_singular_second_moment_is_regularized() -> None:
    acts = samples(n=3, channels=6)  # rank 3 < 6 channels
    vectors = acts.vectors.copy()
    vectors[:, 5] = 0.0  # a dead channel
    singular = Activations(
        layer="mixed4a",
        vectors=vectors,
        image_index=acts.image_index,
        positions=acts.positions,
        labels=acts.labels,
        layer_hw=acts.layer_hw,
    )
    white = whitening(singular)
    assert np.isfinite(white.matrix).all()
    np.testing.assert_allclose(white.matrix, white.matrix.T, rtol=1e-6)
    m = vectors.astype(np.float64).T @ vectors / 3
    largest = np.linalg.eigvalsh(m).max()
    assert white.ridge == pytest.approx(1e-6 * largest)
    np.testing.assert_allclose(white.matrix, np.linalg.inv(m + white.ridge * np.eye(6)), rtol=1e-3)
    # Whitening a direction from the samples' span and multiplying back recovers it.
    v = vectors.mean(axis=0).astype(np.float64)
    np.testing.assert_allclose(m @ (white.matrix.astype(np.float64) @ v), v, rtol=1e-3, atol=1e-4)
