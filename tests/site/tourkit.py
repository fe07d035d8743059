"""Synthetic atlas bundles for the tour, layers and patch tests: cells with known top classes,
counts, attributions and directions, and level images whose icons are coloured by top class
(so a screenshot shows the regions a query should find)."""

from __future__ import annotations

import colorsys
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from generator.bundle import AtlasBundle, Level, cells_document, save_cell_array

#: A cell row: (col, row, count, top class indices).
CellRow = tuple[int, int, int, Sequence[int]]


def class_colour(k: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((k * 0.618) % 1.0, 0.55, 0.9)
    return (int(r * 255), int(g * 255), int(b * 255))


def make_bundle(
    root: Path,
    atlas_id: str,
    grids: Mapping[int, Sequence[CellRow]],
    labels: Sequence[str],
    *,
    cell_px: int = 16,
    attributions: Mapping[int, np.ndarray] | None = None,
    directions: Mapping[int, np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
    heatmaps: bool = False,
) -> AtlasBundle:
    """A bundle of the given levels (grids coarse to fine; sides halving for semantic zoom).

    ``grids[G]`` lists the occupied cells; each level's image is ``G * cell_px`` px square,
    icons flat squares coloured by their top class. ``heatmaps``: class heat maps (viewer data)
    from the attributions.
    """
    from generator.bundle.viewerdata import viewer_info, write_heatmaps

    root.mkdir(parents=True, exist_ok=True)
    levels = []
    viewer: dict[int, dict[str, Any]] = {}
    for grid in sorted(grids):
        side = grid * cell_px
        image = Image.new("RGB", (side, side), "white")
        draw = ImageDraw.Draw(image)
        rows = []
        for col, row, count, top in grids[grid]:
            colour = class_colour(top[0]) if top else (120, 120, 120)
            x, y = col * cell_px, row * cell_px
            draw.rectangle([x + 1, y + 1, x + cell_px - 2, y + cell_px - 2], fill=colour)
            rows.append(
                (col, row, count, list(top), [round(1.0 / (i + 1), 3) for i in range(len(top))])
            )
        image.save(root / f"level-{grid}.png")
        doc = cells_document(grid, cell_px, rows, extra={"samples": sum(r[2] for r in rows)})
        (root / f"cells-{grid}.json").write_text(json.dumps(doc))
        levels.append(Level(grid, cell_px, f"level-{grid}.png", f"cells-{grid}.json"))
        if attributions and grid in attributions:
            save_cell_array(root, "attributions", grid, attributions[grid])
            if heatmaps:
                cells = np.array([(c, r) for c, r, _, _ in grids[grid]])
                heat = write_heatmaps(root, grid, cells, attributions[grid], labels)
                viewer[grid] = {"heatmap": heat}
        if directions and grid in directions:
            save_cell_array(root, "directions", grid, directions[grid])
    bundle = AtlasBundle(
        id=atlas_id,
        kind="layer",
        title=f"Atlas {atlas_id}",
        levels=tuple(levels),
        labels=tuple(labels),
        info={**(info or {}), **({"viewer": viewer_info(viewer)} if viewer else {})},
        root=root,
    )
    bundle.save()
    return AtlasBundle.load(root)


def full_grid(grid: int, top_of: Any, count_of: Any = lambda c, r: 10) -> list[CellRow]:
    """Every cell of a grid, top class ``top_of(col, row)`` (None: empty) and a count."""
    out: list[CellRow] = []
    for row in range(grid):
        for col in range(grid):
            top = top_of(col, row)
            if top is not None:
                out.append((col, row, count_of(col, row), [top]))
    return out


def write_project(root: Path, article: str, bundles: Mapping[str, AtlasBundle]) -> Path:
    """A project whose publication ``study`` has one article (``study/tour.md``) and computed
    atlas specs for ``bundles`` (handed to the build by :func:`build_project`)."""
    (root / "content/study").mkdir(parents=True, exist_ok=True)
    (root / "atlas.toml").write_text(
        '[site]\ntitle = "Tours"\nsite_url = "https://example.org/repo/"\n\n'
        '[paths]\noutput = "www/repo"\n\n[tiles]\nformat = "png"\n'
    )
    (root / "content/study/index.md").write_text("---\ntitle: Study\n---\n\nThe study.\n")
    (root / "content/study/tour.md").write_text(article)
    specs = "".join(
        f'[atlas.{atlas_id}]\ntitle = "{bundle.title}"\nlayer = "synthetic"\n\n'
        for atlas_id, bundle in bundles.items()
    )
    (root / "content/study/atlases.toml").write_text(specs)
    return root


def build_project(root: Path, bundles: Mapping[str, AtlasBundle], **options: Any) -> Any:
    """Build the project with ``bundles`` standing in for the compute engine."""
    import pytest

    from generator.config import load_config
    from generator.site import atlases as atlas_specs
    from generator.site.build import build

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            atlas_specs, "computed_bundle", lambda spec, config, results: bundles[spec.id]
        )
        return build(load_config(root / "atlas.toml"), log=None, **options)
