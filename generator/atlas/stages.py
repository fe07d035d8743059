"""The compute stages' plumbing: where inputs come from, cache keys, cached artifacts.

* :func:`open_sources`: the model (with its weights digest), the image source (with its identity)
  and the sample list of a spec;
* :class:`StageKeys`: the cache key of each artifact, a digest of everything that produced it
  (model identity incl. weights digest, data identity, sample list, layer, options, and the
  stage's version in :data:`STAGE_VERSIONS`);
* :class:`StageCache`: ``<cache>/<stage>/<key>/`` folders written atomically, with an
  ``inputs.json`` naming the key's parts;
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

from generator.atlas.artifacts import ARTIFACT_FORMAT, Activations
from generator.atlas.collect import COLLECT_VERSION, collect
from generator.atlas.grid import WHITEN_EPS
from generator.atlas.layout_backends import UMAP_LEARN, LayoutBackend, resolve_backend
from generator.atlas.progress import Progress
from generator.atlas.spec import ComputedAtlasSpec
from generator.cache import CacheLayout, atomic_dir, atomic_write_json, bytes_digest, digest
from generator.errors import AtlasError

if TYPE_CHECKING:
    import torch

    from generator.atlas.environment import ComputeEnvironment
    from generator.data.base import ImageSource
    from generator.models.base import AtlasModel

#: Version of each stage's computation: bump one when its results change, and only its
#: artifacts (and those downstream) are recomputed.
STAGE_VERSIONS = {
    "activations": COLLECT_VERSION,
    "whitening": 1,
    "selection": 1,
    "layout": 2,  # 2: UMAP on exact nearest neighbours (layout.exact_neighbors)
    "grid": 1,
}

T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """The model and images an atlas is computed from, and the identity of each."""

    model: AtlasModel
    source: ImageSource
    indices: np.ndarray  # int64 [n] the sample list (sorted source indices)
    resize: str  # how images are fitted to the model's input: "stretch" | "center-crop"
    device: str = "cpu"  # the device type the atlas is computed on (chooses the layout back end)

    def collection_parts(self, spec: ComputedAtlasSpec) -> dict[str, Any]:
        """Everything that determines collected activations, except the layer."""
        return {
            "format": ARTIFACT_FORMAT,
            "version": STAGE_VERSIONS["activations"],
            "model": self.model.identity(),
            "data": self.source.identity(),
            "samples": bytes_digest(self.indices.astype("<i8").tobytes()),
            "n_samples": len(self.indices),
            "image_size": self.model.input_size,
            "resize": self.resize,
            "positions": spec.positions,
            "seed": spec.seed,
            "attribution": spec.attribution.enabled,
            "smooth_maxpool": spec.attribution.smooth_maxpool,
            "attribution_measure": spec.attribution.measure,
            "float16": spec.float16,
        }


@dataclass(frozen=True)
class StageKeys:
    """Cache keys of one atlas's artifacts, each with the parts it digests, and the layout back
    end the layout's key was made for."""

    parts: dict[str, dict[str, Any]]
    layout_backend: LayoutBackend = UMAP_LEARN

    def __getitem__(self, stage: str) -> str:
        return digest(self.parts[stage])

    @classmethod
    def of(cls, spec: ComputedAtlasSpec, sources: Sources) -> StageKeys:
        activations = {**sources.collection_parts(spec), "layer": spec.layer}
        act_key = digest(activations)
        layout: dict[str, Any] = {
            "version": STAGE_VERSIONS["layout"],
            "activations": act_key,
            "params": spec.layout.as_dict(),
            "seed": spec.seed,
        }
        backend = UMAP_LEARN
        if spec.kind != "comparison":  # a comparison's y axis is 1-D: umap-learn or t-SNE
            backend = resolve_backend(
                spec.layout_backend,
                device=sources.device,
                n=len(sources.indices) * spec.positions,
                method=spec.layout.method,
                metric=spec.layout.metric,
            )
        layout.update(backend.key_parts())  # nothing for umap-learn: keys as before
        selection = None
        if spec.kind != "layer":  # a class atlas or comparison lays out its selected samples
            selection = {
                "version": STAGE_VERSIONS["selection"],
                "activations": act_key,
                "kind": spec.kind,
                "classes": list(spec.classes),
                "winners": spec.winners,
                "top": spec.top,
                "labels": digest(list(sources.model.labels)),
            }
            layout["selection"] = digest(selection)
        parts: dict[str, dict[str, Any]] = {
            "activations": activations,
            "whitening": {
                "version": STAGE_VERSIONS["whitening"],
                "activations": act_key,
                "eps": WHITEN_EPS,
            },
            "layout": layout,
        }
        if selection is not None:
            parts["selection"] = selection
        for size in spec.grids:
            parts[f"grid-{size}"] = {
                "version": STAGE_VERSIONS["grid"],
                "activations": act_key,
                "layout": digest(layout),
                "size": size,
                "min_count": spec.min_count,
                "top_classes": spec.top_classes,
                "labels": digest(list(sources.model.labels)),
            }
        return cls(parts, backend)


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
                value = load(folder)
            except AtlasError as err:
                self.progress.message(f"{stage}: cached copy unreadable, recomputing ({err.what})")
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
        with atomic_dir(self.folder(stage, key)) as tmp:
            save(value, tmp)
            atomic_write_json(tmp / "inputs.json", parts or self.keys.parts[stage])
        self.ran.append(stage)


def open_sources(spec: ComputedAtlasSpec, env: ComputeEnvironment) -> Sources:
    """Load the spec's model on the environment's device, open its data set, draw its sample
    list."""
    from generator.data.sampling import sample_indices

    model = env.open_model(spec.model)
    model.layer(spec.layer)  # an unknown layer fails here, listing the valid ones
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
) -> dict[str, Activations]:
    """The activations of each spec's layer, collecting every uncached layer in ONE pass.

    The specs must share model, data and collection options (their layers may differ).
    """
    from generator.data.loader import iterate_batches

    cache = StageCache(cache_dir, progress)
    first = specs[0]
    parts = sources.collection_parts(first)
    if any(sources.collection_parts(s) != parts for s in specs):
        raise ValueError("collect_activations: the specs differ in model, data or options")
    layers = sorted({s.layer for s in specs})
    found: dict[str, Activations] = {}
    for layer in layers:
        folder = CacheLayout(cache_dir).stage("activations", digest({**parts, "layer": layer}))
        if folder.is_dir():
            found[layer] = Activations.load(folder)
    missing = [layer for layer in layers if layer not in found]
    if not missing:
        return found
    run_key = digest({**parts, "layers": missing})
    run_dir = CacheLayout(cache_dir).chunks(run_key)
    batches = functools.partial(
        iterate_batches,
        sources.source,
        size=sources.model.input_size,
        device=device,
        resize=sources.resize,
        batch_size=batch_size,
        workers=workers,
    )
    per_chunk = chunk_images or batch_size * max(1, -(-2048 // batch_size))
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
    )
    for layer, acts in collected.items():
        layer_parts = {**parts, "layer": layer}
        meta = {"model": sources.model.identity(), "data": sources.source.identity(), **layer_parts}
        acts = dataclasses.replace(acts, meta=meta)
        cache.put(
            "activations",
            acts,
            lambda a, folder: a.save(folder, float16=first.float16),
            key=digest(layer_parts),
            parts=layer_parts,
        )
        found[layer] = acts
    shutil.rmtree(run_dir, ignore_errors=True)
    return found
