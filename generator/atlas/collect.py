"""Collect activation vectors (and their attributions) at random positions (METHOD.md 1-2).

One pass over the images serves several layers: each batch runs one truncated forward to the
deepest requested layer; for every image and layer, ``positions`` random spatial positions are
drawn from a generator seeded by ``(seed, layer, image index)`` alone, so the samples do not
depend on batching, worker count or on where a run was resumed. When attribution is on, the
samples of each layer are attributed to every class in the same pass (:mod:`.attribute`).

Resumable: the sample list is cut into chunks of ``chunk_images`` images; each finished chunk is
written atomically to ``<run_dir>/chunk-<i>.npz`` and only then recorded in
``<run_dir>/manifest.json`` (also written atomically). A run killed at any moment (even
``kill -9``) leaves finished chunks and a manifest naming them; the next run with the same
``run_key`` skips them and starts at the first unrecorded chunk, whose batches are the same as
in an uninterrupted run (batches never cross chunk starts when ``chunk_images`` is a multiple of
the batch size), so the assembled result is identical.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from generator.atlas.artifacts import Activations, reserved_memmap, write_activation_facts
from generator.atlas.progress import Progress
from generator.cache import atomic_write_bytes, atomic_write_json, clean_stale_temporaries
from generator.errors import AtlasError
from generator.keys import COLLECT_VERSION

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from generator.cluster.session import ClusterPlan
    from generator.models.base import AtlasModel


#: Images of one chunk when the caller does not choose (``collect_activations`` rounds it up to
#: a multiple of the batch size).
CHUNK_IMAGES = 2048


class BatchLike(Protocol):
    """What a loader yields (``generator.data.loader.Batch``)."""

    @property
    def indices(self) -> Tensor:
        """``[B] int64`` indices into the image source."""

    @property
    def images(self) -> Tensor:
        """``[B, 3, S, S]`` float in [0, 1]."""


#: ``batches(indices)`` yields the images of ``indices`` in that order, batched, skipping
#: (and counting) unreadable ones; e.g. a ``functools.partial`` of
#: ``generator.data.loader.iterate_batches`` with the source and loading options bound.
BatchFn = Callable[[Sequence[int]], Iterable[BatchLike]]


def sample_positions(seed: int, layer: str, image_index: int, hw: tuple[int, int], k: int) -> Any:
    """``k`` distinct random positions ``[k, 2] int64`` ``(y, x)`` in an ``h x w`` map.

    Drawn uniformly from all ``h * w`` positions (the reference code skipped row and column 0,
    an artefact of its ``randint(1, H)``; we do not) by a generator seeded by
    ``(seed, crc32(layer), image_index)`` only.
    """
    h, w = hw
    rng = np.random.default_rng([seed, zlib.crc32(layer.encode()), image_index])
    flat = rng.choice(h * w, size=k, replace=False)
    return np.stack([flat // w, flat % w], axis=1).astype(np.int64)


def _read_manifest(run_dir: Path, run_key: str) -> dict[str, Any] | None:
    """The manifest of a previous run with the same key whose recorded chunks all exist."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("run_key") != run_key or manifest.get("version") != COLLECT_VERSION:
        return None
    if not all((run_dir / _chunk_name(i)).is_file() for i in _finished(manifest)):
        return None
    return dict(manifest)


def _finished(manifest: dict[str, Any]) -> set[int]:
    """The chunks a manifest records as written: the first ``chunks_done`` (a run in this
    process writes them in order), and those of ``chunks_finished`` (a cluster run's, written
    in the order workers finish them)."""
    return set(range(manifest["chunks_done"])) | {
        int(i) for i in manifest.get("chunks_finished", ())
    }


def _chunk_name(i: int) -> str:
    return f"chunk-{i:05d}.npz"


@dataclass(frozen=True)
class Sampling:
    """How activation vectors are sampled, attributed and stored (with the model, the images
    and the layers, what determines a collection's rows).

    Attributes:
        positions: random positions per image and layer (k).
        seed: seeds the positions (with the layer and image index).
        attribution: also compute ``[N, K]`` attributions (activation x gradient per class).
        smooth_maxpool: attribution through the article's smooth max-pool relaxation.
        attribution_method: ``auto`` | ``jvp`` | ``double-vjp`` (:mod:`.attribute`).
        attribution_measure: ``gradient`` (the article's) | ``readout`` (:mod:`.attribute`).
        float16: store chunks in float16 (halves the disk; results are then float16-rounded).
    """

    positions: int = 1
    seed: int = 0
    attribution: bool = True
    smooth_maxpool: bool = True
    attribution_method: str = "auto"
    attribution_measure: str = "gradient"
    float16: bool = False


DEFAULT_SAMPLING = Sampling()


class Collector:
    """Turns batches into per-layer sample rows (and attributions)."""

    def __init__(
        self, model: AtlasModel, layers: Sequence[str], sampling: Sampling, *, device: torch.device
    ) -> None:
        from generator.atlas.attribute import Attributor

        self.model = model
        self.layers = list(layers)
        self.k = sampling.positions
        self.seed = sampling.seed
        self.device = device
        self.attributors = {
            layer: Attributor(
                model,
                layer,
                smooth_maxpool=sampling.smooth_maxpool,
                method=sampling.attribution_method,
                measure=sampling.attribution_measure,
            )
            for layer in self.layers
            if sampling.attribution
        }
        self.layer_hw: dict[str, tuple[int, int]] = {}

    def rows(self, batch: BatchLike) -> dict[str, dict[str, np.ndarray]]:
        """Per layer: ``vectors [B*k, C]``, ``attributions [B*k, K]``, ``image_index``,
        ``positions [B*k, 2]``, ``labels`` (numpy, float32/int64)."""
        import torch

        images = batch.images.to(self.device, non_blocking=True).float()
        indices = [int(i) for i in batch.indices]
        labels_t = getattr(batch, "labels", None)
        labels = (
            np.asarray(labels_t.cpu(), dtype=np.int64)
            if labels_t is not None
            else np.full(len(indices), -1, dtype=np.int64)
        )
        with torch.no_grad():
            acts = self.model.forward_to(images, self.layers)
        out: dict[str, dict[str, np.ndarray]] = {}
        for layer in self.layers:
            act = acts[layer]
            hw = (int(act.shape[2]), int(act.shape[3]))
            if self.k > hw[0] * hw[1]:
                raise AtlasError(
                    f"cannot draw {self.k} distinct positions per image from layer {layer}",
                    where="positions",
                    expected=f"at most {hw[0] * hw[1]} ({hw[0]}x{hw[1]} positions)",
                    got=str(self.k),
                )
            self.layer_hw[layer] = hw
            pos = np.concatenate(
                [sample_positions(self.seed, layer, i, hw, self.k) for i in indices]
            )
            rows = torch.arange(len(indices), device=act.device).repeat_interleave(self.k)
            pos_t = torch.from_numpy(pos).to(act.device)
            vectors = act[rows, :, pos_t[:, 0], pos_t[:, 1]]
            record = {
                "vectors": vectors.float().cpu().numpy(),
                "image_index": np.repeat(np.asarray(indices, dtype=np.int64), self.k),
                "positions": pos,
                "labels": np.repeat(labels, self.k),
            }
            if layer in self.attributors:
                attr = self.attributors[layer](act[rows], pos_t, images[rows])
                record["attributions"] = attr.cpu().numpy()
            out[layer] = record
        return out


def chunk_rows(
    collector: Collector, batches: BatchFn, indices: Sequence[int]
) -> dict[str, dict[str, np.ndarray]]:
    """The rows of one chunk, ``indices`` (its part of the sample list), batched on its own:
    what a cluster worker computes (:mod:`generator.cluster.collect`); the same rows as the
    chunk's part of a run in this process when the chunk size is a multiple of the batch
    size (the batches are then the same)."""
    position_of = {int(index): i for i, index in enumerate(indices)}
    pending = []
    for batch in batches(indices):
        list_pos = np.asarray([position_of[int(i)] for i in batch.indices], dtype=np.int64)
        if len(list_pos):
            pending.append((list_pos, collector.rows(batch)))
    return _take_rows(pending, len(indices), collector.layers, collector.k)


def _write_chunk(path: Path, rows: dict[str, dict[str, np.ndarray]], float16: bool) -> None:
    arrays: dict[str, np.ndarray] = {}
    for layer, record in rows.items():
        for name, value in record.items():
            if value.dtype.kind == "f":
                value = value.astype(np.float16 if float16 else np.float32)
            arrays[f"{layer}.{name}"] = value
    buffer = io.BytesIO()
    np.savez(buffer, **cast(dict[str, Any], arrays))
    atomic_write_bytes(path, buffer.getvalue())


def collect(
    model: AtlasModel,
    batches: BatchFn,
    indices: Sequence[int] | np.ndarray,
    *,
    layers: Sequence[str],
    run_dir: str | Path,
    run_key: str,
    device: torch.device,
    sampling: Sampling = DEFAULT_SAMPLING,
    chunk_images: int = 1024,
    progress: Progress | None = None,
    after_chunk: Callable[[int], None] | None = None,
    cluster: ClusterPlan | None = None,
) -> dict[str, Activations]:
    """Sample ``sampling.positions`` activation vectors per image of ``indices`` for each of ``layers``.

    Args:
        model: an :class:`~generator.models.base.AtlasModel` in eval mode, on ``device``.
        batches: see :data:`BatchFn`; must yield images in the order of the indices it is given.
        indices: the sample list, unique indices into the image source.
        layers: layer names; one truncated forward to the deepest serves all.
        run_dir: folder for chunks and the manifest (resumed when ``run_key`` matches).
        run_key: digest of everything that determines the result (model, data, sample list,
            options); a manifest with another key is ignored and overwritten.
        device: where the model runs.
        sampling: how rows are sampled, attributed and stored (:class:`Sampling`).
        chunk_images: images per chunk; keep it a multiple of the loader's batch size.
        progress: reporter for images/s and ETA (None: silent).
        after_chunk: called with a chunk's number once it is recorded (tests inject failures).
        cluster: compute the chunks on Ray workers (:mod:`generator.cluster.collect`; each
            chunk batched on its own, as a run resumed at its start batches it, so the rows are
            the same bytes); ``batches`` and the model are then shipped to every worker.

    Returns:
        ``{layer: Activations}``, rows in sample-list order (image by image, k rows each;
        unreadable images contribute none).
    """
    model.eval()
    index_list = [int(i) for i in indices]
    if len(set(index_list)) != len(index_list):
        raise ValueError("collect: the sample list has repeated image indices")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(run_dir)
    previous = _read_manifest(run_dir, run_key)
    done = previous["chunks_done"] if previous else 0
    chunk_images = previous["chunk_images"] if previous else chunk_images
    n_chunks = max(1, math.ceil(len(index_list) / chunk_images))
    position_of = {index: i for i, index in enumerate(index_list)}
    collector = Collector(model, layers, sampling, device=device)
    if previous:
        collector.layer_hw.update({k: (v[0], v[1]) for k, v in previous["layer_hw"].items()})
    progress = progress or Progress(enabled=False)
    label = f"collect {', '.join(layers)}"

    def record(
        chunk: int, rows: dict[str, dict[str, np.ndarray]], finished: set[int] | None = None
    ) -> None:
        """Write ``chunk``, then the manifest: the first ``chunk + 1`` chunks done, or (on a
        cluster) every chunk of ``finished``, which then includes ``chunk``."""
        _write_chunk(run_dir / _chunk_name(chunk), rows, sampling.float16)
        prefix = chunk + 1
        if finished is not None:
            prefix = next(i for i in range(n_chunks + 1) if i not in finished)
        manifest: dict[str, Any] = {
            "version": COLLECT_VERSION,
            "run_key": run_key,
            "layers": list(layers),
            "n_images": len(index_list),
            "chunk_images": chunk_images,
            "n_chunks": n_chunks,
            "chunks_done": prefix,
            "layer_hw": {name: list(hw) for name, hw in collector.layer_hw.items()},
        }
        if finished is not None:
            manifest["chunks_finished"] = sorted(finished)
        atomic_write_json(run_dir / "manifest.json", manifest)
        if after_chunk is not None:
            after_chunk(chunk)

    if cluster is not None:
        from generator.cluster.collect import collect_on_cluster

        finished = _finished(previous) if previous else set()
        spans = [
            (i, index_list[i * chunk_images : (i + 1) * chunk_images])
            for i in range(n_chunks)
            if i not in finished
        ]
        results = collect_on_cluster(
            cluster,
            model,
            batches,
            layers,
            sampling,
            spans,
            compute=(Collector, chunk_rows),
            label=label,
            total=len(index_list),
            done=len(index_list) - sum(len(span) for _, span in spans),
            progress=progress,
        )
        for i, rows, layer_hw in results:
            collector.layer_hw.update(layer_hw)
            finished.add(i)
            record(i, rows, finished)
        return assemble(run_dir, layers, n_chunks, meta={"run_key": run_key})

    task = progress.task(
        label, total=len(index_list), done=min(done * chunk_images, len(index_list))
    )
    # Rows waiting for their chunk to complete, with each row's position in the sample list.
    pending: list[tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]] = []
    chunk, passed = done, done * chunk_images

    def flush_through(limit: int) -> None:
        """Write every chunk that ends at or before list position ``limit``."""
        nonlocal chunk, pending
        while chunk < n_chunks and min((chunk + 1) * chunk_images, len(index_list)) <= limit:
            end = (chunk + 1) * chunk_images
            rows = _take_rows(pending, end, layers, collector.k)
            pending = [_drop_rows(p, end, collector.k) for p in pending]
            pending = [p for p in pending if len(p[0])]
            record(chunk, rows)
            chunk += 1

    for batch in batches(index_list[done * chunk_images :]):
        list_pos = np.asarray([position_of[int(i)] for i in batch.indices], dtype=np.int64)
        if len(list_pos):
            pending.append((list_pos, collector.rows(batch)))
            reached = int(list_pos.max()) + 1
            task.advance(max(0, reached - passed))
            passed = max(passed, reached)
            flush_through(passed)
    task.advance(len(index_list) - passed)
    flush_through(len(index_list))
    task.close()
    return assemble(run_dir, layers, n_chunks, meta={"run_key": run_key})


def _take_rows(
    pending: list[tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]],
    end: int,
    layers: Sequence[str],
    k: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Rows of images whose list position is ``< end``, concatenated per layer and field."""
    rows: dict[str, dict[str, np.ndarray]] = {}
    for layer in layers:
        fields: dict[str, list[np.ndarray]] = {}
        for list_pos, batch_rows in pending:
            keep = np.repeat(list_pos < end, k)
            for name, value in batch_rows[layer].items():
                fields.setdefault(name, []).append(value[keep])
        rows[layer] = {name: np.concatenate(parts) for name, parts in fields.items()}
    return rows


def _drop_rows(
    item: tuple[np.ndarray, dict[str, dict[str, np.ndarray]]], end: int, k: int
) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    list_pos, batch_rows = item
    keep = list_pos >= end
    if keep.all():
        return item
    keep_rows = np.repeat(keep, k)
    return list_pos[keep], {
        layer: {name: value[keep_rows] for name, value in record.items()}
        for layer, record in batch_rows.items()
    }


def assemble(
    run_dir: Path, layers: Sequence[str], n_chunks: int, meta: dict[str, Any]
) -> dict[str, Activations]:
    """The chunks of a finished run, one :class:`Activations` per layer, written chunk by chunk
    into ``<run_dir>/assembled/<layer>/`` (so the rows are never all in memory) and returned
    memory-mapped: vectors and attributions in the chunks' precision, the rest int64."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    chunks = [run_dir / _chunk_name(i) for i in range(n_chunks)]
    headers = [_npz_headers(path) for path in chunks]
    result: dict[str, Activations] = {}
    for layer in layers:
        fields: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for found in headers:
            for key, (shape, dtype) in found.items():
                owner, name = key.rsplit(".", 1)
                if owner == layer:
                    fields.setdefault(
                        name, (shape[1:], dtype if dtype.kind == "f" else np.dtype(np.int64))
                    )
        rows = sum(
            found[f"{layer}.vectors"][0][0] for found in headers if f"{layer}.vectors" in found
        )
        if layer not in manifest["layer_hw"] or rows == 0:
            raise AtlasError(
                "no usable images: every image of the sample list was skipped",
                where=str(run_dir),
                fix="check the data set (see the warning about skipped images above)",
            )
        folder = run_dir / "assembled" / layer
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        outputs = {
            name: reserved_memmap(folder / f"{name}.npy", (rows, *tail), dtype)
            for name, (tail, dtype) in fields.items()
        }
        start = 0
        for path, found in zip(chunks, headers, strict=True):
            count = found[f"{layer}.vectors"][0][0] if f"{layer}.vectors" in found else 0
            if count:
                with np.load(path, allow_pickle=False) as npz:
                    for name, out in outputs.items():
                        out[start : start + count] = npz[f"{layer}.{name}"]
            start += count
        for out in outputs.values():
            out.flush()
        del outputs
        hw = manifest["layer_hw"][layer]
        write_activation_facts(folder, layer, (int(hw[0]), int(hw[1])), dict(meta))
        result[layer] = Activations.load(folder)
    return result


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of the arrays of an uncompressed ``.npz``, from their ``.npy``
    headers (no array is read)."""
    found: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            found[info.filename.removesuffix(".npy")] = (tuple(shape), np.dtype(dtype))
    return found
