"""Dataset examples read and cropped on a local Ray cluster (two CPU workers) are the
thumbnails a run without Ray gives, byte for byte: over several groups of images of a
synthetic data set, and with an unreadable file in an image folder (left out on both paths).

No model: the samples (image, position) and their layout are drawn at random and binned into
grids, so each test costs only the images' decoding and the workers' start. The whole bundle
built on a cluster, examples included, is compared in test_cluster.py.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from generator.atlas.artifacts import Activations, Layout
from generator.atlas.examples import LevelExamples, example_thumbnails
from generator.atlas.grid import make_grid
from generator.atlas.progress import Progress
from generator.bundle.viewerdata import pick_examples
from generator.cluster.session import ClusterPlan
from generator.data.base import ImageSource
from generator.data.folder import FolderSource
from generator.data.synthetic import SyntheticWorld

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZES = (2, 4)
PER_CELL = 3
LAYER_HW = (7, 7)
CLUSTER = ClusterPlan(address=None, workers=2, gpus=False, threads=1)


def random_samples(images: int, samples: int, seed: int, heavy: int | None = None) -> Any:
    """``(activations, grids)``: ``samples`` samples of random images (``heavy``, if given,
    holds a quarter of them) at random positions of a 7 x 7 map, laid out at random."""
    rng = np.random.default_rng(seed)
    image_index = rng.integers(0, images, samples).astype(np.int64)
    if heavy is not None:
        image_index[: samples // 4] = heavy
    activations = Activations(
        layer="mixed4a",
        vectors=rng.random((samples, 6)).astype(np.float32),
        image_index=image_index,
        positions=rng.integers(0, LAYER_HW[0], (samples, 2)).astype(np.int64),
        labels=np.zeros(samples, np.int64),
        layer_hw=LAYER_HW,
    )
    layout = Layout(xy=rng.random((samples, 2)).astype(np.float32), method="random")
    grids = {size: make_grid(activations, layout, size, min_count=0) for size in SIZES}
    return activations, grids


def thumbnails(
    source: ImageSource,
    samples: Any,
    scratch: Path,
    cluster: ClusterPlan | None,
    log: io.StringIO | None = None,
) -> dict[int, LevelExamples]:
    activations, grids = samples
    scratch.mkdir()
    return example_thumbnails(
        source,
        activations,
        grids,
        input_size=32,
        resize="center-crop",
        window=14,
        per_cell=PER_CELL,
        thumb=10,
        seed=3,
        scratch=scratch,
        progress=Progress(log or io.StringIO(), log_interval=0.0),
        cluster=cluster,
        group_images=8,
    )


def assert_same(ours: dict[int, LevelExamples], theirs: dict[int, LevelExamples]) -> None:
    assert sorted(ours) == sorted(theirs) == list(SIZES)
    for size in SIZES:
        for name in ("thumbs", "counts", "samples"):
            mine, other = getattr(ours[size], name), getattr(theirs[size], name)
            assert mine.dtype == other.dtype and mine.shape == other.shape, (size, name)
            assert mine.tobytes() == other.tobytes(), (size, name)


def test_examples_cropped_on_the_cluster_are_the_local_bytes(
    ray_session: Any, tmp_path: Path
) -> None:
    source = SyntheticWorld(seed=2, size=40, count=48)
    samples = random_samples(48, 90, seed=0)
    local = thumbnails(source, samples, tmp_path / "local", None)
    log = io.StringIO()
    remote = thumbnails(source, samples, tmp_path / "remote", CLUSTER, log)
    assert_same(remote, local)
    assert all(level.counts.sum() > 0 for level in local.values())
    images = len(
        np.unique(
            samples[0].image_index[
                np.concatenate([level.samples[level.samples >= 0] for level in local.values()])
            ]
        )
    )
    groups = -(-images // 8)
    assert groups >= 3, images
    lines = log.getvalue()
    assert f"examples: {groups} group(s) on 2 of 2 Ray worker(s), 1 CPU thread(s)" in lines
    assert f"examples: {images}/{images} images" in lines
    assert f"{groups}/{groups} groups, 2/2 workers alive" in lines


def write_folder(root: Path, images: int, corrupt: int) -> None:
    """``images`` PNGs of random sizes in two class subfolders; file ``corrupt`` (in sorted
    order) cut in half, so it cannot be decoded."""
    rng = np.random.default_rng(4)
    for k in range(images):
        folder = root / ("cats" if k < images // 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        h, w = (int(v) for v in rng.integers(20, 48, 2))
        path = folder / f"{k:03d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        if k == corrupt:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_an_unreadable_image_is_left_out_on_the_cluster_as_here(
    ray_session: Any, tmp_path: Path
) -> None:
    write_folder(tmp_path / "images", 20, corrupt=11)
    source = FolderSource(tmp_path / "images")
    samples = random_samples(20, 60, seed=1, heavy=11)
    activations, grids = samples
    chosen = np.concatenate(
        [
            pick_examples(g.sample_cell, g.kept, PER_CELL, seed=3 + s).ravel()
            for s, g in grids.items()
        ]
    )
    chosen = chosen[chosen >= 0]
    assert (activations.image_index[chosen] == 11).any()  # the bad image has examples to lose
    local = thumbnails(source, samples, tmp_path / "local", None)
    remote = thumbnails(source, samples, tmp_path / "remote", CLUSTER)
    assert_same(remote, local)
    kept = np.concatenate([level.samples[level.samples >= 0] for level in local.values()])
    assert sum(int(level.counts.sum()) for level in local.values()) == len(kept)
    assert len(kept) == (activations.image_index[chosen] != 11).sum()
    assert not (activations.image_index[kept] == 11).any()
