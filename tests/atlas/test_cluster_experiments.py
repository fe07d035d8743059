"""A patch experiment whose patched batches run on a local Ray of two CPU workers writes the
folder a run without Ray writes, byte for byte: when it runs straight through, and (slow) when
a worker process is killed while it patches.

The experiment: the demo model (its committed weights, which know the synthetic world) on 240
synthetic images, two pairs, 8 images each, 2 sizes x 2 corners, one noise patch, batches of 3
(3 per pair when all 8 are classified correctly, all in one queue). Its sizes are large enough
that some images flip and some do not, so the flips and the examples chosen by the target's
probability are both tested.
One Ray session (conftest's ``ray_session``) serves every cluster test.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from generator.atlas.progress import Progress
from generator.config import ComputeConfig
from generator.data.synthetic import SyntheticWorld
from generator.experiments.run import run_experiment
from generator.experiments.spec import parse_experiment

from .test_cluster import killing_a_worker_when

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WHERE = "content/demo/atlases.toml:1"


def icon_of(world: SyntheticWorld, name: str) -> np.ndarray:
    """The first image of class ``name``: the pair's icon."""
    return next(world.read(i) for i in range(48) if world.class_names[world.label(i)] == name)


def experiment(
    cache: Path, cluster: str, *, images: int = 8, batch: int = 3, log: io.StringIO | None = None
) -> Path:
    """The experiment's folder, computed with ``cluster`` (2 workers) or found in ``cache``."""
    world = SyntheticWorld(count=240, size=64)
    table = {
        "model": "demo",
        "dataset": "shapes",
        "seed": 3,
        "images_per_class": images,
        "sizes": [0.5, 0.8],
        "positions": [[0, 0], [1, 1]],
        "noise_patches": 1,
        "examples": 2,
        "batch_size": batch,
        "pairs": [
            {"source": "circle", "target": "star", "icon": "star.png"},
            {"source": "square", "target": "ring", "icon": "ring.png"},
        ],
    }
    spec = parse_experiment("two", table, WHERE, base=cache.parent)
    config = SimpleNamespace(
        compute=ComputeConfig(device="cpu", threads=1, cluster=cluster, cluster_workers=2),
        models={},
        datasets={"shapes": {"kind": "synthetic", "count": 240, "size": 64}},
        paths=SimpleNamespace(cache=cache),
        root=cache.parent,
    )
    icons = [icon_of(world, "star"), icon_of(world, "ring")]
    progress = Progress(log or io.StringIO(), log_interval=0.0)
    return run_experiment(spec, icons, config=config, progress=progress)


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file of the experiment's folder, by its path inside it."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The experiment computed without Ray."""
    return digests(experiment(tmp_path_factory.mktemp("local") / ".atlas-cache", "none"))


def test_a_cluster_experiment_equals_the_local_one(
    ray_session: Any, reference: dict[str, str], tmp_path: Path
) -> None:
    log = io.StringIO()
    folder = experiment(tmp_path / ".atlas-cache", "local", log=log)
    assert digests(folder) == reference
    examples = {f"examples/{k}-{e}.jpg" for k in (0, 1) for e in (0, 1)}
    assert set(reference) == {"results.json", "icons/0.png", "icons/1.png", *examples}
    lines = log.getvalue()
    correct = correct_counts(lines)
    batches = sum(-(-n // 3) for n in correct)
    assert batches >= 3
    assert f"experiment: {batches} batch(es) on 2 of 2 Ray worker(s)" in lines
    assert f"experiment two: {sum(correct)}/{sum(correct)} images" in lines
    assert f"{batches}/{batches} batches, 2/2 workers alive" in lines
    assert "images patched" not in lines  # nothing was patched in this process
    pairs = json.loads((folder / "results.json").read_text())["pairs"]
    rates = [placement["rate"] for pair in pairs for placement in pair["placements"]]
    assert min(rates) < 1 and max(rates) > 0  # some flips, not all


def correct_counts(lines: str) -> list[int]:
    """Each pair's images classified correctly before, from the experiment's messages."""
    return [
        int(line.split(": ")[2].split(" of ")[0])
        for line in lines.splitlines()
        if "images classified correctly before" in line
    ]


@pytest.mark.slow
def test_a_worker_killed_while_patching_is_restarted_and_the_results_are_the_same(
    ray_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """40 images per pair in batches of 2: enough units that a worker is killed with some
    still to do; its units are run again, and the folder is the local one."""
    local = experiment(
        tmp_path_factory.mktemp("local40") / ".atlas-cache", "none", images=40, batch=2
    )
    log = io.StringIO()
    cache = tmp_path_factory.mktemp("cluster40") / ".atlas-cache"
    four_done = re.compile(r" 4/\d+ batches")  # each worker has then most likely answered
    with killing_a_worker_when(
        lambda: bool(four_done.search(log.getvalue())), b"ExperimentWorker.run"
    ) as killed:
        folder = experiment(cache, "local", images=40, batch=2, log=log)
    assert killed, "no busy experiment worker was found to kill"
    assert digests(folder) == digests(local)
    assert "restart(s)" in log.getvalue()  # the killed worker answered again from a new process
