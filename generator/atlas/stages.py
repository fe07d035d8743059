"""The compute stages' plumbing: where inputs come from, cached artifacts.

* :func:`open_sources`: the model (with its weights digest), the image source (with its identity)
  and the sample list of a spec;
* :class:`StageCache`: ``<cache>/<stage>/<key>/`` folders written atomically, with an
  ``inputs.json`` naming the key's parts (every key: :mod:`generator.keys`);
* :func:`collect_activations`: the collection stage, several layers in one resumable pass.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from generator import seal
from generator.atlas.artifacts import Activations
from generator.atlas.collect import CHUNK_IMAGES, collect
from generator.atlas.progress import Progress
from generator.atlas.spec import ComputedAtlasSpec
from generator.cache import CacheLayout, atomic_dir, atomic_write_json
from generator.errors import AtlasError, UnknownNameError
from generator.keys import (
    StageKeys,
    activations_key,
    activations_parts,
    collection_parts,
    collection_run_key,
)

if TYPE_CHECKING:
    import torch

    from generator.atlas.environment import ComputeEnvironment
    from generator.cluster.session import ClusterPlan
    from generator.data.base import ImageSource
    from generator.models.base import AtlasModel

T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """The model and images an atlas is computed from, and the identity of each."""

    model: AtlasModel
    source: ImageSource
    indices: np.ndarray  # int64 [n] the sample list (sorted source indices)
    resize: str  # how images are fitted to the model's input: "stretch" | "center-crop"
    device: str = "cpu"  # the device type the atlas is computed on (chooses the layout back end)


class StageCache:
    """``<root>/<stage>/<key>/`` folders, written atomically; records which stages ran.

    A stage named ``grid-20`` lives under ``<root>/grid/``. Each folder holds the artifact's
    files and ``inputs.json``, the parts its key digests.
    """

    def __init__(self, root: Path, progress: Progress, keys: StageKeys | None = None) -> None:
        self.root = Path(root)
        self.progress = progress
        self.keys = keys if keys is not None else StageKeys({})
        self.ran: list[str] = []

    def folder(self, stage: str, key: str | None = None) -> Path:
        return CacheLayout(self.root).stage(stage, key or self.keys[stage])

    def get(
        self,
        stage: str,
        load: Callable[[Path], T],
        make: Callable[[], T],
        save: Callable[[T, Path], None] = lambda value, folder: value.save(folder),  # type: ignore[attr-defined]
    ) -> T:
        """The cached artifact of ``stage``, else ``make()``'s, saved for next time."""
        folder = self.folder(stage)
        if folder.is_dir():
            try:
                value = seal.read(folder, load)
            except seal.Damaged as damage:
                self.progress.message(
                    f"{stage}: the cached copy is damaged ({damage}): discarded, recomputing"
                    f" ({folder})"
                )
                seal.discard(folder)
            else:
                self.progress.message(f"{stage}: cached ({folder})")
                return value
        value = make()
        self.put(stage, value, save)
        return value

    def put(
        self,
        stage: str,
        value: T,
        save: Callable[[T, Path], None],
        *,
        key: str | None = None,
        parts: dict[str, Any] | None = None,
    ) -> None:
        """Save ``value`` as ``stage``'s artifact (under ``key``, default: the stage's key)."""
        folder = self.folder(stage, key)
        with atomic_dir(folder) as tmp:
            save(value, tmp)
            atomic_write_json(tmp / "inputs.json", parts or self.keys.parts[stage])
        seal.seal(folder)
        self.ran.append(stage)


def open_sources(spec: ComputedAtlasSpec, env: ComputeEnvironment) -> Sources:
    """Load the spec's model on the environment's device, open its data set, draw its sample
    list."""
    from generator.data.sampling import sample_indices

    model = env.open_model(spec.model)
    try:
        model.layer(spec.layer)  # an unknown layer fails here, listing the valid ones
    except UnknownNameError as err:  # named where the spec asks for it
        err.where = f"{spec.where} ([atlas.{spec.id}] layer of model {spec.model!r})"
        err.args = (err.message(),)
        raise
    source, resize = env.open_data(spec.dataset)
    indices = sample_indices(len(source), spec.samples, spec.seed)
    if len(indices) < spec.samples:
        raise AtlasError(
            f"the data set has {len(source)} images, fewer than the {spec.samples} asked for",
            where=f"{spec.where} ([atlas.{spec.id}] samples)",
            expected=f"samples <= {len(source)}",
            got=str(spec.samples),
            fix=f"set samples = {len(source)} or fewer, or use more `positions` per image",
        )
    return Sources(
        model=model, source=source, indices=indices, resize=resize, device=env.device.type
    )


def collect_activations(
    specs: Sequence[ComputedAtlasSpec],
    sources: Sources,
    *,
    cache_dir: Path,
    device: torch.device,
    progress: Progress,
    batch_size: int = 64,
    workers: int = 0,
    chunk_images: int | None = None,
    cluster: ClusterPlan | None = None,
) -> dict[str, Activations]:
    """The activations of each spec's layer, collecting every uncached layer in ONE pass.

    The specs must share model, data and collection options (their layers may differ). With
    ``cluster``, the chunks are computed on Ray workers (:mod:`generator.cluster.collect`):
    the image source travels to them inside the batch function, through Ray's object store.
    """
    import torch

    from generator.data.loader import iterate_batches

    cache = StageCache(cache_dir, progress)
    first = specs[0]
    parts = collection_parts(first, sources)
    if any(collection_parts(s, sources) != parts for s in specs):
        raise ValueError("collect_activations: the specs differ in model, data or options")
    layers = sorted({s.layer for s in specs})
    found: dict[str, Activations] = {}
    for layer in layers:
        folder = CacheLayout(cache_dir).stage("activations", activations_key(parts, layer))
        if folder.is_dir():
            try:
                found[layer] = seal.read(folder, Activations.load)
            except seal.Damaged as damage:
                progress.message(
                    f"activations {layer}: the cached copy is damaged ({damage}): discarded,"
                    f" recollecting ({folder})"
                )
                seal.discard(folder)
    missing = [layer for layer in layers if layer not in found]
    if not missing:
        return found
    run_key = collection_run_key(parts, missing)
    run_dir = CacheLayout(cache_dir).chunks(run_key)
    batches = functools.partial(
        iterate_batches,
        sources.source,
        size=sources.model.input_size,
        # A worker's images go to its own GPU (Ray numbers it cuda:0 there), or stay on its CPU.
        device=device if cluster is None else torch.device(device.type),
        resize=sources.resize,
        batch_size=batch_size,
        workers=workers,
    )
    per_chunk = chunk_images or batch_size * max(1, -(-CHUNK_IMAGES // batch_size))
    collected = collect(
        sources.model,
        batches,
        sources.indices,
        layers=missing,
        run_dir=run_dir,
        run_key=run_key,
        device=device,
        sampling=first.sampling(),
        chunk_images=per_chunk,
        progress=progress,
        cluster=cluster,
    )
    for layer, acts in collected.items():
        bad = acts.nonfinite_rows()
        if bad:  # never cached: the next run collects again, with the weights mended
            raise AtlasError(
                f"{bad:,} of {acts.count:,} samples of {layer} have NaN or infinite activations"
                " or attributions: the model computes no numbers there",
                where=first.where,
                got=f"model {first.model!r}",
                fix=f"check the weights of model {first.model!r} (a damaged, mismatched or"
                " diverged state dict gives NaN) and its [models] entry; nothing was cached",
            )
        layer_parts = activations_parts(parts, layer)
        meta = {"model": sources.model.identity(), "data": sources.source.identity(), **layer_parts}
        acts = dataclasses.replace(acts, meta=meta)
        key = activations_key(parts, layer)
        cache.put(
            "activations",
            acts,
            lambda a, folder: a.save(folder, float16=first.float16),
            key=key,
            parts=layer_parts,
        )
        found[layer] = Activations.load(CacheLayout(cache_dir).stage("activations", key))
    shutil.rmtree(run_dir, ignore_errors=True)
    return found
