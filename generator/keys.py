"""Every cache key, assembled here and nowhere else, and the version of every stage.

A cached artifact lives under ``<cache>/<stage>/<key>/`` (:class:`generator.cache.CacheLayout`
names the folders); its key is the digest (:func:`generator.cache.digest`) of everything that
produced it. Each function below says what its key covers and, by what it leaves out, what
may change without recomputing. A key is never computed another way elsewhere: a module that
caches asks here.

When a stage's results change for the same inputs, bump its version below (never add a branch
that keeps old keys): its artifacts, and those downstream whose keys hold its key, are
recomputed; nothing upstream is. The versions are also part of a result's torch-free recipe
(:mod:`generator.freeze.recipe`).

Light by design: the site half imports this module; the compute stages' own constants are
imported inside the functions that use them, and torch never.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from generator.atlas.layout_backends import UMAP_LEARN, LayoutBackend
from generator.cache import bytes_digest, digest, file_digest

if TYPE_CHECKING:
    from generator.atlas.compose import ComposeSettings
    from generator.atlas.spec import ComputedAtlasSpec
    from generator.atlas.stages import Sources
    from generator.bundle import AtlasBundle
    from generator.config import Config
    from generator.data.base import ImageSource
    from generator.experiments.spec import ExperimentSpec
    from generator.icons.settings import RenderSettings
    from generator.models.base import AtlasModel
    from generator.site.atlases import AtlasFacts, AtlasSpec
    from generator.site.content import Page
    from generator.tiles.pyramid import LevelSpan, TileSettings

# -- versions: bump one when its stage's results change for the same inputs ------------------

#: Collection (activations and attributions) and its resumable chunks' format and sampling
#: rule (:mod:`generator.atlas.collect` checks it on a run's chunks too).
COLLECT_VERSION = 1

#: The grid pipeline's stages (:mod:`generator.atlas.pipeline`).
STAGE_VERSIONS = {
    "activations": COLLECT_VERSION,
    "whitening": 1,
    "selection": 1,
    "layout": 2,  # 2: UMAP on exact nearest neighbours (layout.exact_neighbors)
    "grid": 1,
}

#: What the icon render computes (:mod:`generator.icons.render_icons`).
RENDER_VERSION = 1

#: The receptive-field measurement (:mod:`generator.atlas.receptive`).
RECEPTIVE_VERSION = 1

#: What :mod:`generator.atlas.bundle_stage` adds to a computed bundle (info, file choices).
#: 2: per-level directions-/attributions-<G>.npy for the tour queries; 3: a layer atlas's key
#: holds its whole spec, as every kind's does (2 left out the class filters a layer atlas
#: cannot have).
BUNDLE_VERSION = 3

#: A patch experiment's computation and the files it writes (:mod:`generator.experiments.run`).
EXPERIMENT_VERSION = 1

#: Pyramids cut from the same inputs (:mod:`generator.tiles.publish`; invalidates every cached
#: pyramid and republishes every atlas).
TILES_VERSION = 1

#: The bundle :func:`generator.tiles.bundle_from_image` makes of an atlas image.
IMAGE_SOURCE_VERSION = 1

#: How the site makes bundles from images (:func:`generator.site.atlases.image_bundle`).
IMAGE_BUNDLE_RECIPE = 1


# -- the compute engine: one atlas's artifacts -------------------------------------------------


def collection_parts(spec: ComputedAtlasSpec, sources: Sources) -> dict[str, Any]:
    """Everything that determines collected activations except the layer: the artifact format
    and collection version, the model (with its weights digest), the data set's identity and
    the sample list, how images are fitted, positions, seed, attribution options and storage
    precision. Atlases that share these share one collection pass."""
    from generator.atlas.artifacts import ARTIFACT_FORMAT

    return {
        "format": ARTIFACT_FORMAT,
        "version": STAGE_VERSIONS["activations"],
        "model": sources.model.identity(),
        "data": sources.source.identity(),
        "samples": bytes_digest(sources.indices.astype("<i8").tobytes()),
        "n_samples": len(sources.indices),
        "image_size": sources.model.input_size,
        "resize": sources.resize,
        "positions": spec.positions,
        "seed": spec.seed,
        "attribution": spec.attribution.enabled,
        "smooth_maxpool": spec.attribution.smooth_maxpool,
        "attribution_measure": spec.attribution.measure,
        "float16": spec.float16,
    }


def activations_parts(collection: dict[str, Any], layer: str) -> dict[str, Any]:
    """The parts of one layer's activations key: :func:`collection_parts` and the layer."""
    return {**collection, "layer": layer}


def activations_key(collection: dict[str, Any], layer: str) -> str:
    """One layer's activations (``activations/<key>/``): :func:`activations_parts`."""
    return digest(activations_parts(collection, layer))


def collection_run_key(collection: dict[str, Any], layers: Sequence[str]) -> str:
    """The key of a collection in progress (``chunks/<key>/``): :func:`collection_parts` and
    the layers collected together in one pass."""
    return digest({**collection, "layers": list(layers)})


@dataclasses.dataclass(frozen=True)
class StageKeys:
    """Cache keys of one atlas's artifacts, each with the parts it digests (an artifact's
    ``inputs.json`` holds its parts), and the layout back end the layout's key was made for."""

    parts: dict[str, dict[str, Any]]
    layout_backend: LayoutBackend = UMAP_LEARN

    def __getitem__(self, stage: str) -> str:
        return digest(self.parts[stage])

    @classmethod
    def of(cls, spec: ComputedAtlasSpec, sources: Sources) -> StageKeys:
        """The grid pipeline's keys: ``activations`` (:func:`activations_parts`);
        ``whitening`` (those activations and the whitening's epsilon); ``selection`` (class
        atlases and comparisons only: the classes, the filters and the model's labels);
        ``layout`` (the activations, the selection if any, the layout parameters and seed, and
        the back end when it is not umap-learn);
        ``grid-<size>`` (the layout, the size, ``min_count``, ``top_classes`` and labels)."""
        from generator.atlas.grid import WHITEN_EPS
        from generator.atlas.layout_backends import resolve_backend

        collection = collection_parts(spec, sources)
        activations = activations_parts(collection, spec.layer)
        act_key = activations_key(collection, spec.layer)
        labels = digest(list(sources.model.labels))
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
                "labels": labels,
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
                "labels": labels,
            }
        return cls(parts, backend)


def bundle_keys(
    spec: ComputedAtlasSpec, sources: Sources, render: RenderSettings, looks: ComposeSettings
) -> StageKeys:
    """:meth:`StageKeys.of` plus ``icons`` (the model, layer, every grid's key, the whitening's
    key when whitened, the render settings that change pixels: not batch sizes), ``receptive``
    (the model, layer, how images are fitted, the first sampled images, the mass) and
    ``bundle`` (the whole spec but its file:line, every upstream key, the compose settings,
    the labels, and the bundle and viewer data formats)."""
    from generator.atlas.receptive import EFFECTIVE_MASS, RECEPTIVE_IMAGES
    from generator.bundle import BUNDLE_FORMAT
    from generator.bundle.viewerdata import VIEWERDATA_FORMAT
    from generator.icons.store import ICONS_FORMAT

    base = StageKeys.of(spec, sources)
    grid_keys = {str(size): base[f"grid-{size}"] for size in spec.grids}
    model = sources.model.identity()
    icons = {
        "version": RENDER_VERSION,
        "format": ICONS_FORMAT,
        "model": model,
        "layer": spec.layer,
        "grids": grid_keys,
        "whitening": base["whitening"] if spec.whiten else None,
        "settings": render.key_parts(),
    }
    receptive = {
        "version": RECEPTIVE_VERSION,
        "model": model,
        "layer": spec.layer,
        "input_size": sources.model.input_size,
        "resize": sources.resize,
        "data": sources.source.identity(),
        "images": sources.indices[:RECEPTIVE_IMAGES].tolist(),
        "mass": EFFECTIVE_MASS,
    }
    described = spec.described()
    bundle = {
        "version": BUNDLE_VERSION,
        "bundle_format": BUNDLE_FORMAT,
        "viewerdata": VIEWERDATA_FORMAT,
        "spec": described,
        "activations": base["activations"],
        "layout": base["layout"],
        "grids": grid_keys,
        "icons": digest(icons),
        "receptive": digest(receptive),
        "compose": dataclasses.asdict(looks),
        "labels": digest(list(sources.model.labels)),
    }
    return dataclasses.replace(
        base, parts={**base.parts, "icons": icons, "receptive": receptive, "bundle": bundle}
    )


def experiment_key(
    spec: ExperimentSpec,
    model: AtlasModel,
    source: ImageSource,
    resize: str,
    icons: Sequence[np.ndarray],
) -> str:
    """A patch experiment's results (``experiment/<key>/``): the model with its weights, the
    data set's identity, how images are fitted, every setting of the spec, and each pair's
    classes and icon pixels; not ``batch_size``, ``title``, ``where`` or the atlases its icons
    were cut from (their pixels are in the key)."""
    described = dataclasses.asdict(spec)
    for name in ("where", "title", "batch_size", "pairs", "atlases"):
        described.pop(name)
    pairs = [
        (p.source, p.target, list(icon.shape), icon_digest(icon))
        for p, icon in zip(spec.pairs, icons, strict=True)
    ]
    return digest(
        {
            "version": EXPERIMENT_VERSION,
            "model": model.identity(),
            "data": source.identity(),
            "resize": resize,
            "input_size": model.input_size,
            "spec": described,
            "pairs": pairs,
        }
    )


def icon_digest(icon: np.ndarray) -> str:
    """An experiment's icon by its pixels (``uint8 [h, w, 3]``, C order; the shape is a part of
    its own beside it)."""
    return bytes_digest(np.ascontiguousarray(icon).tobytes())


def recipe_key(recipe: dict[str, Any]) -> str:
    """A result's torch-free recipe (:mod:`generator.freeze.recipe`): what the cache's recipe
    index (``recipe/<key>.json``) and a frozen entry's manifest are keyed by."""
    return digest(recipe)


# -- publishing: image bundles and pyramids ----------------------------------------------------


def image_source_key(
    image: Path, atlas_id: str, title: str, grid: int, icon_size: int, background: str
) -> str:
    """The bundle made of an atlas image (``bundle/<id>-<key>/``): the image's bytes, the
    atlas's id, title, grid, icon size and background colour (case-insensitive)."""
    return digest(
        "bundle-from-image",
        IMAGE_SOURCE_VERSION,
        file_digest(image),
        atlas_id,
        title,
        grid,
        icon_size,
        background.lower(),
    )


def image_bundle_key(spec: AtlasSpec, image_digest: str) -> str:
    """Which bundle an image atlas's spec led to (remembered in the build's
    ``site/digests.json``, so an unchanged build neither hashes nor opens big images): the
    image's digest (stat-checked) and the spec's settings."""
    return digest(
        "image-bundle",
        IMAGE_BUNDLE_RECIPE,
        image_digest,
        spec.id,
        spec.title,
        spec.grid,
        spec.icon_size,
        spec.background,
    )


def pyramid_key(
    images: list[Path],
    spans: list[LevelSpan],
    settings: TileSettings,
    background: tuple[int, int, int],
) -> str:
    """A cut pyramid (``tiles/<key>/``): everything its bytes depend on: the level images'
    bytes, the level spans, the tile settings, the background, libvips' version."""
    import pyvips

    return digest(
        "tiles",
        TILES_VERSION,
        [pyvips.version(i) for i in range(3)],
        [file_digest(image) for image in images],
        [dataclasses.asdict(span) for span in spans],
        dataclasses.asdict(settings),
        background,
    )


# -- the incremental site build (site/state.json) ----------------------------------------------

#: The generator package (its code is part of the site's keys).
_PACKAGE = Path(__file__).resolve().parent


def published_atlas_key(bundle: AtlasBundle, config: Config) -> str:
    """What a published atlas folder depends on: the bundle's folder and its files (their
    content digests: :func:`generator.seal.content_digests`, read from the bundle's seal when
    the files are the ones sealed), the tile settings, and the code and library that cut and
    describe it (:func:`publishing_code_digest`)."""
    from generator.seal import content_digests

    names = [
        "bundle.json",
        *(lv.image for lv in bundle.levels),
        *(lv.cells for lv in bundle.levels),
    ]
    return digest(
        str(bundle.root),
        content_digests(bundle.root, names),
        dataclasses.asdict(config.tiles),
        publishing_code_digest(),
    )


@functools.cache
def publishing_code_digest() -> str:
    """What publishes an atlas folder besides its inputs: :data:`TILES_VERSION`, libvips'
    version and the code of ``generator/tiles/`` and ``generator/bundle/`` (the page key
    covers the site code)."""
    import pyvips

    files = [
        *sorted((_PACKAGE / "tiles").glob("*.py")),
        *sorted((_PACKAGE / "bundle").glob("*.py")),
    ]
    return digest(
        TILES_VERSION,
        [pyvips.version(i) for i in range(3)],
        [(p.name, bytes_digest(p.read_bytes())) for p in files],
    )


def cell_data_key(bundle: AtlasBundle) -> str:
    """An atlas's cell data as pages see it (:attr:`generator.site.atlases.AtlasFacts.data`):
    the bundle's folder and the content digests of its cells documents and cell arrays
    (:func:`generator.seal.content_digests`); pages whose tour queries were answered from
    them are rendered again when it changes."""
    from generator.bundle import CELL_ARRAYS
    from generator.seal import content_digests

    names = [level.cells for level in bundle.levels]
    names += [f"{kind}-{level.grid}.npy" for level in bundle.levels for kind in CELL_ARRAYS]
    return digest(str(bundle.root), content_digests(bundle.root, names))


def site_code_digest(template_dirs: Sequence[Path]) -> str:
    """The site code (``generator/site/*.py``, ``generator/config.py``) and every file of the
    template folders, static files included (a page holds the versioned URLs of the viewer's
    modules in its import map, an override's too): changing any re-renders every page."""
    files = [*sorted((_PACKAGE / "site").glob("*.py")), _PACKAGE / "config.py"]
    for folder in template_dirs:
        files.extend(sorted(p for p in folder.rglob("*") if p.is_file()))
    return digest([(str(p), bytes_digest(p.read_bytes())) for p in files])


def shared_page_key(
    code: str,
    config: Config,
    facts: Iterable[AtlasFacts],
    url_map: dict[str, str],
    static_urls: dict[str, str],
) -> str:
    """What every page depends on: the code and templates (:func:`site_code_digest`), the
    whole atlas.toml, every atlas's facts, every page's URL, the static files' URLs."""
    return digest(code, config.raw, [dataclasses.asdict(f) for f in facts], url_map, static_urls)


def bibliography_key(bib_files: Iterable[Path]) -> str:
    """A publication's bibliographies: the bytes of each ``.bib`` file, in order."""
    return digest([bytes_digest(path.read_bytes()) for path in bib_files])


def page_key(
    shared: str,
    page: Page,
    bibliography: str,
    navigation: dict[str, Any],
    experiments: list[Any] | None,
    missing: list[str] | None,
) -> str:
    """One page's HTML: :func:`shared_page_key`, the page's Markdown, its publication's
    :func:`bibliography_key`, its navigation, the experiment results its publication shows,
    and what a skipped publication lacks (its notice)."""
    return json_key(shared, page.text, bibliography, navigation, experiments, missing)


def articles_key(articles: list[dict[str, Any]]) -> str:
    """What stands for a publication's article list (titles, URLs, descriptions, dates,
    authors) in the keys of its pages' navigation: made once per publication per build."""
    return json_key(articles)


def json_key(*parts: Any) -> str:
    """A digest of JSON-able parts (as :func:`generator.cache.digest`, minus its float
    canonicalization: navigation and page texts hold none; several times faster)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return bytes_digest(text.encode())
