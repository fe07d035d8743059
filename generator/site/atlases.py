"""Atlas specs (``content/<publication>/atlases.toml``) -> bundles -> published pyramids.

Each ``[atlas.<id>]`` table declares one atlas; ids are unique across the site. A table with
``image`` is a *precomputed* atlas::

    [atlas.mixed4c]
    image = "images/mixed4c.jpg"   # relative to this atlases.toml
    grid = 20                      # cells per side
    icon_size = 80                 # px per cell side; the image is grid * icon_size px square
    title = "InceptionV1 mixed4c"  # optional (default: the id)
    background = "#ffffff"         # optional: colour of empty cells

A table without ``image`` is a *computed* atlas, handed to the compute engine through
:func:`computed_bundle` (the only place the site half touches it).

Bundles are cached under ``<cache>/bundle/`` (:class:`generator.cache.CacheLayout`) by a digest
of everything that produced them (:func:`generator.keys.image_bundle_key`), so a build whose
atlas images did not change neither reads nor re-cuts them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import seal
from generator.bundle import AtlasBundle
from generator.cache import CacheLayout, atomic_write_json, file_digest
from generator.checks import integer, text
from generator.config import Config
from generator.errors import ConfigError, ContentError, closest, shown, where_at
from generator.keys import cell_data_key, image_bundle_key
from generator.paths import confine
from generator.specs import AtlasEntry, SpecFile, read_atlas_entries

if TYPE_CHECKING:
    from generator.freeze.resolve import Results
    from generator.tiles import PublishedAtlas, TileSettings

#: Keys of a precomputed-image atlas table.
IMAGE_KEYS = {
    "image": "a path to the atlas image, relative to atlases.toml",
    "grid": "an integer number of cells per side (1 to 4096)",
    "icon_size": "an integer number of pixels per cell side (1 to 4096)",
    "title": "a non-empty string",
    "background": 'a CSS hex colour such as "#ffffff"',
}


@dataclass(frozen=True)
class AtlasSpec:
    """One ``[atlas.<id>]`` table.

    Attributes:
        id: the atlas id (used in Markdown and as ``site/atlases/<id>/``).
        source: the atlases.toml holding it; ``line``: the table's line there.
        image, grid, icon_size, title, background: a precomputed atlas (``image`` None when
            the atlas is computed).
        table: the raw table (what the compute engine parses for computed atlases).
    """

    id: str
    source: Path
    line: int | None
    title: str
    image: Path | None = None
    grid: int = 0
    icon_size: int = 0
    background: str = "#ffffff"
    table: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return where_at(self.source, self.line)


@dataclass(frozen=True)
class AtlasFacts:
    """What a page needs to know about an atlas to embed it.

    ``data`` is a digest of the bundle's cell data (cells documents, attribution and direction
    arrays): pages whose tour queries were answered from it are rebuilt when it changes.
    """

    id: str
    title: str
    width: int
    height: int
    data: str = ""

    @property
    def url(self) -> str:
        """The published folder, relative to the site root."""
        return f"atlases/{self.id}/"


def facts_of(bundle: AtlasBundle) -> AtlasFacts:
    side = bundle.finest.side_px
    return AtlasFacts(bundle.id, bundle.title, side, side, cell_data_key(bundle))


def load_specs(files: Sequence[SpecFile], root: Path) -> tuple[dict[str, AtlasSpec], list[str]]:
    """Every atlas spec of the publications' atlases.toml files
    (:func:`generator.specs.read_spec_files`), image paths confined to the content folder
    ``root``; returns (specs by id, warnings)."""
    entries, warnings = read_atlas_entries(files)
    specs: dict[str, AtlasSpec] = {}
    for entry in entries.values():
        if entry.is_image:
            specs[entry.id] = _image_spec(entry, warnings, root)
        else:
            title = str(entry.table.get("title", entry.id))
            specs[entry.id] = AtlasSpec(
                entry.id, entry.source, entry.line, title, table=entry.table
            )
    return specs, warnings


def _image_spec(entry: AtlasEntry, warnings: list[str], root: Path) -> AtlasSpec:
    atlas_id, table, path, line, where = (
        entry.id, entry.table, entry.source, entry.line, entry.where
    )  # fmt: skip

    for key in table:
        if key not in IMAGE_KEYS:
            guess = closest(key, IMAGE_KEYS)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            warnings.append(f"{where}: unknown key {shown(key)} in [atlas.{atlas_id}]{hint}")
    checks = {
        "image": text,
        "grid": integer(1, 4096),
        "icon_size": integer(1, 4096),
        "title": text,
        "background": _hex_colour,
    }
    values: dict[str, Any] = {"title": atlas_id, "background": "#ffffff"}
    problems: list[str] = []
    for key, check in checks.items():
        if key not in table and key in values:
            continue
        try:
            values[key] = check(table.get(key))
        except ValueError:
            problems.append(key)
    if problems:
        raise _image_problems(atlas_id, where, table, problems)
    image, title, background = values["image"], values["title"], values["background"]
    image_path = confine(
        path.parent / image,
        root,
        where=f"{where} (key 'image')",
        what=f"the atlas image of [atlas.{atlas_id}]",
        written=image,
    )
    if not image_path.is_file():
        raise ContentError(
            f"the atlas image of [atlas.{atlas_id}] does not exist",
            where=f"{where} (key 'image')",
            expected=f"an image file at {image_path}",
            got=image,
            fix="fix the path (it is relative to atlases.toml) or add the image",
        )
    return AtlasSpec(
        atlas_id,
        path,
        line,
        title.strip(),
        image=image_path,
        grid=values["grid"],
        icon_size=values["icon_size"],
        background=background,
        table=dict(table),
    )


def _hex_colour(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", value):
        raise ValueError(IMAGE_KEYS["background"])
    return value


def _image_problems(
    atlas_id: str, where: str, table: dict[str, Any], keys: list[str]
) -> ConfigError:
    """Every bad key of an image atlas's table, in one error."""

    def got(key: str) -> str:
        return repr(table.get(key, "<missing>"))

    if len(keys) == 1:
        key = keys[0]
        return ConfigError(
            f"[atlas.{atlas_id}] {key} is invalid",
            where=f"{where} (key '{key}')",
            expected=IMAGE_KEYS[key],
            got=got(key),
            fix=f"set {key} to {IMAGE_KEYS[key]}",
        )
    lines = [f"{key} = {got(key)}: expected {IMAGE_KEYS[key]}" for key in keys]
    return ConfigError(
        f"{len(keys)} problems in [atlas.{atlas_id}]:\n" + "\n".join(f"  - {x}" for x in lines),
        where=where,
        fix="set each key as described",
    )


class FileDigests:
    """Content digests of input files, remembered by (size, mtime) so unchanged big images are
    not re-read on every build, and the bundle each image digest led to. JSON in the cache."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            doc = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            doc = {}
        self.files: dict[str, list[Any]] = dict(doc.get("files", {}))
        self.bundles: dict[str, str] = dict(doc.get("bundles", {}))

    def get(self, file: Path) -> str:
        stat = file.stat()
        known = self.files.get(str(file))
        if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            return str(known[2])
        value = file_digest(file)
        self.files[str(file)] = [stat.st_size, stat.st_mtime_ns, value]
        return value

    def save(self) -> None:
        atomic_write_json(self.path, {"files": self.files, "bundles": self.bundles}, indent=None)


def prepare_bundles(
    specs: dict[str, AtlasSpec], config: Config, digests: FileDigests, results: Results
) -> dict[str, AtlasBundle]:
    """A bundle per spec (from the cache when nothing changed, else the frozen folder, else
    computed; see :mod:`generator.freeze.resolve`); validates every atlas image."""
    bundles = {}
    for atlas_id, spec in specs.items():
        if spec.image is None:
            bundles[atlas_id] = computed_bundle(spec, config, results)
        else:
            bundles[atlas_id] = image_bundle(spec, config.paths.cache, digests)
    return bundles


def image_bundle(spec: AtlasSpec, cache: Path, digests: FileDigests) -> AtlasBundle:
    """A one-level bundle of a precomputed atlas image (made by :mod:`generator.tiles`).

    ``tiles.bundle_from_image`` caches bundles by the image's content; this remembers which
    bundle a (stat-checked) image digest led to, so an unchanged build neither hashes nor
    opens big images.
    """
    assert spec.image is not None
    key = image_bundle_key(spec, digests.get(spec.image))
    known = digests.bundles.get(key)
    if known and (Path(known) / "bundle.json").is_file():
        with contextlib.suppress(seal.Damaged):  # a damaged cache entry: made again below
            return seal.read(Path(known), AtlasBundle.load)
    from generator.tiles import bundle_from_image

    try:
        bundle = bundle_from_image(
            spec.image,
            atlas_id=spec.id,
            title=spec.title,
            grid=spec.grid,
            icon_size=spec.icon_size,
            work_dir=CacheLayout(cache).bundles(),
            background=spec.background,
        )
    except ContentError as err:
        # Name the spec that points at the image as well as the image itself.
        err.where = f"{spec.where} ([atlas.{spec.id}] image)" + (
            f" -> {err.where}" if err.where else ""
        )
        err.args = (err.message(),)
        raise
    digests.bundles[key] = str(bundle.root)
    return bundle


def computed_bundle(spec: AtlasSpec, config: Config, results: Results) -> AtlasBundle:
    """The bundle of a table without ``image`` (the site's only hook into the compute engine):
    computed, or from the cache or the frozen folder (:mod:`generator.freeze.resolve`)."""
    from generator.atlas.spec import parse_computed_atlas
    from generator.freeze.recipe import atlas_recipe
    from generator.freeze.resolve import Wanted
    from generator.freeze.store import FrozenStore

    computed = parse_computed_atlas(spec.id, spec.table, where=spec.where, config=config)
    store = FrozenStore(config.paths.freeze)
    frozen = store.atlas(spec.id)

    def compute() -> Path:
        from generator.atlas.bundle_stage import compute_bundle

        return compute_bundle(computed, config=config, frozen=frozen).root

    wanted = Wanted(
        kind="atlas",
        entry_id=spec.id,
        where=f"{spec.where} ([atlas.{spec.id}])",
        recipe=atlas_recipe(computed, config),
        frozen=frozen,
        frozen_at=store.atlas_folder(spec.id),
        folder_of=lambda key: CacheLayout(config.paths.cache).stage("bundle", key),
        marker="bundle.json",
    )
    folder = results.resolve(wanted, compute)
    return AtlasBundle.load(folder)


def publish_bundles(
    bundles: dict[str, AtlasBundle], dest_root: Path, settings: TileSettings, cache: Path
) -> dict[str, PublishedAtlas]:
    """Cut (or reuse from the cache) each bundle's pyramid into ``dest_root/<id>/``."""
    from generator.tiles import publish_atlas

    published = {}
    for atlas_id, bundle in bundles.items():
        published[atlas_id] = publish_atlas(bundle, dest_root / atlas_id, settings, cache)
    return published


def link_tree(src: Path, dest: Path) -> int:
    """Hard-link (copy across devices) every file of ``src`` into ``dest``; returns the count."""
    count = 0
    for folder, _dirs, files in os.walk(src):
        target = dest / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            link_or_copy(Path(folder) / name, target / name)
            count += 1
    return count


def link_or_copy(src: Path, dest: Path) -> None:
    """A hard link of ``src`` at ``dest``, or a copy when linking is not possible."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
