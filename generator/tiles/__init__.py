"""Atlas images -> Deep Zoom pyramids with pyvips, semantic-zoom levels merged in.

Public API (``from generator.tiles import ...``; importing it does not load pyvips):

- :class:`TileSettings`, :func:`tile_image`: one plain pyramid of one image.
- :func:`bundle_from_image`: a precomputed atlas image -> a one-level :class:`AtlasBundle`.
- :func:`publish_atlas` -> :class:`PublishedAtlas`: a bundle -> ``site/atlases/<id>/``.
- :func:`dzi_levels`, :func:`check_dzi`: pyramid geometry and the missing-tile check.

Semantic zoom: a multi-level bundle (grids 20/40/80 of the same cell size, sides halving)
is published as ONE Deep Zoom image of the finest level in which every DZI level coarser
than a grid level's native resolution is cut from that coarser atlas. Zooming in then
switches grids at fixed DZI levels; no DZI level mixes two grids; a stock OpenSeadragon DZI
tile source shows it; and it costs no extra files (the coarse pyramids' tiles have exactly
the names and sizes of the levels they replace) and a few percent of bytes (measured in
bench/RESULTS.md, "## Tiles"). Design notes: docs/ARCHITECTURE.md, "A published atlas".
"""

from generator.tiles.dzi import DziInfo, DziLevel, check_dzi, dzi_levels, read_dzi, tile_box
from generator.tiles.publish import PublishedAtlas, publish_atlas, tree_stats
from generator.tiles.pyramid import FORMATS, LevelSpan, TileSettings, plan_spans, tile_image
from generator.tiles.source import bundle_from_image, detect_cells, parse_colour

__all__ = [
    "FORMATS",
    "DziInfo",
    "DziLevel",
    "LevelSpan",
    "PublishedAtlas",
    "TileSettings",
    "bundle_from_image",
    "check_dzi",
    "detect_cells",
    "dzi_levels",
    "parse_colour",
    "plan_spans",
    "publish_atlas",
    "read_dzi",
    "tile_box",
    "tile_image",
    "tree_stats",
]
