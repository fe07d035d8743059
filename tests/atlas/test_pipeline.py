"""The whole compute pipeline on the real registries: demo model (random weights), synthetic
images; every stage cached under a key of what produced it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from generator.atlas.environment import ComputeEnvironment
from generator.atlas.pipeline import ComputedGrids, compute_grids, describe
from generator.atlas.progress import Progress
from generator.atlas.spec import parse_computed_atlas
from generator.cache import digest
from generator.data.world import CLASS_NAMES
from generator.errors import AtlasError, UnknownNameError

MODELS = {"demo": {"weights": "random"}}
DATASETS = {"shapes": {"kind": "synthetic", "count": 80, "size": 64}}
TABLE: dict[str, Any] = {
    "model": "demo",
    "layer": "mixed4c",
    "dataset": "shapes",
    "samples": 40,
    "positions": 2,
    "seed": 1,
    "grids": [2, 4],
    "min_count": 1,
    "layout": {"n_neighbors": 10},
}


def run(cache: Path, **changes: Any) -> ComputedGrids:
    spec = parse_computed_atlas("demo-4c", {**TABLE, **changes}, "test/atlases.toml:1")
    env = ComputeEnvironment(
        cache, torch.device("cpu"), models=MODELS, datasets=DATASETS, batch_size=8
    )
    return compute_grids(spec, env, progress=Progress(enabled=False))


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ComputedGrids]:
    cache = tmp_path_factory.mktemp("cache")
    return cache, run(cache)


def test_grids_activations_and_layout(computed: tuple[Path, ComputedGrids]) -> None:
    _, result = computed
    acts = result.activations
    assert acts.layer == "mixed4c" and acts.vectors.shape == (80, 128)
    assert acts.attributions is not None and acts.attributions.shape == (80, len(CLASS_NAMES))
    assert len(np.unique(acts.image_index)) == 40 and acts.layer_hw == (4, 4)
    assert result.layout.xy.shape == (80, 2)
    assert sorted(result) == [2, 4]
    for size, grid in result.items():
        assert grid.size == size and grid.n_samples == 80
        assert grid.counts.sum() + grid.dropped_samples == 80
        assert grid.directions.shape[1] == 128 and grid.top_classes.shape[1] == 5
        assert (grid.top_classes < len(CLASS_NAMES)).all()
    assert result.whitening is not None and result.whitening.matrix.shape == (128, 128)
    assert result.labels == CLASS_NAMES
    assert result.ran == ("activations", "whitening", "layout", "grid-2", "grid-4")
    assert "80 samples from 40 images" in describe(result)


def test_artifacts_are_cached_by_key_with_their_inputs(
    computed: tuple[Path, ComputedGrids],
) -> None:
    cache, result = computed
    for stage, key in result.cache_keys.items():
        folder = cache / stage.split("-")[0] / key
        assert folder.is_dir(), stage
        inputs = json.loads((folder / "inputs.json").read_text())
        assert digest(inputs) == key, stage  # the parts the key digests, all of them
    act_inputs = json.loads(
        (cache / "activations" / result.cache_keys["activations"] / "inputs.json").read_text()
    )
    assert act_inputs["model"] == "demo:random-init-seed0" and act_inputs["layer"] == "mixed4c"
    assert not any((cache / "chunks").iterdir())  # finished collections leave no chunks


def test_a_second_run_computes_nothing_and_loads_the_same(
    computed: tuple[Path, ComputedGrids],
) -> None:
    cache, first = computed
    again = run(cache)
    assert again.ran == ()
    np.testing.assert_array_equal(again.activations.vectors, first.activations.vectors)
    np.testing.assert_array_equal(again.layout.xy, first.layout.xy)
    for size in first:
        np.testing.assert_array_equal(again[size].directions, first[size].directions)


def test_changing_a_grid_option_recomputes_only_the_grids(
    computed: tuple[Path, ComputedGrids],
) -> None:
    cache, first = computed
    changed = run(cache, min_count=3, grids=[2, 4, 8])
    assert changed.ran == ("grid-2", "grid-4", "grid-8")
    assert changed.cache_keys["layout"] == first.cache_keys["layout"]
    assert changed.cache_keys["grid-2"] != first.cache_keys["grid-2"]


def test_the_layout_back_end_keys_the_layout_only_when_it_is_not_umap_learn(
    computed: tuple[Path, ComputedGrids],
) -> None:
    cache, first = computed
    explicit = run(cache, layout={"n_neighbors": 10, "backend": "umap-learn"})
    assert explicit.cache_keys["layout"] == first.cache_keys["layout"]  # auto chose umap-learn
    assert explicit.ran == () and "backend" not in explicit.layout.params
    landmarks = run(cache, layout={"n_neighbors": 10, "backend": "landmarks", "landmarks": 100})
    assert landmarks.ran == ("layout", "grid-2", "grid-4")  # activations reused
    inputs = json.loads(
        (cache / "layout" / landmarks.cache_keys["layout"] / "inputs.json").read_text()
    )
    assert inputs["backend"]["name"] == "landmarks" and inputs["backend"]["landmarks"] == 100
    assert landmarks.layout.params["backend"] == "landmarks"
    assert landmarks.layout.xy.shape == (80, 2)


def test_an_unknown_layer_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown layer 'mixed4z'") as err:
        run(tmp_path, layer="mixed4z")
    assert not (tmp_path / "activations").exists()
    assert err.value.where is not None and "[atlas." in err.value.where  # the spec, named
    assert "layer of model 'demo'" in str(err.value)


def test_more_samples_than_images_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AtlasError, match="fewer than the 500 asked for"):
        run(tmp_path, samples=500)
