"""End to end: synthetic images and the demo model (random weights) -> a published atlas.

``compute_bundle`` runs every stage (collect, attribute, whiten, lay out, bin, render, crop
examples, compose) on 30 images of the synthetic world, then the tiler publishes the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import generator.optvis.render as optvis
from generator.atlas.bundle_stage import compute_bundle
from generator.atlas.progress import Progress
from generator.atlas.spec import parse_computed_atlas
from generator.bundle import AtlasBundle, load_cell_array
from generator.config import ComputeConfig
from generator.data.world import CLASS_NAMES
from generator.models.registry import load_model
from generator.tiles import TileSettings, publish_atlas

from ._project_kit import DEMO_ATLAS, write_project

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread

TABLE = DEMO_ATLAS


def config_for(cache: Path) -> SimpleNamespace:
    return SimpleNamespace(
        compute=ComputeConfig(device="cpu", threads=1),
        models={"demo": {"weights": "random"}},
        datasets={"shapes": {"kind": "synthetic", "count": 60, "size": 64}},
        paths=SimpleNamespace(cache=cache),
        root=cache.parent,
    )


def build(cache: Path, **render: Any) -> AtlasBundle:
    table = {**TABLE, "render": {**TABLE["render"], **render}}
    spec = parse_computed_atlas("demo-4c", table, "content/demo/atlases.toml:1")
    return compute_bundle(spec, config=config_for(cache), progress=Progress(enabled=False))


def no_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an icon was rendered although every icon is cached")

    monkeypatch.setattr(optvis, "render", refuse)


def measured_fidelity(bundle: AtlasBundle) -> dict[int, np.ndarray]:
    """Each level's icon fidelity measured here from what the bundle holds: every icon cut out
    of the level image at its cell, the model's mixed4c vector at the icon's centre, its cosine
    with the cell's direction (``directions-<G>.npy``, rows in the cells document's order)."""
    model = load_model("demo", device=torch.device("cpu"), weights="random")
    measured = {}
    for level in bundle.levels:
        doc = json.loads((bundle.root / level.cells).read_text())
        with Image.open(bundle.root / level.image) as image:
            pixels = np.asarray(image.convert("RGB"))
        s = level.cell_px
        icons = np.stack(
            [pixels[r * s : (r + 1) * s, c * s : (c + 1) * s] for c, r, *_ in doc["cells"]]
        )
        directions = load_cell_array(bundle.root, "directions", level.grid, rows=len(icons))
        assert directions is not None
        with torch.no_grad():
            act = model.forward_to(torch.from_numpy(icons).permute(0, 3, 1, 2) / 255.0, ["mixed4c"])
        h, w = act["mixed4c"].shape[-2:]
        centre = act["mixed4c"][:, :, h // 2, w // 2].double().numpy()
        direction = directions.astype(np.float64)
        dot = (centre * direction).sum(axis=1)
        measured[level.grid] = dot / (
            np.linalg.norm(centre, axis=1) * np.linalg.norm(direction, axis=1)
        )
    return measured


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AtlasBundle]:
    cache = tmp_path_factory.mktemp("project") / ".atlas-cache"
    return cache, build(cache)


def test_the_bundle_has_levels_images_and_metadata(built: tuple[Path, AtlasBundle]) -> None:
    _, bundle = built
    assert bundle.id == "demo-4c" and bundle.kind == "layer" and bundle.title == "Demo mixed4c"
    assert bundle.grids == (2, 4) and [lv.cell_px for lv in bundle.levels] == [32, 32]
    assert bundle.labels == CLASS_NAMES  # one logit per class of the world
    info = bundle.info
    assert info["layer"] == "mixed4c" and info["samples"] == 60 and info["whitened"] is True
    assert info["render"]["steps"] == 4 and info["render"]["preset"] == "tiny"
    assert info["layout"]["method"] == "tsne"
    kept = sum(info["grids"][str(g)]["kept"] for g in (2, 4))
    fidelity = info["fidelity"]
    assert fidelity["all"]["n"] == kept
    measured = measured_fidelity(bundle)
    every = np.concatenate(list(measured.values()))
    assert fidelity["all"]["mean"] == pytest.approx(every.mean(), abs=2e-4)
    for grid, values in measured.items():
        recorded = fidelity["levels"][str(grid)]
        assert recorded["n"] == len(values)
        quartiles = np.quantile(values, [0.25, 0.5, 0.75])
        assert [recorded[q] for q in ("q25", "median", "q75")] == pytest.approx(quartiles, abs=2e-4)
    assert info["receptive_field"]["layer_size"] == [4, 4]
    assert 1 <= info["receptive_field"]["effective"] <= info["receptive_field"]["support"]
    for level in bundle.levels:
        doc = json.loads((bundle.root / level.cells).read_text())
        assert doc["grid"] == level.grid and doc["samples"] == 60
        assert sum(row[2] for row in doc["cells"]) <= 60
        assert all(len(row[3]) == 5 and len(row[4]) == 5 for row in doc["cells"])
        with Image.open(bundle.root / level.image) as image:
            pixels = np.asarray(image.convert("RGB"))
        assert pixels.shape == (level.side_px, level.side_px, 3)
        occupied = {(row[0], row[1]) for row in doc["cells"]}
        s = level.cell_px
        for col in range(level.grid):
            for row in range(level.grid):
                block = pixels[row * s : (row + 1) * s, col * s : (col + 1) * s]
                white = bool((block == 255).all())
                assert white != ((col, row) in occupied), (level.grid, col, row)


def test_the_bundle_publishes_with_semantic_zoom_and_viewer_data(
    built: tuple[Path, AtlasBundle], tmp_path: Path
) -> None:
    cache, bundle = built
    published = publish_atlas(bundle, tmp_path / "demo-4c", TileSettings(tile_size=64), cache)
    levels = published.manifest["levels"]
    assert [(lv["grid"], lv["scale"]) for lv in levels] == [(2, 2), (4, 1)]
    assert published.manifest["width"] == 128
    assert levels[1]["examples"]["thumb"] == 16 and levels[1]["examples"]["per_cell"] == 2
    assert levels[0]["heatmap"]["classes"] == len(CLASS_NAMES)
    assert (published.folder / "examples-4" / "index.json").is_file()
    assert published.manifest["info"]["fidelity"]["all"]["n"] > 0


def test_a_second_build_renders_nothing(
    built: tuple[Path, AtlasBundle], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, bundle = built
    no_rendering(monkeypatch)
    again = build(cache)
    assert again.root == bundle.root
    assert (again.root / "inputs.json").is_file()
    assert not (cache / "render-runs").exists() or not any((cache / "render-runs").iterdir())


def test_a_new_composition_reuses_the_cached_icons(
    built: tuple[Path, AtlasBundle], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, bundle = built
    no_rendering(monkeypatch)
    dense = build(cache, density=0.5, background="#000000")
    assert dense.root != bundle.root and dense.background == "#000000"
    with Image.open(dense.root / "level-4.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels == 0).all(axis=2).mean() > 0.5  # empty cells and margins around icons


PROJECT_ATLASES = """
[atlas.three-b]
model = "demo"
layer = "mixed3b"
dataset = "shapes"
samples = 20
grids = [2]
min_count = 0
layout = { method = "tsne", perplexity = 5 }
attribution = { enabled = false }
render = { preset = "tiny", steps = 2, examples = 0 }
"""


def test_atlas_compute_bundle_renders_and_reports_fidelity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.cli import main

    write_project(tmp_path, PROJECT_ATLASES, publication="demo")
    assert main(["--config", str(tmp_path / "atlas.toml"), "compute", "--bundle", "three-b"]) == 0
    out = capsys.readouterr().out
    assert "bundle: " in out and "levels [2]" in out and "icon fidelity mean" in out
    (bundle_json,) = (tmp_path / "cache" / "bundle").glob("*/bundle.json")
    info = json.loads(bundle_json.read_text())["info"]
    assert info["whitened"] is False  # mixed3b: no whitening by default (METHOD.md 5)
    assert "viewer" not in info  # no examples asked for, no attributions to map
