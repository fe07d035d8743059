"""End to end: a class atlas and a two-class comparison from the synthetic world and the demo
model (random weights), through compute_bundle to a published atlas; they reuse the layer's
cached activations and whiten with the matrix of all its samples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from generator.atlas.bundle_stage import compute_bundle
from generator.atlas.classes import select_samples, valid_classes
from generator.atlas.environment import ComputeEnvironment, resolve_device
from generator.atlas.pipeline import compute_grids
from generator.atlas.progress import Progress
from generator.atlas.spec import parse_computed_atlas
from generator.bundle import AtlasBundle
from generator.config import ComputeConfig
from generator.tiles import TileSettings, publish_atlas

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread

BASE: dict[str, Any] = {
    "model": "demo",
    "layer": "mixed4c",
    "dataset": "shapes",
    "samples": 40,
    "positions": 2,
    "seed": 3,
    "render": {"preset": "tiny", "steps": 3, "examples": 1, "example_px": 16},
}
CLASS: dict[str, Any] = {
    **BASE,
    "kind": "class",
    "class": "ring",
    "filter": {"top": 20},
    "grids": [2, 4],
    "min_count": 1,
    "layout": {"method": "tsne", "perplexity": 5},
}
COMPARISON: dict[str, Any] = {
    **BASE,
    "kind": "comparison",
    "classes": ["ring", "target"],
    "filter": {"top": 15},
    "grids": [3],
    "min_count": 0,
    "layout": {"perplexity": 5},
}


def config_for(cache: Path) -> SimpleNamespace:
    return SimpleNamespace(
        compute=ComputeConfig(device="cpu", threads=1),
        models={"demo": {"weights": "random"}},
        datasets={"shapes": {"kind": "synthetic", "count": 80, "size": 64}},
        paths=SimpleNamespace(cache=cache),
        root=cache.parent,
    )


def bundle(cache: Path, atlas_id: str, table: dict[str, Any]) -> AtlasBundle:
    spec = parse_computed_atlas(atlas_id, table, "content/demo/atlases.toml:1")
    return compute_bundle(spec, config=config_for(cache), progress=Progress(enabled=False))


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[str, AtlasBundle]]]:
    cache = tmp_path_factory.mktemp("project") / ".atlas-cache"
    with threadpool_limits(1):  # t-SNE's OpenMP threads crawl on a busy 2-core machine
        yield (
            cache,
            {
                "class": bundle(cache, "ring", CLASS),
                "comparison": bundle(cache, "ring-vs-star", COMPARISON),
            },
        )


def test_a_class_atlas_shows_the_selected_samples(
    built: tuple[Path, dict[str, AtlasBundle]],
) -> None:
    cache, bundles = built
    atlas = bundles["class"]
    assert atlas.kind == "class" and atlas.grids == (2, 4)
    info = atlas.info
    assert info["class"] == "ring" and info["selection"]["classes"] == ["ring"]
    # the selection is exactly the filter applied to the layer's cached attributions
    (acts_dir,) = [p for p in (cache / "activations").iterdir() if p.is_dir()]
    attributions = np.load(acts_dir / "attributions.npy").astype(np.float32)
    rows, won, taken = select_samples(
        attributions, [1], winners=True, top=20, valid=valid_classes(atlas.labels)
    )
    assert info["selection"]["selected"] == len(rows) == info["samples"]
    assert info["selection"]["of"] == 80 and info["selection"]["winners"] == list(won)
    assert info["selection"]["top"] == list(taken) == [20]
    for level in atlas.levels:
        doc = json.loads((atlas.root / level.cells).read_text())
        assert doc["samples"] == len(rows) and all(row[2] > 1 for row in doc["cells"])


def test_class_atlases_whiten_over_all_samples_and_share_the_activations(
    built: tuple[Path, dict[str, AtlasBundle]],
) -> None:
    cache, bundles = built
    config = config_for(cache)
    env = ComputeEnvironment.from_config(config)
    assert env.cache == cache and env.device == resolve_device("cpu")
    quiet = Progress(enabled=False)
    with threadpool_limits(1):
        layer_table = {**BASE, "grids": [2], "layout": {"method": "tsne", "perplexity": 5}}
        layer = compute_grids(parse_computed_atlas("l", layer_table, "x:1"), env, progress=quiet)
        again = compute_grids(parse_computed_atlas("ring", CLASS, "x:1"), env, progress=quiet)
    assert "activations" not in layer.ran and again.ran == ()  # one collection for all three
    assert layer.whitening is not None and again.whitening is not None
    assert again.whitening.n_samples == 80 == layer.activations.count
    np.testing.assert_array_equal(again.whitening.matrix, layer.whitening.matrix)
    assert again.activations.count == bundles["class"].info["samples"] < 80
    assert len(np.unique(again.layout.xy, axis=0)) > 1


def test_a_comparison_publishes_its_axes(
    built: tuple[Path, dict[str, AtlasBundle]], tmp_path: Path
) -> None:
    cache, bundles = built
    atlas = bundles["comparison"]
    assert atlas.kind == "comparison" and atlas.grids == (3,)
    info = atlas.info
    assert info["axes"] == {
        "x": ["ring", "target"],
        "y": "similar activations close together (1-D t-SNE)",
    }
    assert info["classes"] == ["ring", "target"]
    assert info["layout"]["method"] == "comparison" and info["layout"]["y"]["method"] == "tsne"
    assert info["selection"]["top"] == [15, 15]
    published = publish_atlas(atlas, tmp_path / "cmp", TileSettings(tile_size=64), cache)
    manifest = json.loads((published.folder / "viewer.json").read_text())
    assert manifest["kind"] == "comparison"
    assert manifest["info"]["axes"] == info["axes"]
