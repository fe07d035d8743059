"""Compose an atlas bundle: one image per grid level, and what the viewer shows beside it.

For every level (METHOD.md 4, docs/ARCHITECTURE.md "The atlas bundle"):

* ``level-<G>.png``: G x G cells of ``S`` px (S = icon size, the same at every level, so the
  sides halve from level to level when the grids double, as semantic zoom needs); the icon of
  cell ``(xbin, ybin)`` at column ``xbin``, row ``G - 1 - ybin`` (y points up); empty cells are
  the background. With ``density`` set, an icon's edge is
  ``S * min(1, sqrt(density * n / avg))`` (``n`` its cell's samples, ``avg = N / G^2``),
  resized with a Lanczos filter and centred in its cell (the article's density-scaled view;
  the viewer's slider does the same on screen, so the default is full-size icons);
* ``cells-<G>.json`` (:func:`generator.bundle.cells_document`): count, top classes with their
  mean attributions, position; plus ``samples`` (N, for the viewer's density control);
* ``examples-<G>/`` and ``heatmap-<G>/`` (:mod:`generator.bundle.viewerdata`): dataset examples and
  the int8 class heat maps, listed in ``bundle.json``'s ``info["viewer"]``;
* ``directions-<G>.npy`` and ``attributions-<G>.npy`` (:func:`generator.bundle.save_cell_array`):
  each cell's direction ``[M, C]`` and mean attributions ``[M, K]``, rows in the cells
  document's order, for the tour queries answered at build time (not published);
* ``bundle.json`` (:class:`generator.bundle.AtlasBundle`) with ``info`` as the caller gives it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator.atlas.artifacts import Grid
from generator.atlas.examples import DEFAULT_PER_CELL, DEFAULT_THUMB, LevelExamples
from generator.atlas.progress import Progress
from generator.bundle import AtlasBundle, Level, cells_document, save_cell_array
from generator.icons.store import Icons

#: Keys of ``[atlas.<id>.render]`` read here (render.py reads the others).
COMPOSE_KEYS = ("density", "examples", "example_px", "background")

#: The viewer's density slider range (METHOD.md 4).
DENSITY_RANGE = (0.2, 8.0)

#: zlib level of the level PNGs: they are cache files read once by the tiler, so speed wins
#: (level 1 writes a 12800 px level several times faster than the default 6).
PNG_COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class ComposeSettings:
    """How the atlas images and viewer data are made.

    Attributes:
        density: None for full-size icons, else the density factor of METHOD.md 4.
        examples: dataset examples per cell (0: none).
        example_px: thumbnail side of a dataset example.
        background: CSS hex colour of empty cells (and around density-scaled icons).
    """

    density: float | None = None
    examples: int = DEFAULT_PER_CELL
    example_px: int = DEFAULT_THUMB
    background: str = "#ffffff"


def compose_settings(
    table: Mapping[str, Any], problems: list[tuple[str, Any, str]]
) -> ComposeSettings:
    """The :class:`ComposeSettings` of a ``render`` table; bad values go to ``problems`` as
    ``(key, value, expected)`` and their defaults are used."""
    import re

    values: dict[str, Any] = {}
    low, high = DENSITY_RANGE
    checks = {
        "density": (
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and low <= v <= high,
            f"a number in [{low}, {high}] (omit it for full-size icons)",
        ),
        "examples": (lambda v: _int_in(v, 0, 255), "an integer in [0, 255]"),
        "example_px": (lambda v: _int_in(v, 8, 512), "an integer in [8, 512]"),
        "background": (
            lambda v: isinstance(v, str) and re.fullmatch(r"#([0-9a-fA-F]{3}){1,2}", v),
            'a hex colour such as "#ffffff"',
        ),
    }
    for key, (ok, expected) in checks.items():
        if key in table:
            if ok(table[key]):
                values[key] = float(table[key]) if key == "density" else table[key]
            else:
                problems.append((f"render.{key}", table[key], expected))
    return ComposeSettings(**values)


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` / ``#rgb`` -> ``(r, g, b)``."""
    text = colour.lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def icon_edges(counts: np.ndarray, n_samples: int, grid: int, cell_px: int, density: float) -> Any:
    """Edge ``[M] int64`` in ``[1, cell_px]`` of each density-scaled icon (METHOD.md 4):
    ``round(cell_px * min(1, sqrt(density * n / (N / G^2))))``."""
    average = max(n_samples, 1) / grid**2
    scale = np.minimum(1.0, np.sqrt(density * np.asarray(counts, np.float64) / average))
    return np.clip(np.rint(cell_px * scale), 1, cell_px).astype(np.int64)


def compose_level(
    icons: Icons,
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    edges: np.ndarray | None = None,
) -> np.ndarray:
    """The atlas image ``[G*S, G*S, 3] uint8`` of one level.

    Cell ``(xbin, ybin)`` covers rows ``[(G-1-ybin)*S, (G-ybin)*S)`` and columns
    ``[xbin*S, (xbin+1)*S)``; its icon fills it, or, with ``edges [M]``, an ``edge x edge``
    Lanczos-resized icon is centred in it (offset ``(S - edge) // 2``).
    """
    from PIL import Image

    g, s = icons.grid, icons.icon_size
    canvas = np.empty((g * s, g * s, 3), dtype=np.uint8)
    canvas[:] = background
    for m, (xbin, ybin) in enumerate(icons.cells.tolist()):
        icon = icons.images[m]
        top, left = (g - 1 - ybin) * s, xbin * s
        if edges is not None and int(edges[m]) < s:
            edge = int(edges[m])
            icon = np.asarray(Image.fromarray(icon).resize((edge, edge), Image.Resampling.LANCZOS))
            top, left = top + (s - edge) // 2, left + (s - edge) // 2
        canvas[top : top + icon.shape[0], left : left + icon.shape[1]] = icon
    return canvas


def canvas_cells(grid: Grid) -> np.ndarray:
    """``[M, 2] int64`` ``(col, row)`` of a grid's kept cells: ``(xbin, G - 1 - ybin)``."""
    cells = grid.cells.astype(np.int64)
    return np.stack([cells[:, 0], grid.size - 1 - cells[:, 1]], axis=1)


def level_cells_document(grid: Grid, cell_px: int) -> dict[str, Any]:
    """The ``cells-<G>.json`` document of one level (rows in the grid's cell order)."""
    rows = [
        (int(col), int(row), int(count), top.tolist(), values.tolist())
        for (col, row), count, top, values in zip(
            canvas_cells(grid).tolist(),
            grid.counts,
            grid.top_classes,
            grid.top_values,
            strict=True,
        )
    ]
    return cells_document(grid.size, cell_px, rows, extra={"samples": int(grid.n_samples)})


def write_bundle(
    root: Path,
    *,
    atlas_id: str,
    title: str,
    grids: Mapping[int, Grid],
    icons: Mapping[int, Icons],
    labels: Sequence[str],
    info: dict[str, Any],
    settings: ComposeSettings,
    examples: Mapping[int, LevelExamples] | None = None,
    kind: str = "layer",
    progress: Progress | None = None,
) -> AtlasBundle:
    """Write every level's image, cells document and viewer data, then ``bundle.json``, into
    ``root`` (an empty folder the caller renames into place); return the bundle.

    ``icons[G]`` must hold the cells of ``grids[G]`` in the same order; every level has the
    same icon size. ``examples`` (None: none) come from :mod:`generator.atlas.examples`.
    """
    from PIL import Image

    from generator.bundle.viewerdata import viewer_info, write_examples, write_heatmaps

    progress = progress or Progress()
    sizes = sorted(grids)
    cell_px = {icons[g].icon_size for g in sizes}
    if len(cell_px) != 1:
        raise ValueError(f"every level needs the same icon size, got {sorted(cell_px)}")
    px = cell_px.pop()
    background = hex_rgb(settings.background)
    levels, viewer = [], {}
    for size in sizes:
        grid, level_icons = grids[size], icons[size]
        if not np.array_equal(grid.cells, level_icons.cells):
            raise ValueError(f"icons of level {size} are not those of its grid's cells")
        edges = None
        if settings.density is not None:
            edges = icon_edges(grid.counts, grid.n_samples, size, px, settings.density)
        image = compose_level(level_icons, background=background, edges=edges)
        Image.fromarray(image).save(root / f"level-{size}.png", compress_level=PNG_COMPRESS_LEVEL)
        doc = level_cells_document(grid, px)
        (root / f"cells-{size}.json").write_text(_compact_json(doc))
        save_cell_array(root, "directions", size, grid.directions)
        if grid.attributions is not None:
            save_cell_array(root, "attributions", size, grid.attributions)
        kinds: dict[str, dict[str, Any]] = {}
        cells = canvas_cells(grid)
        if examples is not None and size in examples and grid.kept:
            ex = examples[size]
            kinds["examples"] = write_examples(root, size, cells, ex.thumbs, ex.counts)
        if grid.attributions is not None and grid.kept:
            kinds["heatmap"] = write_heatmaps(root, size, cells, grid.attributions, labels)
        if kinds:
            viewer[size] = kinds
        levels.append(Level(size, px, f"level-{size}.png", f"cells-{size}.json"))
        progress.message(f"compose: level {size}x{size}, {grid.kept:,} icons, {size * px:,} px")
    bundle = AtlasBundle(
        id=atlas_id,
        kind=kind,
        title=title,
        levels=tuple(levels),
        labels=tuple(labels),
        background=settings.background,
        info={**info, **({"viewer": viewer_info(viewer)} if viewer else {})},
        root=root,
    )
    bundle.save()
    return bundle


def _compact_json(doc: dict[str, Any]) -> str:
    import json

    return json.dumps(doc, separators=(",", ":")) + "\n"


def semantic_zoom_problem(grids: Sequence[int]) -> str | None:
    """Why these grid sizes cannot zoom semantically with one icon size (the tiler needs each
    level's side to be the finest side over a distinct power of two), or None when they can."""
    finest = max(grids)
    bad = [g for g in grids if finest % g or not math.log2(finest // g).is_integer()]
    if bad:
        return (
            f"grids {sorted(grids)}: {bad} do not divide {finest} by a power of two "
            "(e.g. use 20, 40, 80, 160)"
        )
    return None
