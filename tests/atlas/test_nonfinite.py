"""A model that computes NaN (damaged or diverged weights) stops the collection with a message
naming the atlas, the layer and the model, and caches nothing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from generator.atlas.artifacts import Activations
from generator.atlas.environment import ComputeEnvironment
from generator.atlas.progress import Progress
from generator.atlas.spec import parse_computed_atlas
from generator.atlas.stages import collect_activations, open_sources
from generator.errors import AtlasError

from .test_cluster import demo_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_nan_activations_are_refused_before_they_are_cached(tmp_path: Path) -> None:
    import torch

    cache = tmp_path / ".atlas-cache"
    env = ComputeEnvironment.from_config(demo_config(cache, "none", 12))
    table = {"model": "demo", "layer": "mixed4c", "dataset": "shapes", "samples": 12}
    spec = parse_computed_atlas("demo-4c", table, "content/demo/atlases.toml:7")
    sources = open_sources(spec, env)
    with torch.no_grad():  # damaged weights: one NaN in the first convolution
        next(sources.model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(AtlasError) as raised:
        collect_activations(
            [spec],
            sources,
            cache_dir=cache,
            device=env.device,
            progress=Progress(io.StringIO()),
            batch_size=4,
        )
    message = str(raised.value)
    assert "content/demo/atlases.toml:7" in message
    assert "12 of 12 samples of mixed4c have NaN or infinite" in message
    assert "check the weights of model 'demo'" in message
    assert not (cache / "activations").exists() or not any((cache / "activations").iterdir())


def test_nonfinite_rows_count_each_sample_once() -> None:
    vectors = np.ones((5, 3), dtype=np.float32)
    attributions = np.zeros((5, 2), dtype=np.float32)
    vectors[1, 0] = np.nan
    attributions[1, 1] = np.inf  # the same sample: counted once
    attributions[3, 0] = -np.inf
    acts = Activations(
        layer="mixed4c",
        vectors=vectors,
        image_index=np.arange(5),
        positions=np.zeros((5, 2), dtype=np.int64),
        labels=np.zeros(5, dtype=np.int64),
        layer_hw=(1, 1),
        attributions=attributions,
    )
    assert acts.nonfinite_rows() == 2
    clean = Activations(
        layer="mixed4c",
        vectors=np.ones((5, 3), dtype=np.float32),
        image_index=np.arange(5),
        positions=np.zeros((5, 2), dtype=np.int64),
        labels=np.zeros(5, dtype=np.int64),
        layer_hw=(1, 1),
    )
    assert clean.nonfinite_rows() == 0
