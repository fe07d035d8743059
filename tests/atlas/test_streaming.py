"""Streaming reductions (issue 15): activations stored as float16 ``.npy`` files and loaded
memory-mapped give the same grids, whitening and class selections as the same values held in
memory as float32, and the grid stage over them never holds the whole matrix of attributions.

The in-memory reference is what the pipeline computed before activations were streamed: the
float16 values converted to float32 arrays, whole."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import generator.atlas.grid as grid_module
from generator.atlas.artifacts import Activations, Layout, rows_as, write_npy
from generator.atlas.classes import select, subset
from generator.atlas.grid import make_grid, whitening


def stored(tmp_path: Path, n: int, c: int, k: int, seed: int = 0) -> Activations:
    """Seeded activations of ``n`` samples saved in float16 and loaded back memory-mapped."""
    rng = np.random.default_rng(seed)
    Activations(
        layer="mixed4c",
        vectors=np.maximum(rng.normal(size=(n, c)), 0).astype(np.float32),
        image_index=np.arange(n, dtype=np.int64),
        positions=np.zeros((n, 2), dtype=np.int64),
        labels=rng.integers(0, k, n).astype(np.int64),
        layer_hw=(7, 7),
        attributions=rng.normal(size=(n, k)).astype(np.float32),
    ).save(tmp_path, float16=True)
    return Activations.load(tmp_path)


def in_memory(acts: Activations) -> Activations:
    assert acts.attributions is not None
    return Activations(
        layer=acts.layer,
        vectors=np.array(acts.vectors, dtype=np.float32),
        image_index=acts.image_index,
        positions=acts.positions,
        labels=acts.labels,
        layer_hw=acts.layer_hw,
        attributions=np.array(acts.attributions, dtype=np.float32),
    )


def test_grids_of_memory_mapped_activations_equal_the_in_memory_ones(tmp_path: Path) -> None:
    acts = stored(tmp_path, n=40_000, c=12, k=30)  # 2.4 blocks of rows
    assert isinstance(acts.vectors, np.memmap) and acts.vectors.dtype == np.float16
    xy = np.random.default_rng(1).random((acts.count, 2)).astype(np.float32)
    for size in (4, 20):
        streamed = make_grid(acts, Layout(xy, "umap"), size, min_count=2, top_k=5)
        whole = make_grid(in_memory(acts), Layout(xy, "umap"), size, min_count=2, top_k=5)
        for name in ("cells", "counts", "directions", "attributions", "top_classes", "top_values"):
            np.testing.assert_array_equal(getattr(streamed, name), getattr(whole, name), name)


def test_whitening_sums_blocks_of_rows_as_one_product(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acts = stored(tmp_path, n=3000, c=16, k=3)
    one = whitening(in_memory(acts))
    streamed = whitening(acts)  # memory-mapped float16, one block: the same bytes
    np.testing.assert_array_equal(streamed.matrix, one.matrix)
    assert streamed.n_samples == one.n_samples == 3000 and streamed.ridge == one.ridge
    # 16 channels and room for 16 * 700 elements: blocks of 700 rows, the last one short
    monkeypatch.setattr(grid_module, "WHITEN_BLOCK_ELEMENTS", 16 * 700)
    blocks = whitening(acts)
    np.testing.assert_allclose(blocks.matrix, one.matrix, rtol=1e-5, atol=1e-6)
    assert blocks.n_samples == 3000


def test_class_selection_of_memory_mapped_attributions(tmp_path: Path) -> None:
    acts = stored(tmp_path, n=5000, c=8, k=6)
    labels = [f"class{i}" for i in range(6)]
    options = {"winners": True, "top": 50, "valid": None, "where": "test"}
    streamed = select(acts, labels, ["class2", "class4"], **options)  # type: ignore[arg-type]
    whole = select(in_memory(acts), labels, ["class2", "class4"], **options)  # type: ignore[arg-type]
    np.testing.assert_array_equal(streamed.indices, whole.indices)
    assert streamed.winners == whole.winners and streamed.top == whole.top
    taken, reference = subset(acts, streamed.indices), subset(in_memory(acts), whole.indices)
    np.testing.assert_array_equal(np.asarray(taken.vectors, np.float32), reference.vectors)
    np.testing.assert_array_equal(
        np.asarray(taken.attributions, np.float32),  # type: ignore[arg-type]
        reference.attributions,  # type: ignore[arg-type]
    )


def test_the_grid_stage_holds_blocks_not_the_whole_attribution_matrix(tmp_path: Path) -> None:
    # 200,000 samples x 100 classes: 40 MB of float16 attributions on disk, 80 MB as float32
    # and 160 MB as float64 in memory; the grid streams blocks of 16,384 rows (13 MB float64).
    n, c, k = 200_000, 8, 100
    rng = np.random.default_rng(2)
    write_npy(tmp_path / "attr.npy", rng.normal(size=(n, k)).astype(np.float16), np.float16)
    Activations(
        layer="mixed4c",
        vectors=rng.random((n, c)).astype(np.float16),
        image_index=np.arange(n, dtype=np.int64),
        positions=np.zeros((n, 2), dtype=np.int64),
        labels=np.zeros(n, dtype=np.int64),
        layer_hw=(7, 7),
        attributions=np.load(tmp_path / "attr.npy", mmap_mode="r"),
    ).save(tmp_path / "acts", float16=True)
    acts = Activations.load(tmp_path / "acts")
    xy = rng.random((n, 2)).astype(np.float32)
    tracemalloc.start()
    try:
        grid = make_grid(acts, Layout(xy, "umap"), 20, min_count=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grid.attributions is not None and grid.attributions.shape == (400, k)
    assert peak < 60e6, f"the grid stage held {peak / 1e6:.0f} MB"
    # and the blocks are the rows as the pipeline reads them
    first = next(rows_as(acts.attributions, np.float64))  # type: ignore[arg-type]
    assert first.shape == (16384, k) and first.dtype == np.float64
