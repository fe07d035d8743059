"""Patch experiments declared in atlases.toml are computed when the site builds and rendered by
the ```patch-results``` block (format: generator/site/blocks/patch_results_block.py); icons come from image
files, atlas cells or tour queries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sitekit import CONFIG, PUB_INDEX, draw_grid, write
from tourkit import full_grid, make_bundle

from generator.config import load_config
from generator.errors import ConfigError
from generator.experiments.spec import IconSpec
from generator.site.blocks.tourquery import TourQueries
from generator.site.build import build
from generator.site.build_experiments import icon_pixels

PROJECT = (
    CONFIG
    + """
[compute]
device = "cpu"
threads = 1

[datasets.shapes]
kind = "synthetic"
count = 240
size = 64
"""
)

ATLASES = """\
[atlas.grid]
image = "images/grid.png"
grid = 10
icon_size = 32

[experiment.shapes]
model = "demo"
dataset = "shapes"
seed = 2
images_per_class = 8
sizes = [0.5]
positions = [[0, 0], [1, 1]]
noise_patches = 1
examples = 2
source = "circle"
target = "star"
icon = { atlas = "grid", cell = [1, 2], grid = 10 }
"""

ARTICLE = """\
---
title: Patches
---

```patch-results
experiment: shapes
examples: 2
caption: "A cell of the grid pasted on circles."
```
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread


def project(root: Path) -> Path:
    write(root / "atlas.toml", PROJECT)
    write(root / "content/study/index.md", PUB_INDEX)
    write(root / "content/study/patches.md", ARTICLE)
    write(root / "content/study/atlases.toml", ATLASES)
    draw_grid(root / "content/study/images/grid.png")
    return root


def test_a_declared_experiment_is_computed_published_and_rendered(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    report = build(load_config(root / "atlas.toml"), strict=True, log=None)
    folder = root / "site/study/experiments/shapes"
    results = json.loads((folder / "results.json").read_text())
    (pair,) = results["pairs"]
    assert (pair["source"], pair["target"], pair["n_patches"]) == ("circle", "star", 2)
    assert pair["icon_source"] == "atlas grid cell [1, 2] of grid 10"
    with (
        Image.open(folder / pair["icon"]) as icon,
        Image.open(root / "content/study/images/grid.png") as grid,
    ):
        np.testing.assert_array_equal(
            np.asarray(icon.convert("RGB")), np.asarray(grid.convert("RGB"))[64:96, 32:64]
        )
    assert all((folder / e["image"]).is_file() for e in pair["examples"])
    html = (root / "site/study/patches.html").read_text()
    assert "circle → star" in html and "experiments/shapes/icons/0.png" in html
    assert f"{100 * pair['best_per_image_rate']:.1f}%" in html
    assert not (root / "content/study/experiments").exists()  # computed into the cache only
    again = build(load_config(root / "atlas.toml"), strict=True, log=None)
    assert again.rendered == 0 and report.rendered > 0
    experiments = [p for p in (root / ".atlas-cache/experiment").iterdir() if p.is_dir()]
    assert len(experiments) == 1


def test_declaring_a_committed_experiment_is_an_error(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    write(root / "content/study/experiments/shapes/results.json", "{}")
    with pytest.raises(ConfigError, match="declared and also committed") as info:
        build(load_config(root / "atlas.toml"), strict=True, log=None)
    assert "atlases.toml:6" in str(info.value.where)


def test_icons_from_queries_cells_and_files(tmp_path: Path) -> None:
    labels = ("a", "b")
    attributions = np.zeros((16, 2), dtype=np.float32)
    attributions[9, 1] = 2.0  # cell (1, 2) in row-major order of a full 4x4 grid
    attributions[3, 1] = 1.0
    bundle = make_bundle(
        tmp_path / "b",
        "toy",
        {4: full_grid(4, lambda c, r: 0 if c < 2 else 1)},
        labels,
        attributions={4: attributions},
    )
    bundles = {"toy": bundle}
    queries = TourQueries(bundles)
    best = icon_pixels(IconSpec(atlas="toy", query={"attributed_to": "b"}), bundles, queries, "x")
    cell = icon_pixels(IconSpec(atlas="toy", cell=(1, 2), grid=4), bundles, queries, "x")
    with Image.open(bundle.root / "level-4.png") as level:
        expected = np.asarray(level.convert("RGB"))[32:48, 16:32]
    np.testing.assert_array_equal(best, expected)
    np.testing.assert_array_equal(cell, expected)
    Image.fromarray(expected).save(tmp_path / "icon.png")
    from_file = icon_pixels(IconSpec(path=tmp_path / "icon.png"), bundles, queries, "x")
    np.testing.assert_array_equal(from_file, expected)
    with pytest.raises(ConfigError, match="unknown atlas 'tyo' \\(did you mean 'toy'"):
        icon_pixels(IconSpec(atlas="tyo", cell=(0, 0)), bundles, queries, "x")
    with pytest.raises(ConfigError, match="has no 8x8 grid"):
        icon_pixels(IconSpec(atlas="toy", cell=(0, 0), grid=8), bundles, queries, "x")
