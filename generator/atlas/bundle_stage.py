"""From a computed-atlas spec to its publishable bundle: the whole compute chain, top-down.

:func:`compute_bundle` reads like the method (METHOD.md 1-5): sample activations and attribute
them to classes, lay them out, bin them into grids, render one icon per kept cell of every
grid, crop dataset examples, and compose the atlas images with the viewer's metadata. Every
artifact is cached under ``<cache>/<stage>/<key>/`` (``key``: a digest of everything that
produced it; see :mod:`generator.keys`), the bundle itself under
``<cache>/bundle/<key>/``: a second call with the same inputs opens the model and the data
set's sample list to compute the keys, finds the bundle, and computes nothing. An interrupted
render resumes where it stopped (:mod:`generator.icons.render_icons`).

``[compute]`` of atlas.toml: ``device`` (auto | cpu | cuda | cuda:N), ``threads`` (CPU threads
for torch; default torch's, i.e. one per core: on a machine shared with other busy processes,
1 can be several times faster than 2, bench/RESULTS.md "Atlas rendering"), ``batch_size`` and
``workers`` (image loading). ``[atlas.<id>.render]``: see :mod:`generator.icons.render_icons`
(preset, icon_size, steps, tries, batch_size, lr, cossim_pow, border, seed, autocast,
channels_last) and :mod:`generator.atlas.compose` (density, examples, example_px, background).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import seal
from generator.atlas.compose import (
    ComposeSettings,
    write_bundle,
)
from generator.atlas.environment import ComputeEnvironment
from generator.atlas.pipeline import ComputedGrids, compute_grids
from generator.atlas.progress import Progress
from generator.atlas.receptive import RECEPTIVE_IMAGES, ReceptiveField, receptive_field
from generator.atlas.spec import ComputedAtlasSpec, SpecProblems, check_render_table
from generator.atlas.stages import Sources, StageCache, open_sources
from generator.bundle import AtlasBundle
from generator.cache import CacheLayout, atomic_dir, atomic_write_json
from generator.errors import AtlasError
from generator.freeze.resolve import stale_message, take_frozen
from generator.icons.render_icons import render_icons
from generator.icons.settings import RenderSettings
from generator.icons.store import Icons, fidelity_summary, load_icons, save_icons
from generator.keys import bundle_keys

if TYPE_CHECKING:
    import torch

    from generator.config import Config
    from generator.freeze.store import FrozenEntry


def compute_bundle(
    spec: ComputedAtlasSpec,
    *,
    config: Config,
    progress: Progress | None = None,
    device: str | None = None,
    frozen: FrozenEntry | None = None,
) -> AtlasBundle:
    """The publishable :class:`AtlasBundle` of a computed atlas (cached; see the module doc).

    Args:
        spec: a validated spec (:func:`generator.atlas.spec.parse_computed_atlas`).
        config: the project's :class:`generator.config.Config` (paths, ``[compute]``,
            ``[models]``, ``[datasets]``).
        progress: where stages report (default: stderr).
        device: overrides ``[compute] device`` (``atlas compute --device``).
        frozen: the atlas's frozen entry (``atlas freeze``), taken instead of computing when
            it was computed under the same key (:mod:`generator.freeze.resolve`).

    Raises:
        SpecProblems: bad ``render`` keys or grids that cannot zoom semantically, before any
            computation.
    """
    progress = progress or Progress()
    render, looks = bundle_settings(spec)
    env = ComputeEnvironment.from_config(config, device=device)
    cache_dir, compute_device = env.cache, env.device
    with env.threads_capped():
        # 0. The model, the images and the sample list: the cache key of every artifact.
        sources = open_sources(spec, env)
        keys = bundle_keys(spec, sources, render, looks)
        cache = StageCache(cache_dir, progress, keys)
        folder = cache.folder("bundle")
        if (folder / "bundle.json").is_file():
            try:
                bundle = seal.read(folder, AtlasBundle.load)
            except seal.Damaged as damage:
                progress.message(
                    f"atlas {spec.id}: the cached bundle is damaged ({damage}): discarded,"
                    f" recomputing ({folder})"
                )
                seal.discard(folder)
            else:
                progress.message(f"atlas {spec.id}: cached bundle ({folder})")
                return bundle
        if frozen is not None and frozen.key == folder.name:
            take_frozen(frozen, folder, "atlas")
            progress.message(f"atlas {spec.id}: taken from the frozen folder ({frozen.folder})")
            return AtlasBundle.load(folder)
        if frozen is not None:
            progress.message(stale_message("atlas", spec.id, frozen, keys.parts["bundle"]))

        # 1-4. Activations and attributions, whitening, layout, grids (each cached).
        grids = compute_grids(spec, env, progress=progress, sources=sources)

        # 5. A feature visualization of every kept cell of every level (resumable per batch).
        render_run = CacheLayout(cache_dir).render_run(keys["icons"])

        def render_all() -> dict[int, Icons]:
            from generator.icons.lean import render_copy

            model, folded = render_copy(sources.model)
            if folded:
                progress.message(f"render: {folded} batch norms folded into their convolutions")
            return render_icons(
                model,
                spec.layer,
                grids.grids,
                whitening=None if grids.whitening is None else grids.whitening.matrix,
                settings=render,
                run_dir=render_run,
                key=keys["icons"],
                device=compute_device,
                progress=progress,
                cluster=env.cluster,
            )

        icons = cache.get(
            "icons",
            load_icons,
            render_all,
            lambda levels, tmp: save_icons(tmp, levels, {"settings": dataclasses.asdict(render)}),
        )
        shutil.rmtree(render_run, ignore_errors=True)

        # 6. Where the layer looks: the crop size of the dataset examples.
        field = cache.get(
            "receptive",
            lambda path: ReceptiveField.from_json(_read_json(path / "receptive.json")),
            lambda: measure_receptive_field(sources, spec.layer, compute_device),
            lambda value, tmp: atomic_write_json(tmp / "receptive.json", value.to_json()),
        )

        # 7. Compose: level images, cells, dataset examples, class heat maps, bundle.json.
        info = bundle_info(spec, sources, grids, icons, render, looks, field)
        with (
            atomic_dir(folder) as tmp,
            tempfile.TemporaryDirectory(
                prefix=".scratch-", suffix=".tmp", dir=cache_dir
            ) as scratch,
        ):
            examples = None
            if looks.examples:
                from generator.atlas.examples import example_thumbnails

                examples = example_thumbnails(
                    sources.source,
                    grids.activations,
                    grids.grids,
                    input_size=sources.model.input_size,
                    resize=sources.resize,
                    window=field.effective,
                    per_cell=looks.examples,
                    thumb=looks.example_px,
                    seed=spec.seed,
                    scratch=Path(scratch),
                    workers=env.workers,
                    progress=progress,
                    cluster=env.cluster,
                )
            write_bundle(
                tmp,
                atlas_id=spec.id,
                title=spec.title,
                grids=grids.grids,
                icons=icons,
                labels=grids.labels,
                info=info,
                settings=looks,
                examples=examples,
                kind=spec.kind,
                progress=progress,
            )
            atomic_write_json(tmp / "inputs.json", keys.parts["bundle"])
            del examples  # memory maps closed before the scratch folder goes
    seal.seal(folder)
    progress.message(f"atlas {spec.id}: bundle written ({folder})")
    return AtlasBundle.load(folder)


def bundle_settings(spec: ComputedAtlasSpec) -> tuple[RenderSettings, ComposeSettings]:
    """The render and compose settings of ``spec.render``; every problem (bad values, unknown
    keys, grids unfit for semantic zoom: :func:`generator.atlas.spec.check_render_table`) is
    raised at once as :class:`SpecProblems`."""
    problems: list[tuple[str, Any, str]] = []
    render, looks = check_render_table(
        dict(spec.render), seed=spec.seed, grids=spec.grids, problems=problems
    )
    if problems:
        raise SpecProblems(spec.id, spec.where, problems)
    return render, looks


def measure_receptive_field(sources: Sources, layer: str, device: torch.device) -> ReceptiveField:
    """:func:`generator.atlas.receptive.receptive_field` on the first images of the sample list,
    fitted to the model as collection fitted them."""
    import torch

    from generator.data.loader import iterate_batches

    batches = iterate_batches(
        sources.source,
        sources.indices[:RECEPTIVE_IMAGES],
        size=sources.model.input_size,
        device=device,
        resize=sources.resize,
        batch_size=RECEPTIVE_IMAGES,
        warn=False,
    )
    images = [batch.images for batch in batches]
    if not images:
        raise AtlasError("none of the first sampled images could be read", where=layer)
    return receptive_field(sources.model, layer, torch.cat(images))


def bundle_info(
    spec: ComputedAtlasSpec,
    sources: Sources,
    grids: ComputedGrids,
    icons: dict[int, Icons],
    render: RenderSettings,
    looks: ComposeSettings,
    field: ReceptiveField,
) -> dict[str, Any]:
    """``bundle.json``'s ``info``: what the atlas shows and how it was made."""
    import numpy as np

    acts = grids.activations
    every = np.concatenate([level.fidelity for level in icons.values()])
    return {
        "model": spec.model,
        "model_identity": sources.model.identity(),
        "layer": spec.layer,
        "channels": acts.channels,
        "dataset": spec.dataset,
        "images": len(np.unique(acts.image_index)),
        "samples": acts.count,
        "positions": spec.positions,
        "seed": spec.seed,
        "whitened": grids.whitening is not None,
        "layout": {"method": grids.layout.method, **grids.layout.params},
        "grids": {
            str(size): {"kept": grid.kept, "min_count": grid.min_count}
            for size, grid in grids.items()
        },
        "render": dataclasses.asdict(render),
        "fidelity": {
            "measure": "cosine(centre activation of the icon, cell direction)",
            "all": fidelity_summary(every),
            "levels": {str(g): fidelity_summary(level.fidelity) for g, level in icons.items()},
        },
        "receptive_field": field.to_json(),
        "examples": {"per_cell": looks.examples, "thumb": looks.example_px},
        "density": looks.density,
        **kind_info(spec, grids),
    }


#: The y axis of a comparison, as the viewer labels it ({method}: the 1-D layout's name).
COMPARISON_Y = "similar activations close together (1-D {method})"


def kind_info(spec: ComputedAtlasSpec, grids: ComputedGrids) -> dict[str, Any]:
    """What a class atlas or comparison adds to ``info``: ``class`` (a class atlas's class),
    ``classes`` and ``axes`` (a comparison: ``{"x": [left, right], "y": "..."}``, the viewer's
    axis labels) and ``selection`` (how many samples each filter kept)."""
    if grids.selection is None:
        return {}
    info: dict[str, Any] = {"selection": grids.selection.info()}
    if spec.kind == "class":
        info["class"] = spec.classes[0]
    else:
        info["classes"] = list(spec.classes)
        method = {"tsne": "t-SNE", "umap": "UMAP"}.get(spec.layout.method, spec.layout.method)
        info["axes"] = {"x": list(spec.classes), "y": COMPARISON_Y.format(method=method)}
    return info


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise AtlasError(f"cannot read {path.name} ({err})", where=str(path)) from err
