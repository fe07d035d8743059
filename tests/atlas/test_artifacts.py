"""Artifacts: .npz + .json round trips keep shapes and dtypes; bad files fail clearly;
activations as memory-mapped .npy files (float16 kept as stored, saved by link when unchanged,
the .npz of earlier versions still read)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generator.atlas.artifacts import Activations, Grid, Layout, Whitening
from generator.atlas.grid import make_grid, whitening
from generator.errors import AtlasError


def activations(attributions: bool = True) -> Activations:
    rng = np.random.default_rng(0)
    return Activations(
        layer="mixed4c",
        vectors=rng.random((30, 8)).astype(np.float32),
        image_index=np.arange(30, dtype=np.int64) // 2,
        positions=rng.integers(0, 14, size=(30, 2)).astype(np.int64),
        labels=np.arange(30, dtype=np.int64) % 3,
        layer_hw=(14, 14),
        attributions=rng.normal(size=(30, 5)).astype(np.float32) if attributions else None,
        meta={"model": "tiny:abc", "seed": 3},
    )


def test_activations_round_trip(tmp_path: Path) -> None:
    acts = activations()
    acts.save(tmp_path)
    back = Activations.load(tmp_path)
    assert back.layer == "mixed4c" and back.layer_hw == (14, 14) and back.meta == acts.meta
    for name in ("vectors", "attributions", "image_index", "positions", "labels"):
        got, want = getattr(back, name), getattr(acts, name)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert back.count == 30 and back.channels == 8


def test_activations_in_float16_load_memory_mapped_as_stored(tmp_path: Path) -> None:
    acts = activations()
    acts.save(tmp_path, float16=True)
    back = Activations.load(tmp_path)
    for name in ("vectors", "attributions"):
        got = getattr(back, name)
        assert isinstance(got, np.memmap) and got.dtype == np.float16 and not got.flags.writeable
        np.testing.assert_array_equal(got, getattr(acts, name).astype(np.float16))
    assert not isinstance(back.labels, np.memmap) and back.labels.dtype == np.int64
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "activations.json",
        "attributions.npy",
        "image_index.npy",
        "labels.npy",
        "positions.npy",
        "vectors.npy",
    ]


def test_saving_loaded_activations_links_their_files_unless_they_change(tmp_path: Path) -> None:
    import dataclasses

    activations().save(tmp_path / "a", float16=True)
    back = Activations.load(tmp_path / "a")
    dataclasses.replace(back, meta={"new": 1}).save(tmp_path / "b", float16=True)
    for name in ("vectors", "attributions", "labels"):
        assert (tmp_path / "a" / f"{name}.npy").samefile(tmp_path / "b" / f"{name}.npy")
    assert Activations.load(tmp_path / "b").meta == {"new": 1}
    # another precision, or another array in the field: written, not linked
    back.save(tmp_path / "c", float16=False)
    assert not (tmp_path / "a" / "vectors.npy").samefile(tmp_path / "c" / "vectors.npy")
    assert Activations.load(tmp_path / "c").vectors.dtype == np.float32
    flipped = dataclasses.replace(back, vectors=np.ascontiguousarray(back.vectors[::-1]))
    flipped.save(tmp_path / "d", float16=True)
    assert not (tmp_path / "a" / "vectors.npy").samefile(tmp_path / "d" / "vectors.npy")
    np.testing.assert_array_equal(Activations.load(tmp_path / "d").vectors, back.vectors[::-1])


def test_activations_cached_as_one_npz_are_still_read(tmp_path: Path) -> None:
    # the format before .npy files: one activations.npz (float16 here) and activations.json
    acts = activations()
    arrays = {
        "vectors": acts.vectors.astype(np.float16),
        "image_index": acts.image_index,
        "positions": acts.positions,
        "labels": acts.labels,
        "attributions": acts.attributions.astype(np.float16),  # type: ignore[union-attr]
    }
    with open(tmp_path / "activations.npz", "wb") as f:
        np.savez(f, **arrays)
    facts = {"format": 1, "layer": "mixed4c", "layer_hw": [14, 14], "meta": acts.meta}
    (tmp_path / "activations.json").write_text(json.dumps(facts))
    back = Activations.load(tmp_path)
    assert back.vectors.dtype == np.float32 and back.layer_hw == (14, 14)
    np.testing.assert_array_equal(back.vectors, arrays["vectors"].astype(np.float32))
    np.testing.assert_array_equal(back.attributions, arrays["attributions"].astype(np.float32))  # type: ignore[arg-type]


def test_layout_grid_and_whitening_round_trip(tmp_path: Path) -> None:
    acts = activations()
    layout = Layout(
        xy=np.random.default_rng(1).random((30, 2)).astype(np.float32),
        method="umap",
        params={"n_neighbors": 29},
    )
    layout.save(tmp_path)
    back = Layout.load(tmp_path)
    np.testing.assert_array_equal(back.xy, layout.xy)
    assert back.method == "umap" and back.params == {"n_neighbors": 29}

    grid = make_grid(acts, layout, 3, min_count=1, top_k=2)
    grid.save(tmp_path)
    loaded = Grid.load(tmp_path, 3)
    for name in ("cells", "counts", "directions", "attributions", "top_classes", "top_values"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(grid, name))
    np.testing.assert_array_equal(loaded.sample_cell, grid.sample_cell)
    assert (loaded.size, loaded.min_count, loaded.n_samples) == (3, 1, 30)

    white = whitening(acts)
    white.save(tmp_path)
    again = Whitening.load(tmp_path)
    np.testing.assert_array_equal(again.matrix, white.matrix)
    assert again.ridge == white.ridge and again.layer == "mixed4c"


def test_inconsistent_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="image_index"):
        Activations(
            layer="x",
            vectors=np.zeros((3, 2), np.float32),
            image_index=np.zeros(4, np.int64),
            positions=np.zeros((3, 2), np.int64),
            labels=np.zeros(3, np.int64),
            layer_hw=(1, 1),
        )
    with pytest.raises(ValueError, match="xy"):
        Layout(xy=np.zeros((3, 3), np.float32), method="umap")


def test_missing_or_foreign_files_raise_atlas_errors(tmp_path: Path) -> None:
    with pytest.raises(AtlasError, match="cannot read"):
        Layout.load(tmp_path)
    Layout(xy=np.zeros((2, 2), np.float32), method="umap").save(tmp_path)
    doc = json.loads((tmp_path / "layout.json").read_text())
    (tmp_path / "layout.json").write_text(json.dumps({**doc, "format": 999}))
    with pytest.raises(AtlasError, match="another version"):
        Layout.load(tmp_path)
