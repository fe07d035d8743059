"""Collection: shapes, positions by seed, one pass for several layers, chunks, resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from generator.atlas.artifacts import Activations
from generator.atlas.attribute import brute_force_attributions
from generator.atlas.collect import Sampling, collect, sample_positions
from generator.errors import AtlasError

from . import _collect_worker
from .conftest import TinyModel, TinySource, simple_batches

CPU = torch.device("cpu")


def batches_of(source: TinySource, batch_size: int = 4, seen: list[int] | None = None) -> Any:
    def batches(indices: Sequence[int]) -> Iterator[Any]:
        for batch in simple_batches(source, indices, size=16, batch_size=batch_size, device=CPU):
            if seen is not None:
                seen.extend(int(i) for i in batch.indices)
            yield batch

    return batches


def run(
    tmp: Path, source: TinySource, *, batch_size: int = 4, **options: Any
) -> dict[str, Activations]:
    """A collection of ``source`` into ``tmp``: two layers, 2 positions, seed 3, chunks of 8;
    ``options`` overrides any of these (the fields of :class:`Sampling` too)."""
    sampling = {"positions": 2, "seed": 3}
    settings: dict[str, Any] = {"layers": ["mixed3a", "mixed4a"], "run_key": "k", "chunk_images": 8}
    for key, value in options.items():
        (sampling if key in SAMPLING_FIELDS else settings)[key] = value
    return collect(
        TinyModel(),
        batches_of(source, batch_size),
        list(range(len(source))),
        run_dir=tmp,
        device=CPU,
        sampling=Sampling(**sampling),
        **settings,
    )


#: The keyword arguments of run() that are fields of Sampling.
SAMPLING_FIELDS = {f.name for f in dataclasses.fields(Sampling)}


def assert_same(a: dict[str, Activations], b: dict[str, Activations]) -> None:
    assert a.keys() == b.keys()
    for layer in a:
        for name in ("vectors", "attributions", "image_index", "positions", "labels"):
            np.testing.assert_array_equal(getattr(a[layer], name), getattr(b[layer], name))
        assert a[layer].layer_hw == b[layer].layer_hw


def test_shapes_dtypes_and_contents(tmp_path: Path, tiny_source: TinySource) -> None:
    result = run(tmp_path, tiny_source)
    good = [i for i in range(40) if i != 7]  # image 7 is unreadable
    for layer, (channels, side) in {"mixed3a": (12, 8), "mixed4a": (16, 4)}.items():
        acts = result[layer]
        n = len(good) * 2
        assert acts.vectors.shape == (n, channels) and acts.vectors.dtype == np.float32
        assert acts.attributions is not None
        assert acts.attributions.shape == (n, 5) and acts.attributions.dtype == np.float32
        assert acts.image_index.dtype == np.int64 and acts.positions.dtype == np.int64
        np.testing.assert_array_equal(acts.image_index, np.repeat(good, 2))
        np.testing.assert_array_equal(acts.labels, np.repeat(good, 2) % 2)
        assert acts.layer_hw == (side, side)
        assert (acts.positions >= 0).all() and (acts.positions < side).all()
        # The two positions of an image differ, and are the ones the seed says.
        pairs = acts.positions.reshape(-1, 2, 2)
        assert (pairs[:, 0] != pairs[:, 1]).any(axis=1).all()
        np.testing.assert_array_equal(
            pairs[5], sample_positions(3, layer, good[5], (side, side), 2)
        )
        assert (acts.vectors >= 0).all()  # post-ReLU


def test_vectors_and_attributions_are_those_of_a_direct_computation(
    tmp_path: Path, tiny_source: TinySource
) -> None:
    result = run(tmp_path, tiny_source)["mixed3a"]
    model = TinyModel()
    rows = [0, 1, 17, 40]
    images = []
    for r in rows:
        batch = next(
            iter(
                simple_batches(
                    tiny_source, [int(result.image_index[r])], size=16, batch_size=1, device=CPU
                )
            )
        )
        images.append(batch.images)
    with torch.no_grad():
        act = model.forward_to(torch.cat(images), ["mixed3a"])["mixed3a"]
    pos = torch.from_numpy(result.positions[rows])
    direct = act[torch.arange(len(rows)), :, pos[:, 0], pos[:, 1]].numpy()
    np.testing.assert_allclose(result.vectors[rows], direct, rtol=1e-5, atol=1e-6)
    expected = brute_force_attributions(model, "mixed3a", act, pos).numpy()
    assert result.attributions is not None
    np.testing.assert_allclose(result.attributions[rows], expected, rtol=1e-4, atol=1e-4)


def test_positions_do_not_depend_on_batch_size_and_seed_matters(
    tmp_path: Path, tiny_source: TinySource
) -> None:
    a = run(tmp_path / "a", tiny_source, batch_size=4)
    b = run(tmp_path / "b", tiny_source, batch_size=7, chunk_images=7)
    c = run(tmp_path / "c", tiny_source, seed=4)
    for layer in a:
        np.testing.assert_array_equal(a[layer].positions, b[layer].positions)
        np.testing.assert_allclose(a[layer].vectors, b[layer].vectors, rtol=1e-5, atol=1e-6)
        assert not np.array_equal(a[layer].positions, c[layer].positions)


def test_one_forward_per_batch_serves_all_layers(tmp_path: Path, tiny_source: TinySource) -> None:
    model = TinyModel()
    calls: list[tuple[str, ...]] = []
    original = model.forward_to

    def counting(images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        calls.append(tuple(layers))
        return original(images, layers)

    model.forward_to = counting  # type: ignore[method-assign]
    collect(
        model,
        batches_of(tiny_source, 8),
        list(range(40)),
        layers=["mixed3a", "mixed4a"],
        run_dir=tmp_path,
        run_key="k",
        device=CPU,
        sampling=Sampling(attribution=False),
        chunk_images=16,
    )
    assert calls == [("mixed3a", "mixed4a")] * 5


def test_chunks_manifest_and_float16(tmp_path: Path, tiny_source: TinySource) -> None:
    full = run(tmp_path / "a", tiny_source)
    half = run(tmp_path / "b", tiny_source, float16=True)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["chunks_done"] == manifest["n_chunks"] == 5
    assert sorted(p.name for p in (tmp_path / "b").glob("chunk-*.npz")) == [
        f"chunk-0000{i}.npz" for i in range(5)
    ]
    # assembled chunk by chunk into .npy files, memory-mapped in the precision of the chunks
    vectors = half["mixed4a"].vectors
    assert isinstance(vectors, np.memmap) and vectors.dtype == np.float16
    assert full["mixed4a"].vectors.dtype == np.float32
    assert (tmp_path / "b" / "assembled" / "mixed4a" / "vectors.npy").is_file()
    np.testing.assert_array_equal(vectors, full["mixed4a"].vectors.astype(np.float16))


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_gives_the_uninterrupted_result(
    tmp_path: Path, tiny_source: TinySource
) -> None:
    reference = run(tmp_path / "ref", tiny_source)

    def fail_after_chunk_2(chunk: int) -> None:
        if chunk == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tmp_path / "run", tiny_source, after_chunk=fail_after_chunk_2)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["chunks_done"] == 3
    seen: list[int] = []
    resumed = collect(
        TinyModel(),
        batches_of(tiny_source, 4, seen),
        list(range(40)),
        layers=["mixed3a", "mixed4a"],
        run_dir=tmp_path / "run",
        run_key="k",
        device=CPU,
        sampling=Sampling(positions=2, seed=3),
        chunk_images=8,
    )
    assert seen == list(range(24, 40))  # only the missing chunks were computed
    assert_same(resumed, reference)


def test_a_different_run_key_starts_over(tmp_path: Path, tiny_source: TinySource) -> None:
    run(tmp_path, tiny_source, seed=3, run_key="one")
    other = run(tmp_path, tiny_source, seed=4, run_key="two")
    assert_same(other, run(tmp_path / "fresh", tiny_source, seed=4, run_key="two"))


def test_resume_after_kill_9(tmp_path: Path, tiny_source: TinySource) -> None:
    run_dir = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1]), str(Path(__file__).parents[2])]
        ),
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "atlas._collect_worker", str(run_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    manifest = run_dir / "manifest.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and worker.poll() is None:
            if manifest.is_file() and json.loads(manifest.read_text())["chunks_done"] >= 2:
                break
            time.sleep(0.05)
        assert worker.poll() is None, log.read_text()
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait()
    done = json.loads(manifest.read_text())["chunks_done"]
    assert 2 <= done < 5
    seen: list[int] = []
    resumed = collect(
        TinyModel(),
        batches_of(tiny_source, _collect_worker.BATCH_SIZE, seen),
        list(range(40)),
        run_dir=run_dir,
        device=CPU,
        sampling=_collect_worker.SAMPLING,
        **_collect_worker.OPTIONS,
    )
    assert seen[0] == done * 8
    reference = collect(
        TinyModel(),
        batches_of(tiny_source, _collect_worker.BATCH_SIZE),
        list(range(40)),
        run_dir=tmp_path / "ref",
        device=CPU,
        sampling=_collect_worker.SAMPLING,
        **_collect_worker.OPTIONS,
    )
    assert_same(resumed, reference)


def test_unusable_inputs_are_reported(tmp_path: Path) -> None:
    all_bad = TinySource(n=6, bad=range(6))
    with pytest.raises(AtlasError, match="no usable images"):
        run(tmp_path / "a", all_bad)
    with pytest.raises(AtlasError, match="distinct positions"):
        run(tmp_path / "b", TinySource(n=4), positions=17, layers=["mixed4a"])
    with pytest.raises(ValueError, match="repeated"):
        collect(
            TinyModel(),
            batches_of(TinySource()),
            [1, 2, 2],
            layers=["mixed4a"],
            run_dir=tmp_path / "c",
            run_key="k",
            device=CPU,
        )


def test_a_run_here_resumes_a_cluster_runs_manifest(
    tmp_path: Path, tiny_source: TinySource
) -> None:
    """A cluster run writes chunks out of order and names each in ``chunks_finished``; a run
    in this process resumes at the first chunk not written (it writes in order), and a named
    chunk whose file is gone makes the manifest void (everything is computed again)."""
    reference = run(tmp_path / "ref", tiny_source)
    folder = tmp_path / "run"
    run(folder, tiny_source)
    manifest = json.loads((folder / "manifest.json").read_text())
    for i in (1, 4):  # as a cluster run interrupted with chunks 0, 2 and 3 written
        (folder / f"chunk-0000{i}.npz").unlink()
    cluster = {**manifest, "chunks_done": 1, "chunks_finished": [0, 2, 3]}
    (folder / "manifest.json").write_text(json.dumps(cluster))

    def resume() -> tuple[dict[str, Activations], list[int]]:
        seen: list[int] = []
        result = collect(
            TinyModel(),
            batches_of(tiny_source, 4, seen),
            list(range(40)),
            layers=["mixed3a", "mixed4a"],
            run_dir=folder,
            run_key="k",
            device=CPU,
            sampling=Sampling(positions=2, seed=3),
            chunk_images=8,
        )
        return result, seen

    resumed, seen = resume()
    assert seen == list(range(8, 40))
    assert_same(resumed, reference)
    assert json.loads((folder / "manifest.json").read_text()) == manifest  # a plain one again
    (folder / "chunk-00003.npz").unlink()
    (folder / "manifest.json").write_text(json.dumps(cluster))
    resumed, seen = resume()
    assert seen == [i for i in range(40) if i != 7]  # image 7 is unreadable
    assert_same(resumed, reference)
