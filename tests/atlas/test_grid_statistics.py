"""Grid statistics at their edges (issue 17, mutation testing of generator/atlas/grid.py):
float32 coordinates on bin boundaries, more samples than one accumulation block, the dtypes and
facts a grid records, classes excluded from the top list, whitening's ridge at its threshold.

Expected values are worked out by hand in the comments or computed by a plain loop."""

from __future__ import annotations

import numpy as np
import pytest

from generator.atlas.artifacts import ROW_BLOCK, Activations, Layout
from generator.atlas.grid import assign_bins, make_grid, top_classes, whitening


def activations(vectors: np.ndarray, attributions: np.ndarray | None = None) -> Activations:
    n = len(vectors)
    return Activations(
        layer="mixed4c",
        vectors=np.asarray(vectors, dtype=np.float32),
        image_index=np.arange(n, dtype=np.int64),
        positions=np.zeros((n, 2), dtype=np.int64),
        labels=np.full(n, -1, dtype=np.int64),
        layer_hw=(2, 2),
        attributions=None if attributions is None else np.asarray(attributions, np.float32),
    )


def test_a_float32_coordinate_is_binned_by_its_own_value() -> None:
    # float32(0.7) = 0.699999988..., so 0.7 * 10 cells is 6.99999988: bin 6. (Multiplying in
    # float32 would round the product up to 7.0 and move the sample one cell to the right.)
    assert float(np.float32(0.7)) < 0.7
    xy = np.array([[0.7, 0.3]], dtype=np.float32)  # float32(0.3) > 0.3: 3.0000001 -> bin 3
    np.testing.assert_array_equal(assign_bins(xy, 10), [[6, 3]])


def test_coordinates_a_hair_outside_the_unit_square_go_to_the_edge_cells() -> None:
    xy = np.array([[-1e-9, 0.5], [0.5, -0.25], [1.0 + 1e-9, 1.5]])
    np.testing.assert_array_equal(assign_bins(xy, 4), [[0, 2], [2, 0], [3, 3]])


def test_a_grid_needs_a_cell_and_a_layout_point_per_sample() -> None:
    with pytest.raises(ValueError, match="grid size must be >= 1, got 0"):
        assign_bins(np.zeros((1, 2)), 0)
    with pytest.raises(ValueError, match="layout has 3 points for 2 samples"):
        make_grid(activations(np.ones((2, 3))), Layout(np.zeros((3, 2), np.float32), "umap"), 2)


def test_cell_means_over_more_samples_than_one_block() -> None:
    # Two cells of a 2x2 grid: the left half and the right half of the square, 1.5 blocks of
    # samples in all, alternating; every block contributes to both cells.
    n = ROW_BLOCK + ROW_BLOCK // 2
    xs = np.where(np.arange(n) % 2 == 0, 0.25, 0.75)
    xy = np.stack([xs, np.full(n, 0.25)], axis=1).astype(np.float32)
    vectors = np.stack([np.arange(n) % 7, np.ones(n)], axis=1).astype(np.float32)
    grid = make_grid(activations(vectors), Layout(xy, "umap"), 2, min_count=0)
    assert grid.cells.tolist() == [[0, 0], [1, 0]] and grid.counts.tolist() == [n // 2, n // 2]
    for row, parity in enumerate((0, 1)):
        mean = sum(i % 7 for i in range(parity, n, 2)) / (n // 2)  # a plain loop
        np.testing.assert_allclose(grid.directions[row], [mean, 1.0], rtol=1e-6)


def test_a_grid_records_its_facts_with_the_documented_dtypes() -> None:
    xy = np.array([[0.1, 0.1], [0.2, 0.2], [0.9, 0.9]], dtype=np.float32)
    attributions = [[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]
    grid = make_grid(
        activations(np.eye(3), attributions), Layout(xy, "umap"), 2, min_count=0, top_k=2
    )
    assert grid.min_count == 0 and grid.size == 2 and grid.n_samples == 3
    assert grid.cells.tolist() == [[0, 0], [1, 1]] and grid.counts.tolist() == [2, 1]
    assert grid.counts.dtype == np.int64 and grid.cells.dtype == np.int64
    assert grid.attributions is not None and grid.attributions.dtype == np.float32
    # cell (0, 0): mean attribution (2, 1, 0): classes 0 then 1; cell (1, 1): class 2 first,
    # then the tie of 0 and 1 at 0.0 goes to the lower index
    assert grid.top_classes.dtype == np.int64 and grid.top_values.dtype == np.float32
    assert grid.top_classes.tolist() == [[0, 1], [2, 0]]
    assert grid.top_values.tolist() == [[2.0, 1.0], [5.0, 0.0]]
    plain = make_grid(activations(np.eye(3)), Layout(xy, "umap"), 2, min_count=1)
    assert plain.min_count == 1 and plain.cells.tolist() == [[0, 0]]
    assert plain.top_classes.shape == (1, 0) and plain.top_classes.dtype == np.int64
    assert plain.top_values.shape == (1, 0) and plain.top_values.dtype == np.float32


def test_excluded_classes_never_reach_a_cells_top_list() -> None:
    xy = np.array([[0.1, 0.1], [0.2, 0.2]], dtype=np.float32)
    attributions = [[9.0, 1.0, 2.0], [9.0, 3.0, 1.0]]  # mean (9, 2, 1.5); class 0 unused
    valid = np.array([False, True, True])
    grid = make_grid(
        activations(np.eye(2, 3), attributions),
        Layout(xy, "umap"),
        1,
        min_count=0,
        top_k=3,
        valid_classes=valid,
    )
    assert grid.top_classes.tolist() == [[1, 2]]  # k capped to the two valid classes
    assert grid.top_values.tolist() == [[2.0, 1.5]]


def test_top_class_ties_keep_class_order_in_a_wide_row() -> None:
    # 64 classes with scores 0, 1 or 2: a row's top list is every class scoring 2 in index
    # order, then those scoring 1 (an unstable sort shuffles equal scores of long rows).
    scores = np.random.default_rng(0).integers(0, 3, size=(4, 64)).astype(np.float32)
    idx, val = top_classes(scores, 20)
    assert idx.dtype == np.int64 and val.dtype == np.float32
    for row in range(4):
        expected = [c for level in (2, 1, 0) for c in range(64) if scores[row, c] == level][:20]
        assert idx[row].tolist() == expected
        assert val[row].tolist() == [float(scores[row, c]) for c in expected]


def test_whitening_of_one_sample_divides_by_one() -> None:
    white = whitening(activations([[2.0]]))  # S = (2 * 2 / 1)^-1 = 0.25
    assert white.layer == "mixed4c" and white.n_samples == 1
    assert white.ridge == 0.0 and white.matrix.tolist() == [[0.25]]


def test_whitening_ridge_applies_at_the_threshold_and_scales_with_the_largest_eigenvalue() -> None:
    # A^T A / N = diag(2, 0.5) for A = [[2, 0], [0, 1]]: eigenvalues 0.5 and 2.
    acts = activations([[2.0, 0.0], [0.0, 1.0]])
    white = whitening(acts, eps=0.25)  # smallest 0.5 == 0.25 * 2: ridge 0.5
    assert white.ridge == 0.5
    np.testing.assert_allclose(white.matrix, np.diag([1 / 2.5, 1 / 1.0]), rtol=1e-6)
    white = whitening(acts, eps=0.2)  # 0.5 > 0.2 * 2: the plain inverse
    assert white.ridge == 0.0
    np.testing.assert_allclose(white.matrix, np.diag([0.5, 2.0]), rtol=1e-6)
    # largest eigenvalue exactly 1, well conditioned: no ridge
    unit = whitening(activations([[1.0]]))
    assert unit.ridge == 0.0 and unit.matrix.tolist() == [[1.0]]
    # a dead channel with the largest eigenvalue 0.5 (< 1): ridge eps * 0.5
    half = whitening(activations([[1.0, 0.0], [0.0, 0.0]]))  # diag(0.5, 0)
    assert half.ridge == pytest.approx(0.5e-6, rel=1e-12)
    np.testing.assert_allclose(half.matrix, np.diag([1 / (0.5 + 0.5e-6), 1 / 0.5e-6]), rtol=1e-6)


def test_whitening_of_all_zero_activations_is_a_finite_ridge_inverse() -> None:
    white = whitening(activations(np.zeros((4, 3))))  # S = 0: ridge eps, matrix I / eps
    assert white.ridge == 1e-6
    np.testing.assert_allclose(white.matrix, np.eye(3) * 1e6, rtol=1e-6)
