"""From an atlas spec to its grids: collect -> attribute -> whiten -> lay out -> bin.

:func:`compute_grids` reads like the method (METHOD.md 1-4): sample images, collect activation
vectors at random positions with their class attributions, estimate the whitening matrix, lay
the vectors out with UMAP, then average them in grid cells at every requested resolution.

Every artifact is cached on disk under ``<cache_dir>/<stage>/<key>/``, ``key`` a digest of
everything that produced it (see :class:`StageKeys`): a second run with the same inputs loads
everything and computes nothing; changing, say, ``min_count`` recomputes only the grids. Each
cache folder also holds ``inputs.json``, the parts its key was made from. Collection in progress
lives in ``<cache_dir>/chunks/<run key>/`` (resumable, removed once the activations are saved).

Rendering the icons and composing the atlas image (:func:`compute_bundle`) build on the grids;
they live in :mod:`generator.atlas.render` and :mod:`generator.atlas.compose`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from generator.atlas.artifacts import ARTIFACT_FORMAT, Activations, Grid, Layout, Whitening
from generator.atlas.collect import COLLECT_VERSION, collect
from generator.atlas.grid import WHITEN_EPS, make_grid, whitening
from generator.atlas.layout import compute_layout
from generator.atlas.progress import Progress
from generator.atlas.spec import ComputedAtlasSpec
from generator.cache import atomic_dir, atomic_write_json, bytes_digest, digest
from generator.errors import AtlasError, SetupError

if TYPE_CHECKING:
    import torch

    from generator.bundle import AtlasBundle
    from generator.data.base import ImageSource
    from generator.models.base import AtlasModel

#: Version of each stage's computation: bump one when its results change, and only its
#: artifacts (and those downstream) are recomputed.
STAGE_VERSIONS = {"activations": COLLECT_VERSION, "whitening": 1, "layout": 1, "grid": 1}

#: Labels of logits that are not classes (Lucid's InceptionV1: index 0 "dummy" and
#: 1001..1007 "unused <i>", see generator.models.labels); never listed as a cell's top class.
_PLACEHOLDER_LABELS = ("dummy", "unused ")

T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """The model and images an atlas is computed from, and the identity of each."""

    model: AtlasModel
    source: ImageSource
    indices: np.ndarray  # int64 [n] the sample list (sorted source indices)
    resize: str  # how images are fitted to the model's input: "stretch" | "center-crop"

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
            "float16": spec.float16,
        }


@dataclass(frozen=True)
class StageKeys:
    """Cache keys of one atlas's artifacts, each with the parts it digests."""

    parts: dict[str, dict[str, Any]]

    def __getitem__(self, stage: str) -> str:
        return digest(self.parts[stage])

    @classmethod
    def of(cls, spec: ComputedAtlasSpec, sources: Sources) -> StageKeys:
        activations = {**sources.collection_parts(spec), "layer": spec.layer}
        act_key = digest(activations)
        layout = {
            "version": STAGE_VERSIONS["layout"],
            "activations": act_key,
            "params": spec.layout.as_dict(),
            "seed": spec.seed,
        }
        parts: dict[str, dict[str, Any]] = {
            "activations": activations,
            "whitening": {
                "version": STAGE_VERSIONS["whitening"],
                "activations": act_key,
                "eps": WHITEN_EPS,
            },
            "layout": layout,
        }
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
        return cls(parts)


@dataclass(frozen=True, eq=False)
class ComputedGrids(Mapping[int, Grid]):
    """The grids of an atlas by size (a read-only mapping), with what produced them.

    Attributes:
        spec: the atlas spec.
        grids: ``{G: Grid}``, coarse to fine.
        activations: the layer's samples (vectors, attributions, positions...).
        layout: their 2-D layout in [0, 1].
        whitening: the layer's whitening matrix (None when ``spec.whiten`` is false).
        labels: class name per logit of the model (the grids' top classes index these).
        cache_keys: cache key of each stage (``activations``, ``layout``, ``grid-<G>``...).
        ran: the stages computed by this call (empty when everything came from the cache).
    """

    spec: ComputedAtlasSpec
    grids: dict[int, Grid]
    activations: Activations
    layout: Layout
    whitening: Whitening | None
    labels: tuple[str, ...]
    cache_keys: dict[str, str] = field(default_factory=dict)
    ran: tuple[str, ...] = ()

    def __getitem__(self, size: int) -> Grid:
        return self.grids[size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.grids)

    def __len__(self) -> int:
        return len(self.grids)


class _Cache:
    """``<root>/<stage>/<key>/`` folders, written atomically; records which stages ran."""

    def __init__(self, root: Path, progress: Progress) -> None:
        self.root = Path(root)
        self.progress = progress
        self.ran: list[str] = []

    def get(
        self,
        stage: str,
        key: str,
        parts: dict[str, Any],
        load: Callable[[Path], T],
        make: Callable[[], T],
        save: Callable[[T, Path], None],
    ) -> T:
        folder = self.root / stage.split("-")[0] / key
        if folder.is_dir():
            try:
                value = load(folder)
            except AtlasError as err:
                self.progress.message(f"{stage}: cached copy unreadable, recomputing ({err.what})")
            else:
                self.progress.message(f"{stage}: cached ({folder})")
                return value
        value = make()
        with atomic_dir(folder) as tmp:
            save(value, tmp)
            atomic_write_json(tmp / "inputs.json", parts)
        self.ran.append(stage)
        return value


def open_sources(
    spec: ComputedAtlasSpec,
    *,
    model_tables: Mapping[str, Any],
    dataset_tables: Mapping[str, Any],
    cache_dir: Path,
    device: torch.device,
    base_dir: Path | None = None,
) -> Sources:
    """Load the spec's model on ``device``, open its data set, draw its sample list."""
    from generator.data.registry import BUILTINS, dataset_spec, open_dataset
    from generator.data.sampling import sample_indices
    from generator.models.registry import load_model
    from generator.models.spec import resolve_spec

    model_spec = resolve_spec(spec.model, dict(model_tables), base_dir=base_dir)
    model = load_model(model_spec, device=device)
    model.layer(spec.layer)  # an unknown layer fails here, listing the valid ones
    tables = dict(dataset_tables)
    if spec.dataset not in tables and spec.dataset not in BUILTINS:
        open_dataset(spec.dataset, tables=tables, cache_dir=cache_dir)  # raises, listing names
    data_spec = dataset_spec(spec.dataset, tables.get(spec.dataset))
    source = open_dataset(data_spec, tables=tables, cache_dir=cache_dir, base_dir=base_dir)
    indices = sample_indices(len(source), spec.samples, spec.seed)
    if len(indices) < spec.samples:
        raise AtlasError(
            f"the data set has {len(source)} images, fewer than the {spec.samples} asked for",
            where=f"{spec.where} ([atlas.{spec.id}] samples)",
            expected=f"samples <= {len(source)}",
            got=str(spec.samples),
            fix=f"set samples = {len(source)} or fewer, or use more `positions` per image",
        )
    return Sources(model=model, source=source, indices=indices, resize=data_spec.resize)


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

    cache = _Cache(cache_dir, progress)
    first = specs[0]
    parts = sources.collection_parts(first)
    if any(sources.collection_parts(s) != parts for s in specs):
        raise ValueError("collect_activations: the specs differ in model, data or options")
    layers = sorted({s.layer for s in specs})
    found: dict[str, Activations] = {}
    for layer in layers:
        folder = cache_dir / "activations" / digest({**parts, "layer": layer})
        if folder.is_dir():
            found[layer] = Activations.load(folder)
    missing = [layer for layer in layers if layer not in found]
    if not missing:
        return found
    run_key = digest({**parts, "layers": missing})
    run_dir = cache_dir / "chunks" / run_key
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
        positions=first.positions,
        seed=first.seed,
        attribution=first.attribution.enabled,
        smooth_maxpool=first.attribution.smooth_maxpool,
        float16=first.float16,
        chunk_images=per_chunk,
        progress=progress,
    )
    for layer, acts in collected.items():
        layer_parts = {**parts, "layer": layer}
        meta = {"model": sources.model.identity(), "data": sources.source.identity(), **layer_parts}
        acts = dataclasses.replace(acts, meta=meta)
        found[layer] = cache.get(
            "activations",
            digest(layer_parts),
            layer_parts,
            Activations.load,
            lambda acts=acts: acts,  # type: ignore[misc]
            lambda a, folder: a.save(folder, float16=first.float16),
        )
    shutil.rmtree(run_dir, ignore_errors=True)
    return found


def compute_grids(
    spec: ComputedAtlasSpec,
    *,
    model_tables: Mapping[str, Any],
    dataset_tables: Mapping[str, Any],
    cache_dir: str | Path,
    device: torch.device,
    progress: Progress | None = None,
    base_dir: Path | None = None,
    batch_size: int = 64,
    workers: int = 0,
    chunk_images: int | None = None,
) -> ComputedGrids:
    """Compute (or load from the cache) every grid of ``spec``, METHOD.md sections 1-4.

    Args:
        spec: a validated computed-atlas spec.
        model_tables, dataset_tables: atlas.toml's ``[models]`` and ``[datasets]`` tables.
        cache_dir: the project's cache folder (``[paths] cache``).
        device: where the model runs.
        progress: where progress and cache hits are reported (default: stderr).
        base_dir: the folder relative paths of those tables start from (atlas.toml's).
        batch_size, workers: image loading (results do not depend on them beyond float
            rounding).
        chunk_images: images per resumable chunk (default: about 2048, a multiple of
            ``batch_size``).
    """
    progress = progress or Progress()
    cache_dir = Path(cache_dir)
    sources = open_sources(
        spec,
        model_tables=model_tables,
        dataset_tables=dataset_tables,
        cache_dir=cache_dir,
        device=device,
        base_dir=base_dir,
    )
    keys = StageKeys.of(spec, sources)
    cache = _Cache(cache_dir, progress)
    if not (cache_dir / "activations" / keys["activations"]).is_dir():
        cache.ran.append("activations")

    # 1-2. Activation vectors at random positions, and their attribution to every class.
    activations = collect_activations(
        [spec],
        sources,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
        batch_size=batch_size,
        workers=workers,
        chunk_images=chunk_images,
    )[spec.layer]
    # 5 (for rendering). The whitening matrix of the layer's samples.
    white = None
    if spec.whiten:
        white = cache.get(
            "whitening",
            keys["whitening"],
            keys.parts["whitening"],
            Whitening.load,
            lambda: whitening(activations),
            lambda w, folder: w.save(folder),
        )
    # 3. A 2-D layout of the raw vectors, each axis normalized to [0, 1].
    layout = cache.get(
        "layout",
        keys["layout"],
        keys.parts["layout"],
        Layout.load,
        lambda: _timed(
            progress,
            "layout",
            lambda: compute_layout(activations.vectors, spec.layout, seed=spec.seed),
        ),
        lambda lay, folder: lay.save(folder),
    )
    # 4. Every grid from that one layout: cells, counts, mean activation and attribution.
    valid = _valid_classes(sources.model.labels, activations)
    grids = {
        size: cache.get(
            f"grid-{size}",
            keys[f"grid-{size}"],
            keys.parts[f"grid-{size}"],
            lambda folder, size=size: Grid.load(folder, size),  # type: ignore[misc]
            lambda size=size: make_grid(  # type: ignore[misc]
                activations,
                layout,
                size,
                min_count=spec.min_count,
                top_k=spec.top_classes,
                valid_classes=valid,
            ),
            lambda grid, folder: grid.save(folder),
        )
        for size in spec.grids
    }
    return ComputedGrids(
        spec=spec,
        grids=grids,
        activations=activations,
        layout=layout,
        whitening=white,
        labels=tuple(sources.model.labels),
        cache_keys={stage: keys[stage] for stage in keys.parts},
        ran=tuple(cache.ran),
    )


def _valid_classes(labels: Sequence[str], activations: Activations) -> np.ndarray | None:
    """``[K] bool``: logits that are real classes (placeholders excluded), None when unknown."""
    if activations.attributions is None or len(labels) != activations.attributions.shape[1]:
        return None
    return np.array([not label.startswith(_PLACEHOLDER_LABELS) for label in labels])


def _timed(progress: Progress, stage: str, make: Callable[[], T]) -> T:
    import time

    start = time.monotonic()
    progress.message(f"{stage}: computing...")
    value = make()
    progress.message(f"{stage}: done in {time.monotonic() - start:.1f}s")
    return value


def compute_bundle(
    spec: ComputedAtlasSpec, *, config: Any, progress: Progress | None = None
) -> AtlasBundle:
    """The publishable :class:`~generator.bundle.AtlasBundle` of a computed atlas.

    Grids come from :func:`compute_grids`; icons and the composed atlas image come from
    :mod:`generator.atlas.compose` (its ``compose_bundle(spec, grids, *, config, device,
    progress)``). Until that module exists this fails before any computation, saying so.
    """
    try:
        compose = importlib.import_module("generator.atlas.compose")
    except ImportError as err:
        raise SetupError(
            f"atlas {spec.id!r} is computed, but this version cannot render atlas icons yet",
            where=spec.where,
            expected="a precomputed atlas (image = ..., grid = ..., icon_size = ...)",
            fix=f"run `atlas compute {spec.id}` to compute its grids; publish an image atlas",
        ) from err
    device = resolve_device(str(config.compute.get("device", "auto")))
    grids = compute_grids(
        spec,
        model_tables=config.models,
        dataset_tables=config.datasets,
        cache_dir=config.paths.cache,
        device=device,
        progress=progress,
        base_dir=config.root,
    )
    bundle: AtlasBundle = compose.compose_bundle(
        spec, grids, config=config, device=device, progress=progress
    )
    return bundle


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SetupError(
            f"device {name!r} was asked for, but CUDA is not available here",
            where="[compute] device / --device",
            expected='"auto" or "cpu" on this machine',
            fix="use --device cpu (or auto)",
        )
    return device


def describe(grids: ComputedGrids) -> str:
    """A short summary of computed grids, for ``atlas compute``."""
    acts = grids.activations
    images = len(np.unique(acts.image_index))
    lines = [
        f"atlas {grids.spec.id}: {grids.spec.model} {acts.layer} ({acts.channels} channels), "
        f"{acts.count:,} samples from {images:,} images",
        f"  layout: {grids.layout.method} {json.dumps(grids.layout.params, sort_keys=True)}",
    ]
    for size, grid in grids.items():
        lines.append(
            f"  grid {size}x{size}: {grid.kept:,} cells kept (> {grid.min_count} samples), "
            f"{grid.dropped_samples:,} samples in dropped cells"
        )
    ran = ", ".join(grids.ran) if grids.ran else "nothing (all cached)"
    lines.append(f"  computed: {ran}")
    return "\n".join(lines)
