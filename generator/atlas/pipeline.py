"""From an atlas spec to its grids: collect -> attribute -> whiten -> lay out -> bin.

:func:`compute_grids` reads like the method (METHOD.md 1-4): sample images, collect activation
vectors at random positions with their class attributions, estimate the whitening matrix, lay
the vectors out with UMAP, then average them in grid cells at every requested resolution.

Every artifact is cached on disk under ``<cache_dir>/<stage>/<key>/``, ``key`` a digest of
everything that produced it (see :class:`generator.keys.StageKeys`): a second run with the same inputs loads
everything and computes nothing; changing, say, ``min_count`` recomputes only the grids. Each
cache folder also holds ``inputs.json``, the parts its key was made from. Collection in progress
lives in ``<cache_dir>/chunks/<run key>/`` (resumable, removed once the activations are saved).

Rendering the icons and composing the atlas images (:func:`generator.atlas.bundle_stage.compute_bundle`) build on the grids;
they live in :mod:`generator.icons.render_icons`, :mod:`generator.atlas.compose` and, top-down,
:mod:`generator.atlas.bundle_stage`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generator.atlas.artifacts import Activations, Grid, Layout, Whitening
from generator.atlas.classes import Selection, class_index, select, subset, valid_classes
from generator.atlas.compare import comparison_layout
from generator.atlas.environment import ComputeEnvironment
from generator.atlas.grid import make_grid, whitening
from generator.atlas.layout import compute_layout
from generator.atlas.progress import Progress
from generator.atlas.spec import ComputedAtlasSpec
from generator.atlas.stages import Sources, StageCache, collect_activations, open_sources
from generator.keys import StageKeys


@dataclass(frozen=True, eq=False)
class ComputedGrids(Mapping[int, Grid]):
    """The grids of an atlas by size (a read-only mapping), with what produced them.

    Attributes:
        spec: the atlas spec.
        grids: ``{G: Grid}``, coarse to fine.
        activations: the atlas's samples (vectors, attributions, positions...): every sample of
            the layer, or for a class atlas or comparison the selected ones.
        layout: their 2-D layout in [0, 1].
        whitening: the layer's whitening matrix, estimated on every sample of the layer (None
            when ``spec.whiten`` is false).
        labels: class name per logit of the model (the grids' top classes index these).
        cache_keys: cache key of each stage (``activations``, ``layout``, ``grid-<G>``...).
        ran: the stages computed by this call (empty when everything came from the cache).
        selection: how a class atlas's or comparison's samples were chosen (None for a layer).
    """

    spec: ComputedAtlasSpec
    grids: dict[int, Grid]
    activations: Activations
    layout: Layout
    whitening: Whitening | None
    labels: tuple[str, ...]
    cache_keys: dict[str, str] = field(default_factory=dict)
    ran: tuple[str, ...] = ()
    selection: Selection | None = None

    def __getitem__(self, size: int) -> Grid:
        return self.grids[size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.grids)

    def __len__(self) -> int:
        return len(self.grids)


def compute_grids(
    spec: ComputedAtlasSpec,
    env: ComputeEnvironment,
    *,
    progress: Progress | None = None,
    chunk_images: int | None = None,
    sources: Sources | None = None,
) -> ComputedGrids:
    """Compute (or load from the cache) every grid of ``spec``, METHOD.md sections 1-4 (and 6:
    a class atlas or comparison selects its samples by attribution before the layout).

    Args:
        spec: a validated computed-atlas spec.
        env: where and with what it runs (cache, device, model and data tables, image
            loading).
        progress: where progress and cache hits are reported (default: stderr).
        chunk_images: images per resumable chunk (default: about 2048, a multiple of the
            batch size).
        sources: the spec's model, images and sample list when the caller has opened them
            (:func:`generator.atlas.stages.open_sources`), else they are opened here.
    """
    progress = progress or Progress()
    cache_dir = env.cache
    sources = sources or open_sources(spec, env)
    keys = StageKeys.of(spec, sources)
    cache = StageCache(cache_dir, progress, keys)
    for name in spec.classes:  # an unknown class fails before anything is computed
        class_index(sources.model.labels, name, where=f"{spec.where} ([atlas.{spec.id}])")
    if not cache.folder("activations").is_dir():
        cache.ran.append("activations")

    # 1-2. Activation vectors at random positions, and their attribution to every class.
    activations = collect_activations(
        [spec],
        sources,
        cache_dir=cache_dir,
        device=env.device,
        progress=progress,
        batch_size=env.batch_size,
        workers=env.workers,
        chunk_images=chunk_images,
        cluster=env.cluster,
    )[spec.layer]

    # (5, for rendering.) The whitening matrix of the layer's samples.
    white = None
    if spec.whiten:
        white = cache.get("whitening", Whitening.load, lambda: whitening(activations))

    # (6.) A class atlas or comparison: the samples attributed to its classes (winners, top n).
    valid = _valid_classes(sources.model.labels, activations)
    selection = None
    if spec.kind != "layer":
        selection = select(
            activations,
            sources.model.labels,
            spec.classes,
            winners=spec.winners,
            top=spec.top,
            valid=valid,
            where=f"{spec.where} ([atlas.{spec.id}])",
        )
        activations = subset(activations, selection.indices)
        progress.message(
            f"{spec.kind} {' vs '.join(spec.classes)}: {activations.count:,} of "
            f"{selection.total:,} samples (winners {list(selection.winners)}, "
            f"top {list(selection.top)})"
        )

    # 3. A 2-D layout of the raw vectors, each axis normalized to [0, 1]; a comparison's x is
    #    the attribution difference of its two classes, its y a 1-D layout.
    def lay_out() -> Layout:
        method = spec.layout.method
        if keys.layout_backend.name != "umap-learn":
            method += f" ({keys.layout_backend.name} on {keys.layout_backend.device})"
        progress.message(f"layout: {method} of {activations.count:,} vectors...")
        start = time.monotonic()
        vectors = activations.vectors  # float16 if stored so, memory-mapped
        if spec.kind == "comparison" and selection is not None:
            assert activations.attributions is not None
            left, right = selection.class_indices
            layout = comparison_layout(
                np.asarray(vectors, dtype=np.float32),
                activations.attributions,
                left,
                right,
                spec.layout,
                seed=spec.seed,
            )
        else:
            layout = compute_layout(
                vectors, spec.layout, seed=spec.seed, backend=keys.layout_backend
            )
        progress.message(f"layout: done in {time.monotonic() - start:.1f}s")
        return layout

    layout = cache.get("layout", Layout.load, lay_out)

    # 4. Every grid from that one layout: cells, counts, mean activation and attribution.

    def grid_of(size: int) -> Grid:
        def make() -> Grid:
            return make_grid(
                activations,
                layout,
                size,
                min_count=spec.min_count,
                top_k=spec.top_classes,
                valid_classes=valid,
            )

        return cache.get(f"grid-{size}", lambda folder: Grid.load(folder, size), make)

    grids = {size: grid_of(size) for size in spec.grids}
    return ComputedGrids(
        spec=spec,
        grids=grids,
        activations=activations,
        layout=layout,
        whitening=white,
        labels=tuple(sources.model.labels),
        cache_keys={stage: keys[stage] for stage in keys.parts},
        ran=tuple(cache.ran),
        selection=selection,
    )


def compute_many(
    specs: Sequence[ComputedAtlasSpec],
    env: ComputeEnvironment,
    *,
    progress: Progress | None = None,
) -> list[ComputedGrids]:
    """:func:`compute_grids` for each spec; the uncached layers of atlases that share model,
    data and sampling options are first collected together, in one pass over the images."""
    progress = progress or Progress()
    groups: dict[tuple[Any, ...], list[ComputedAtlasSpec]] = {}
    for spec in specs:
        shared = (spec.model, spec.dataset, spec.samples, spec.positions, spec.seed)
        how = spec.attribution
        options = (how.enabled, how.smooth_maxpool, how.measure, spec.float16)
        groups.setdefault((*shared, *options), []).append(spec)
    for group in groups.values():
        if len({spec.layer for spec in group}) < 2:
            continue
        sources = open_sources(group[0], env)
        for spec in group:
            sources.model.layer(spec.layer)
        collect_activations(
            group,
            sources,
            cache_dir=env.cache,
            device=env.device,
            progress=progress,
            batch_size=env.batch_size,
            workers=env.workers,
            cluster=env.cluster,
        )
    return [compute_grids(spec, env, progress=progress) for spec in specs]


def _valid_classes(labels: Sequence[str], activations: Activations) -> np.ndarray | None:
    """``[K] bool``: logits that are real classes (placeholders excluded), None when unknown."""
    if activations.attributions is None or len(labels) != activations.attributions.shape[1]:
        return None
    return valid_classes(labels)


def describe(grids: ComputedGrids) -> str:
    """A short summary of computed grids, for ``atlas compute``."""
    acts = grids.activations
    images = len(np.unique(acts.image_index))
    lines = [
        f"atlas {grids.spec.id}: {grids.spec.model} {acts.layer} ({acts.channels} channels), "
        f"{acts.count:,} samples from {images:,} images",
        f"  layout: {grids.layout.method} {json.dumps(grids.layout.params, sort_keys=True)}",
    ]
    if grids.selection is not None:
        chosen = grids.selection
        lines.insert(
            1,
            f"  {grids.spec.kind} of {' vs '.join(chosen.classes)}: {len(chosen.indices):,} of "
            f"{chosen.total:,} samples (winners {list(chosen.winners)}, top {list(chosen.top)})",
        )
    for size, grid in grids.items():
        lines.append(
            f"  grid {size}x{size}: {grid.kept:,} cells kept (> {grid.min_count} samples), "
            f"{grid.dropped_samples:,} samples in dropped cells"
        )
    ran = ", ".join(grids.ran) if grids.ran else "nothing (all cached)"
    lines.append(f"  computed: {ran}")
    return "\n".join(lines)
