"""Activation and attribution collection on a local Ray cluster (two CPU workers) gives the
activations a collection without Ray gives, byte for byte: when it runs straight through, when
a worker process is killed while it collects, and when an interrupted cluster collection
resumes (its chunks finish out of order; the manifest names each one written).

The demo model (random weights) and a synthetic data set, as in test_cluster.py: the data
source travels to the workers inside the batch function, through Ray's object store. The
reference activations are collected once, without Ray.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from generator.atlas import collect as collect_module
from generator.atlas.environment import ComputeEnvironment
from generator.atlas.progress import Progress
from generator.atlas.spec import parse_computed_atlas
from generator.atlas.stages import collect_activations, open_sources

from .test_cluster import Interrupted, demo_config, killing_a_worker

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: 24 images in chunks of 4 (6 chunks), batches of 2, two layers in one pass, attributions on.
TABLE: dict[str, Any] = {
    "model": "demo",
    "layer": "mixed4c",
    "dataset": "shapes",
    "samples": 24,
    "positions": 2,
    "seed": 1,
}
LAYERS = ("mixed3b", "mixed4c")
CHUNK, BATCH = 4, 2


def collect_all(cache: Path, cluster: str = "none", stream: io.StringIO | None = None) -> None:
    """Collect LAYERS of TABLE's atlas into ``cache`` (the stage the pipeline runs)."""
    env = ComputeEnvironment.from_config(demo_config(cache, cluster, 40))
    specs = [
        parse_computed_atlas(f"demo-{layer}", {**TABLE, "layer": layer}, "atlases.toml:1")
        for layer in LAYERS
    ]
    with env.threads_capped():  # as every compute entry point (attributions vary with it)
        collect_activations(
            specs,
            open_sources(specs[0], env),
            cache_dir=cache,
            device=env.device,
            progress=Progress(stream or io.StringIO(), log_interval=0.0),
            batch_size=BATCH,
            chunk_images=CHUNK,
            cluster=env.cluster,
        )


def digests(cache: Path) -> dict[str, str]:
    """sha256 of every file of the activations cache entries (one ``.npy`` per array, the
    facts and the inputs), by path inside the cache; not the seals, which record the files'
    modification times."""
    root = cache / "activations"
    found = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix != ".seal"
    }
    assert len([name for name in found if name.endswith("/vectors.npy")]) == len(LAYERS), found
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The activations collected without Ray."""
    cache = tmp_path_factory.mktemp("local") / ".atlas-cache"
    collect_all(cache)
    return digests(cache)


def test_a_cluster_collection_equals_the_local_one(
    ray_session: Any, reference: dict[str, str], tmp_path: Path
) -> None:
    log = io.StringIO()
    cache = tmp_path / ".atlas-cache"
    collect_all(cache, "local", log)
    assert digests(cache) == reference
    lines = log.getvalue()
    assert "collect: 6 chunk(s) on 2 of 2 Ray worker(s), 1 CPU thread(s) each" in lines
    assert "collect mixed3b, mixed4c: 24/24 images" in lines
    assert "6/6 chunks, 2/2 workers alive" in lines
    assert not (cache / "chunks").exists() or not any((cache / "chunks").iterdir())


@pytest.mark.slow
def test_a_worker_killed_while_collecting_is_restarted_and_the_result_is_the_same(
    ray_session: Any, reference: dict[str, str], tmp_path: Path
) -> None:
    cache = tmp_path / ".atlas-cache"
    # A busy worker (inside a chunk), once two chunks are written.
    with killing_a_worker(cache / "chunks", "*/chunk-*.npz", 2, b"CollectWorker.run") as killed:
        collect_all(cache, "local")
    assert killed, "no busy collect worker was found to kill"
    assert digests(cache) == reference  # its chunk ran again, on its restarted process


@pytest.mark.slow
def test_an_interrupted_cluster_collection_resumes_to_the_same_result(
    ray_session: Any,
    reference: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / ".atlas-cache"
    real_write = collect_module._write_chunk
    written: list[str] = []

    def write_three_then_stop(path: Path, *args: Any) -> None:
        if len(written) == 3:
            raise Interrupted
        written.append(path.name)
        real_write(path, *args)

    monkeypatch.setattr(collect_module, "_write_chunk", write_three_then_stop)
    with pytest.raises(Interrupted):
        collect_all(cache, "local")
    monkeypatch.setattr(collect_module, "_write_chunk", real_write)
    (run,) = (cache / "chunks").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    finished = sorted(int(name[6:11]) for name in written)
    assert manifest["chunks_finished"] == finished  # in whatever order they came back
    assert manifest["chunks_done"] == next(i for i in range(7) if i not in finished)
    log = io.StringIO()
    collect_all(cache, "local", log)
    assert "collect: 3 chunk(s) on 2 of 2" in log.getvalue()  # none of the three again
    assert digests(cache) == reference
