"""Publish an atlas bundle as ``site/atlases/<id>/``: cached pyramid + cells + viewer.json.

Cutting a pyramid is the slow part (seconds per atlas); everything else is small files. The
pyramid is cached under ``<cache>/tiles/<key>/`` (:func:`generator.keys.pyramid_key`: the
level images' bytes, their grids, the tile settings, the background, the libvips version and
:data:`generator.keys.TILES_VERSION`) and published by hard links (copies across file
systems), so an unchanged atlas costs one descriptor check and a few thousand ``link()`` calls per build.
Published tiles are never modified in place: a hard-linked tile edited in ``site/`` would
edit the cache too.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from generator import seal
from generator.bundle import AtlasBundle, Level
from generator.cache import CacheLayout, atomic_dir, atomic_write_json
from generator.errors import ContentError
from generator.keys import pyramid_key
from generator.tiles.dzi import check_dzi
from generator.tiles.pyramid import LevelSpan, TileSettings, cut_pyramid, plan_spans
from generator.tiles.source import parse_colour

#: The cache entry's own record (spans, fallback size); not published.
_RECORD = "pyramid.json"


@dataclass(frozen=True)
class PublishedAtlas:
    """A published atlas folder.

    Attributes:
        id: the atlas id.
        folder: ``site/atlases/<id>/`` (or wherever ``dest`` was).
        manifest: the content of its ``viewer.json``.
        files, bytes: what the folder adds to the site (hard-linked tiles counted in full:
            they are deployed in full).
    """

    id: str
    folder: Path
    manifest: dict[str, Any]
    files: int
    bytes: int


def publish_atlas(
    bundle: AtlasBundle, dest: Path, settings: TileSettings, cache_dir: Path
) -> PublishedAtlas:
    """Write ``dest/``: ``viewer.json``, ``atlas.dzi``, ``atlas_files/``, ``cells-<G>.json``
    per level and ``fallback.jpg`` (and the viewer data folders ``bundle.info["viewer"]``
    names: ``examples-<G>/``, ``heatmap-<G>/``, see :mod:`generator.bundle.viewerdata`), replacing
    any previous ``dest`` in one rename.

    Everything is checked before anything is written: the levels' sizes (semantic zoom needs
    sides halving coarse to fine, see :func:`generator.tiles.pyramid.plan_spans`), the level
    images and the cells documents. A pyramid cached under ``cache_dir/tiles/`` is reused (not
    recut) when its descriptor's tiles are all present.

    Raises:
        ConfigError: levels whose sides are not the finest side over distinct powers of two;
            a background that is not a hex colour.
        ContentError: a missing, unreadable or wrongly sized level image, a cells document
            that is missing, not JSON or for another grid, a viewer data folder that is
            missing or for a grid the bundle lacks.
    """
    dest, cache_dir = Path(dest), Path(cache_dir)
    where = str(bundle.root / "bundle.json")
    background = parse_colour(bundle.background, f"{where} background")
    spans = plan_spans(
        [(lv.grid, lv.cell_px, lv.side_px, lv.side_px) for lv in bundle.levels], where
    )
    images = [bundle.root / level.image for level in bundle.levels]
    for image in images:
        if not image.is_file():
            raise ContentError(
                "atlas bundle is missing a level image",
                where=str(image),
                fix="recompute the atlas (`atlas compute <id>`) or rebuild",
            )
    cells = [_cells_bytes(bundle, level) for level in bundle.levels]
    blocks = [cells_blocks(data) for data in cells]
    extras = viewer_extras(bundle)

    entry = _cached_pyramid(images, spans, settings, background, cache_dir)
    record = json.loads((entry / _RECORD).read_text())
    facts = [  # no samples: a precomputed image (counts unknown)
        {
            **({"samples": samples} if samples else {}),
            **({"cells_block": CELLS_BLOCK} if parts else {}),
        }
        for samples, parts in blocks
    ]
    manifest = viewer_manifest(bundle, spans, settings, tuple(record["fallback"]), facts)
    with atomic_dir(dest) as tmp:
        link_tree(entry, tmp, skip=(_RECORD,))
        for span, data, (_, parts) in zip(spans, cells, blocks, strict=True):
            (tmp / f"cells-{span.grid}.json").write_bytes(data)
            for name, block in parts.items():
                (tmp / f"cells-{span.grid}" / name).parent.mkdir(exist_ok=True)
                (tmp / f"cells-{span.grid}" / name).write_bytes(block)
        for kinds in extras.values():
            for description in kinds.values():
                link_tree(bundle.root / description["folder"], tmp / description["folder"])
        atomic_write_json(tmp / "viewer.json", manifest)
    files, size = tree_stats(dest)
    return PublishedAtlas(id=bundle.id, folder=dest, manifest=manifest, files=files, bytes=size)


def viewer_manifest(
    bundle: AtlasBundle,
    spans: list[LevelSpan],
    settings: TileSettings,
    fallback_size: tuple[int, int],
    level_facts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``viewer.json`` document (see docs/ARCHITECTURE.md, "A published atlas").

    ``level_facts[i]`` is merged into level i (``samples``, ``cells_block``). A level with
    viewer data gets ``examples`` / ``heatmap`` (the descriptions :mod:`generator.bundle.viewerdata`
    returned); ``info`` drops the ``viewer`` entry they came from.
    """
    fine = spans[-1]
    extras = viewer_extras(bundle)
    info = {key: value for key, value in bundle.info.items() if key != "viewer"}
    return {
        "id": bundle.id,
        "title": bundle.title,
        "kind": bundle.kind,
        "dzi": "atlas.dzi",
        "width": fine.width,
        "height": fine.height,
        "tile_size": settings.tile_size,
        "overlap": settings.overlap,
        "format": settings.format,
        "background": bundle.background,
        "fallback": "fallback.jpg",
        "fallback_width": fallback_size[0],
        "fallback_height": fallback_size[1],
        "levels": [
            {
                "grid": span.grid,
                "cell_px": span.cell_px,
                "cells": f"cells-{span.grid}.json",
                "scale": span.scale,
                "dzi_min_level": span.dzi_min_level,
                "dzi_max_level": span.dzi_max_level,
                **(level_facts[i] if level_facts else {}),
                **extras.get(span.grid, {}),
            }
            for i, span in enumerate(spans)
        ],
        "labels": list(bundle.labels),
        "info": info,
    }


#: Description keys copied into viewer.json (sizes and counts stay in the bundle).
_VIEWER_KEYS = {
    "examples": ("folder", "format", "thumb", "per_cell", "block"),
    "heatmap": ("folder", "format", "classes", "chunk", "cells"),
}


def viewer_extras(bundle: AtlasBundle) -> dict[int, dict[str, dict[str, Any]]]:
    """``{grid: {"examples": description, "heatmap": description}}`` from
    ``bundle.info["viewer"]["levels"]``, checked against the bundle's folder."""
    from generator.bundle.viewerdata import examples_folder, heatmap_folder

    names = {"examples": examples_folder, "heatmap": heatmap_folder}
    where = str(bundle.root / "bundle.json")
    fix = "recompute the atlas (`atlas compute <id>`)"
    levels = (bundle.info.get("viewer") or {}).get("levels") or {}
    grids = set(bundle.grids)
    extras: dict[int, dict[str, dict[str, Any]]] = {}
    for key, kinds in levels.items():
        grid = int(key) if str(key).isdigit() else -1
        if grid not in grids or not isinstance(kinds, dict):
            raise ContentError(
                "viewer data is for a grid the bundle lacks",
                where=f"{where} info.viewer.levels",
                expected=f"one of {sorted(grids)}",
                got=repr(key),
                fix=fix,
            )
        for kind, description in kinds.items():
            folder = names[kind](grid) if kind in names else ""
            ok = isinstance(description, dict) and description.get("folder") == folder
            if not folder or not ok or not (bundle.root / folder / "index.json").is_file():
                raise ContentError(
                    f"viewer data {kind!r} of grid {grid} is missing or misnamed",
                    where=str(bundle.root / (folder or kind)),
                    expected=f"a folder {folder or '(examples or heatmap)'} with index.json",
                    fix=fix,
                )
            picked = {k: description[k] for k in _VIEWER_KEYS[kind] if k in description}
            extras.setdefault(grid, {})[kind] = picked
    return extras


def link_tree(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    """Recreate ``src``'s files under ``dst`` as hard links, or copies where links fail
    (another file system, no permission); ``skip`` names top-level files to leave out.

    Plain ``os`` string paths: pathlib costs more than the ``link()`` calls themselves.
    """
    use_links = True
    root = os.fspath(src)
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        target_folder = os.path.join(dst, os.path.relpath(folder, root))
        os.makedirs(target_folder, exist_ok=True)
        for name in sorted(names):
            if folder == root and name in skip:
                continue
            source, target = os.path.join(folder, name), os.path.join(target_folder, name)
            if use_links:
                try:
                    os.link(source, target)
                    continue
                except OSError:
                    use_links = False
            shutil.copyfile(source, target)


def tree_stats(folder: Path) -> tuple[int, int]:
    """``(files, bytes)`` under ``folder``."""
    files = size = 0
    pending = [os.fspath(folder)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    files += 1
                    size += entry.stat(follow_symlinks=False).st_size
    return files, size


def _cached_pyramid(
    images: list[Path],
    spans: list[LevelSpan],
    settings: TileSettings,
    background: tuple[int, int, int],
    cache_dir: Path,
) -> Path:
    """The cache entry holding this pyramid, cut now if absent or damaged."""
    entry = CacheLayout(cache_dir).pyramid(pyramid_key(images, spans, settings, background))
    intact = (
        (entry / _RECORD).is_file()
        and (entry / "fallback.jpg").is_file()
        and (entry / "atlas.dzi").is_file()
        and not check_dzi(entry / "atlas.dzi")
    )
    damage = seal.check(entry) if intact else None
    if intact and damage is None:
        return entry
    if damage is not None:
        print(f"tiles: the cached pyramid is damaged ({damage}): discarded, cutting it again"
              f" ({entry})", file=sys.stderr)  # fmt: skip
        seal.discard(entry)
    with atomic_dir(entry) as tmp:
        fallback = cut_pyramid(images, spans, settings, background, tmp)
        missing = check_dzi(tmp / "atlas.dzi")
        if missing:  # libvips and dzi_levels disagree: never publish a pyramid with holes
            raise RuntimeError(f"cut pyramid lacks {len(missing)} tiles, e.g. {missing[0]}")
        record = {"spans": [asdict(s) for s in spans], "fallback": list(fallback)}
        atomic_write_json(tmp / _RECORD, record)
    seal.seal(entry)
    return entry


#: A cells document larger than this many bytes is also published in blocks of
#: :data:`CELLS_BLOCK` x :data:`CELLS_BLOCK` cells (``cells-<G>/<bx>_<by>.json``), so the viewer
#: loads the metadata of what is on screen: a 160 x 160 grid's document with five classes per
#: cell is ~1.5 MB (~580 KB gzip); one block of it ~60 KB.
CELLS_SPLIT_BYTES = 131_072

#: Cells per side of a metadata block: a screen at a fine grid (icons 40..80 px) shows at most
#: ~32 x 23 cells, i.e. touches at most four blocks.
CELLS_BLOCK = 32


def cells_blocks(data: bytes) -> tuple[int, dict[str, bytes]]:
    """``(samples, {"<bx>_<by>.json": bytes})`` of a checked cells document's bytes.

    ``samples`` is the document's ``samples`` (the total the compose stage recorded) or else
    the sum of its counts: the viewer's density control divides it by G^2. Blocks are made
    (every block of the grid, empty ones too, so the viewer never asks for a missing file)
    only when the document is larger than :data:`CELLS_SPLIT_BYTES`; each is the document with
    only its cells.
    """
    doc = json.loads(data)
    rows = doc.get("cells") or []
    samples = doc.get("samples")
    if not isinstance(samples, int):
        samples = sum(int(row[2]) for row in rows)
    if len(data) <= CELLS_SPLIT_BYTES:
        return samples, {}
    grid = int(doc["grid"])
    side = -(-grid // CELLS_BLOCK)
    grouped: dict[tuple[int, int], list[Any]] = {
        (bx, by): [] for bx in range(side) for by in range(side)
    }
    for row in rows:
        grouped[(int(row[0]) // CELLS_BLOCK, int(row[1]) // CELLS_BLOCK)].append(row)
    head = {key: value for key, value in doc.items() if key != "cells"}
    files = {
        f"{bx}_{by}.json": json.dumps(
            {**head, "block": [bx, by], "cells": members}, separators=(",", ":")
        ).encode()
        for (bx, by), members in sorted(grouped.items())
    }
    return samples, files


def _cells_bytes(bundle: AtlasBundle, level: Level) -> bytes:
    """The bytes of ``level``'s cells document, checked to be JSON for this grid."""
    path = bundle.root / level.cells
    fix = "recompute the atlas (`atlas compute <id>`)"
    try:
        data = path.read_bytes()
        doc = json.loads(data)
    except FileNotFoundError as err:
        raise ContentError(
            "atlas bundle is missing a cells document", where=str(path), fix=fix
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ContentError(
            "cells document is not valid JSON", where=str(path), got=str(err), fix=fix
        ) from err
    got = (doc.get("grid"), doc.get("cell_px")) if isinstance(doc, dict) else None
    if got != (level.grid, level.cell_px):
        raise ContentError(
            "cells document is for another grid",
            where=str(path),
            expected=f"grid {level.grid}, cell_px {level.cell_px}",
            got=f"grid {got[0]}, cell_px {got[1]}" if got else type(doc).__name__,
            fix=fix,
        )
    return data
