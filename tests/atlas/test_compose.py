"""Composing atlas images, cell metadata and viewer data into a bundle that publishes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from generator.atlas.artifacts import Grid
from generator.atlas.compose import (
    ComposeSettings,
    canvas_cells,
    compose_level,
    icon_edges,
    level_cells_document,
    semantic_zoom_problem,
    write_bundle,
)
from generator.atlas.examples import LevelExamples, example_thumbnails
from generator.atlas.progress import Progress
from generator.atlas.receptive import EFFECTIVE_MASS, centred_side, receptive_field
from generator.bundle import AtlasBundle, load_cell_array
from generator.bundle.viewerdata import crop_receptive_field, read_examples, read_heatmap
from generator.data.loader import fit_image
from generator.icons.lean import render_copy
from generator.icons.store import Icons
from generator.models.base import LayerInfo, StagedModel
from generator.models.demo import build_demo_model
from generator.tiles import TileSettings, publish_atlas

from ._render_kit import ConvNet, sample_grids
from .conftest import TinySource

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread

S = 4  # icon px in the placement tests


def solid_icons(grid: int, cells: list[tuple[int, int]], size: int = S) -> Icons:
    """Icons of one flat colour each: cell m is (10 * (m + 1), 0, 255 - m)."""
    m = len(cells)
    images = np.zeros((m, size, size, 3), np.uint8)
    for i in range(m):
        images[i] = (10 * (i + 1), 0, 255 - i)
    return Icons(
        grid=grid,
        cells=np.array(cells, dtype=np.int64).reshape(m, 2),
        images=images,
        values=np.ones(m, np.float32),
        fidelity=np.full(m, 0.9, np.float32),
        best_try=np.zeros(m, np.int64),
    )


def test_icons_sit_at_column_xbin_and_row_g_minus_1_minus_ybin() -> None:
    cells = [(0, 0), (2, 0), (1, 2)]  # (xbin, ybin); y counts upwards
    canvas = compose_level(solid_icons(3, cells), background=(1, 2, 3))
    assert canvas.shape == (3 * S, 3 * S, 3) and canvas.dtype == np.uint8
    expected = np.empty_like(canvas)
    expected[:] = (1, 2, 3)
    for m, (xbin, ybin) in enumerate(cells):
        row = 3 - 1 - ybin
        expected[row * S : (row + 1) * S, xbin * S : (xbin + 1) * S] = (10 * (m + 1), 0, 255 - m)
    assert np.array_equal(canvas, expected)
    # bottom-left cell (0, 0) is the last row of the image
    assert tuple(canvas[-1, 0]) == (10, 0, 255) and tuple(canvas[0, 0]) == (1, 2, 3)


def test_density_scaled_icons_are_centred_and_sized_by_count() -> None:
    counts = np.array([1, 4, 16, 100])
    # N = 64 samples on a 4 x 4 grid: 4 per cell on average; density 1
    edges = icon_edges(counts, n_samples=64, grid=4, cell_px=8, density=1.0)
    assert edges.tolist() == [4, 8, 8, 8]  # 8 * sqrt(1/4) = 4; capped at the cell
    assert icon_edges(counts, 64, 4, 8, density=0.25).tolist() == [2, 4, 8, 8]
    icons = solid_icons(2, [(0, 0), (1, 1)], size=8)
    canvas = compose_level(icons, background=(0, 0, 0), edges=np.array([4, 8]))
    # cell (0, 0) -> rows 8..16, cols 0..8; a 4 px icon at offset 2
    block = canvas[8:16, 0:8]
    assert (block[2:6, 2:6] == (10, 0, 255)).all()
    inner = np.zeros((8, 8), bool)
    inner[2:6, 2:6] = True
    assert (block[~inner] == 0).all()
    assert (canvas[0:8, 8:16] == (20, 0, 254)).all()  # full size


def make_grid(size: int, cells: list[tuple[int, int]], classes: int = 3) -> Grid:
    m = len(cells)
    rng = np.random.default_rng(size)
    attributions = rng.normal(size=(m, classes)).astype(np.float32)
    order = np.argsort(-attributions, axis=1)[:, :2]
    return Grid(
        size=size,
        min_count=0,
        cells=np.array(cells, dtype=np.int64).reshape(m, 2),
        counts=np.arange(1, m + 1, dtype=np.int64),
        directions=rng.random((m, 5)).astype(np.float32),
        attributions=attributions,
        top_classes=order.astype(np.int64),
        top_values=np.take_along_axis(attributions, order, 1),
        sample_cell=np.repeat(np.arange(m), np.arange(1, m + 1)),
        n_samples=m * (m + 1) // 2,
    )


def test_cells_document_lists_count_top_classes_and_position() -> None:
    grid = make_grid(4, [(0, 0), (3, 1)])
    doc = level_cells_document(grid, 80)
    assert doc["grid"] == 4 and doc["cell_px"] == 80 and doc["samples"] == 3
    assert doc["columns"] == ["col", "row", "count", "top", "values"]
    (c0, r0, n0, top0, val0), (c1, r1, n1, _, _) = doc["cells"]
    assert (c0, r0, n0) == (0, 3, 1) and (c1, r1, n1) == (3, 2, 2)
    assert top0 == grid.top_classes[0].tolist()
    assert val0 == pytest.approx(grid.top_values[0].tolist(), rel=1e-3)
    assert canvas_cells(grid).tolist() == [[0, 3], [3, 2]]


def test_semantic_zoom_needs_halving_sides() -> None:
    assert semantic_zoom_problem([20, 40, 80, 160]) is None
    assert semantic_zoom_problem([2, 8]) is None
    assert "[30]" in str(semantic_zoom_problem([30, 40, 80]))


def test_a_written_bundle_publishes_with_viewer_data(tmp_path: Path) -> None:
    grids = {2: make_grid(2, [(0, 0), (1, 1)]), 4: make_grid(4, [(0, 0), (1, 2), (3, 3)])}
    icons = {size: solid_icons(size, grid.cells.tolist(), size=16) for size, grid in grids.items()}
    thumbs = {
        size: LevelExamples(
            thumbs=np.full((grid.kept, 2, 8, 8, 3), 90 + size, np.uint8),
            counts=np.array([2] + [1] * (grid.kept - 1)),
            samples=np.zeros((grid.kept, 2), np.int64),
        )
        for size, grid in grids.items()
    }
    root = tmp_path / "bundle"
    root.mkdir()
    bundle = write_bundle(
        root,
        atlas_id="toy",
        title="Toy atlas",
        grids=grids,
        icons=icons,
        labels=["a", "b", "c"],
        info={"layer": "mixed4a"},
        settings=ComposeSettings(background="#102030"),
        examples=thumbs,
        progress=Progress(enabled=False),
    )
    loaded = AtlasBundle.load(root)
    assert loaded.grids == (2, 4) and [lv.side_px for lv in loaded.levels] == [32, 64]
    assert loaded.info["layer"] == "mixed4a" and loaded.background == "#102030"
    with Image.open(root / "level-4.png") as image:
        pixels = np.asarray(image)
    assert tuple(pixels[0, 0]) == (0x10, 0x20, 0x30)  # empty cell (0, 0) of the canvas
    assert tuple(pixels[-1, 0]) == (10, 0, 255)  # cell (xbin 0, ybin 0): bottom left
    cells = json.loads((root / "cells-4.json").read_text())
    assert [row[:3] for row in cells["cells"]] == [[0, 3, 1], [1, 1, 2], [3, 0, 3]]
    assert read_examples(root / "examples-4", 0, 3).shape == (2, 8, 8, 3)
    assert read_examples(root / "examples-4", 1, 1).shape == (1, 8, 8, 3)
    directions = load_cell_array(root, "directions", 4, rows=3, columns=5)
    assert directions is not None and np.allclose(directions, grids[4].directions)
    attributions = load_cell_array(root, "attributions", 2, rows=2, columns=3)
    assert attributions is not None and np.allclose(attributions, grids[2].attributions)
    heat = read_heatmap(root / "heatmap-4", 1)
    assert heat[3, 0] == pytest.approx(grids[4].attributions[0, 1], abs=0.02)
    assert np.isnan(heat[0, 0])

    published = publish_atlas(
        bundle, tmp_path / "site" / "toy", TileSettings(tile_size=16), tmp_path / "cache"
    )
    manifest = published.manifest
    assert [level["grid"] for level in manifest["levels"]] == [2, 4]
    assert [level["scale"] for level in manifest["levels"]] == [2, 1]
    assert manifest["levels"][1]["examples"]["per_cell"] == 2
    assert manifest["levels"][0]["heatmap"]["classes"] == 3
    assert (published.folder / "examples-2" / "index.json").is_file()


def test_levels_must_share_the_icon_size(tmp_path: Path) -> None:
    grids = {1: make_grid(1, [(0, 0)]), 2: make_grid(2, [(0, 0)])}
    icons = {1: solid_icons(1, [(0, 0)], size=8), 2: solid_icons(2, [(0, 0)], size=4)}
    with pytest.raises(ValueError, match="same icon size"):
        write_bundle(
            tmp_path,
            atlas_id="x",
            title="x",
            grids=grids,
            icons=icons,
            labels=["a", "b", "c"],
            info={},
            settings=ComposeSettings(),
            progress=Progress(enabled=False),
        )


# -- receptive fields and dataset examples ----------------------------------------------------


class TwoConvs(StagedModel):
    """Two 3x3 convolutions (stride 1) then a 2x2/2 pool: theoretical field 5 px, then 6."""

    def __init__(self) -> None:
        super().__init__()
        self.name, self.input_size, self.labels = "two", 16, ("a",)
        generator = torch.Generator().manual_seed(0)
        self.stages = nn.ModuleDict(
            {
                "conv2d0": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
                "mixed3a": nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()),
                "mixed4a": nn.MaxPool2d(2),
                "logits": nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 1)),
            }
        )
        with torch.no_grad():
            for p in list(self.stages.parameters())[:4]:
                p.copy_(torch.rand(p.shape, generator=generator) + 0.1)  # all positive
        self.layer_infos = (LayerInfo("mixed3a", 4, 16), LayerInfo("mixed4a", 4, 8))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return images


def test_receptive_field_is_measured_from_the_network() -> None:
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    field = receptive_field(TwoConvs(), "mixed3a", images)
    assert (field.support, field.stride, field.layer_size) == (5, 1.0, (16, 16))
    # Two 3x3 convolutions spread the centre's gradient about as 1, 2, 3, 2, 1 per axis (exactly
    # so for equal weights): the centred 3x3 holds (7/9)^2 = 60% of it, 4x4 (8/9)^2 = 79%, so
    # 90% (the default mass) needs the whole 5x5 and half needs the 3x3.
    assert field.effective == 5 and field.mass == EFFECTIVE_MASS == 0.9
    assert receptive_field(TwoConvs(), "mixed3a", images, mass=0.5).effective == 3
    pooled = receptive_field(TwoConvs(), "mixed4a", images)
    assert pooled.support == 6 and pooled.stride == 2.0
    # deeper layers of the demo model see more
    demo = build_demo_model([f"c{i}" for i in range(4)])
    images64 = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    shallow = receptive_field(demo, "mixed3a", images64)
    deep = receptive_field(demo, "mixed4c", images64)
    assert shallow.effective < deep.effective <= deep.support


def test_centred_side_holds_the_asked_share() -> None:
    weights = np.zeros((10, 10))
    weights[4:6, 4:6] = 1.0  # 4 px of mass around the centre (5, 5)
    weights[9, 9] = 0.1
    assert centred_side(weights, (5.0, 5.0), 0.9) == 2
    assert centred_side(weights, (5.0, 5.0), 1.0, nonzero=True) == 10


def test_examples_are_receptive_field_crops_of_the_fitted_images(tmp_path: Path) -> None:
    model = ConvNet()
    acts, _, grids = sample_grids(model, "mixed4a", [2], images=12)
    # sample i comes from image 3 * (i // 3) at positions spread over the 8 x 8 map
    rng = np.random.default_rng(5)
    acts = type(acts)(
        layer=acts.layer,
        vectors=acts.vectors,
        image_index=(np.arange(12) // 3 * 3).astype(np.int64),
        positions=rng.integers(0, 8, (12, 2)),
        labels=acts.labels,
        layer_hw=(8, 8),
    )
    source = TinySource(n=20, bad=(6,))  # image 6 became unreadable since collection
    levels = example_thumbnails(
        source,
        acts,
        grids,
        input_size=32,
        resize="stretch",
        window=12,
        per_cell=2,
        thumb=8,
        seed=0,
        scratch=tmp_path,
        progress=Progress(enabled=False),
    )
    level = levels[2]
    grid = grids[2]
    for m in range(grid.kept):
        for e in range(level.counts[m]):
            sample = int(level.samples[m, e])
            assert grid.sample_cell[sample] == m
            image = fit_image(source.read(int(acts.image_index[sample])), 32, "stretch")
            expected = crop_receptive_field(image, tuple(acts.positions[sample]), (8, 8), 12, 8)
            assert np.array_equal(level.thumbs[m, e], expected)
        lost = level.samples[m] >= 0
        assert level.counts[m] == lost.sum()
        assert not np.isin(acts.image_index[level.samples[m, lost]], [6]).any()


def test_folding_batch_norm_keeps_the_function() -> None:
    model = build_demo_model([f"c{i}" for i in range(4)]).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
    lean, folded = render_copy(model)
    assert folded > 50 and not any(isinstance(m, nn.BatchNorm2d) for m in lean.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # caller's untouched
    images = torch.rand(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        ours = lean.forward_to(images, ["mixed4c", "logits"])
        theirs = model.forward_to(images, ["mixed4c", "logits"])
    for name in ours:
        scale = theirs[name].abs().max()
        assert float((ours[name] - theirs[name]).abs().max() / scale) < 1e-5, name
