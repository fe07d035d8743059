"""Layers side by side: a ```` ```atlas-layers ```` block -> several linked viewers in one figure.

The block (YAML)::

    ```atlas-layers
    ids: [mixed3b, mixed4c, mixed5b]   # two to four atlas ids (required)
    class: cabbage                     # each viewer opens on this class's densest region
    flip: {mixed5b: x}                 # per atlas: x (mirror left-right), y, or xy (half turn)
    views: {mixed3b: [0, 0, 800, 800]} # per atlas: an initial view instead of the class's region
    titles: {mixed3b: "3b"}            # per atlas: the panel's title (default: the atlas title)
    figure: cabbage-layers             # the figure's HTML id (default: layers-<first id>)
    height: 360                        # each viewer's height in CSS px
    width: screen                      # body | page | screen (default: screen)
    caption: "Markdown"
    ```

Each panel is an ordinary viewer (``<figure id>-<atlas id>``, a ``#atlas:`` link target)
configured with ``group`` (the figure id) and ``flip``; atlas-viewer-linked.js links them:
hovering a cell highlights the cells with the same top class in the other panels, and a class
chosen in the figure's class menu (or a panel's heat-map box) is shown in every panel (its heat
map where the atlas has one, else its top-class cells). The class's region is resolved when the
page is built, with the ``top_class`` tour query (:mod:`generator.site.blocks.tourquery`): the densest
region of cells whose top class it is, at the coarsest grid that has one.

Flips are display only: rectangles (``views``, hashes, links) stay in each atlas's own image
pixels, and a flipped panel shows the same cells mirrored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from generator.errors import ContentError, shown, unknown_name
from generator.site.blocks.blockyaml import BlockYaml, check_keys, load_block
from generator.site.blocks.embeds import WIDTHS, AtlasEmbed
from generator.site.blocks.tour import Rect, check_rect
from generator.site.blocks.tourquery import parse_query
from generator.site.mdext import PageContext, add_embed

LAYERS_KEYS = {
    "ids": "a list of two to four atlas ids",
    "class": "a class name (each viewer opens on its densest region)",
    "flip": "a mapping atlas id -> x, y or xy",
    "views": "a mapping atlas id -> [x, y, w, h] in that atlas's image pixels",
    "titles": "a mapping atlas id -> a panel title",
    "figure": "an HTML id: a letter, then letters, digits, '-' or '_'",
    "height": "an integer number of CSS pixels from 120 to 2000",
    "width": "one of body, page, screen",
    "caption": "a Markdown string",
}
FLIPS = ("x", "y", "xy")
_FIGURE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class LayerPanel:
    """One viewer of a layers figure: its embed (figure id, view), flip and title."""

    embed: AtlasEmbed
    flip: str | None
    title: str


@dataclass(frozen=True)
class LayersFigure:
    """A validated ```` ```atlas-layers ```` block."""

    figure: str
    panels: tuple[LayerPanel, ...]
    klass: str | None
    width: str
    caption: str
    line: int


def parse_layers(block: BlockYaml, ctx: PageContext) -> LayersFigure:
    """Validate a layers block and resolve each panel's initial view."""
    data = block.data
    check_keys(data, LAYERS_KEYS, block.where(), "atlas-layers block")

    def bad(key: str, value: Any, hint: str = "") -> ContentError:
        return ContentError(
            f"atlas-layers key '{key}' is invalid{hint}",
            where=block.where(key),
            expected=LAYERS_KEYS[key],
            got=shown(value),
            fix=f"set '{key}' to {LAYERS_KEYS[key]}",
        )

    ids = data.get("ids")
    if not isinstance(ids, list) or not 2 <= len(ids) <= 4 or len(set(map(str, ids))) != len(ids):
        raise bad("ids", ids, " (two to four different atlas ids)")
    for atlas_id in ids:
        if not isinstance(atlas_id, str) or atlas_id not in ctx.atlases:
            raise unknown_name(
                "atlas id", str(atlas_id), sorted(ctx.atlases), where=block.where("ids")
            )
    klass = data.get("class")
    if klass is not None and not isinstance(klass, str):
        raise bad("class", klass)
    figure = data.get("figure", f"layers-{ids[0]}")
    if not isinstance(figure, str) or not _FIGURE_ID.fullmatch(figure):
        raise bad("figure", figure)
    height = data.get("height", 360)
    if isinstance(height, bool) or not isinstance(height, int) or not 120 <= height <= 2000:
        raise bad("height", height)
    width = data.get("width", "screen")
    if width not in WIDTHS:
        raise bad("width", width)
    caption = data.get("caption", "")
    if not isinstance(caption, str):
        raise bad("caption", caption)
    maps = {key: _per_atlas(block, data, key, ids, bad) for key in ("flip", "views", "titles")}
    panels = []
    for atlas_id in ids:
        facts = ctx.atlases[atlas_id]
        flip = maps["flip"].get(atlas_id)
        if flip is not None and flip not in FLIPS:
            raise bad("flip", flip, f" for {shown(atlas_id)} (x, y or xy)")
        title = maps["titles"].get(atlas_id, facts.title)
        if not isinstance(title, str):
            raise bad("titles", title)
        view = _view(block, ctx, atlas_id, maps["views"].get(atlas_id), klass, bad)
        embed = AtlasEmbed(
            atlas_id, f"{figure}-{atlas_id}", height, "body", view, "", (), block.line
        )
        panels.append(LayerPanel(embed, flip, title))
    return LayersFigure(figure, tuple(panels), klass, str(width), caption, block.line)


def _per_atlas(
    block: BlockYaml, data: dict[str, Any], key: str, ids: list[str], bad: Any
) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise bad(key, value)
    for atlas_id in value:
        if atlas_id not in ids:
            raise ContentError(
                f"atlas-layers '{key}' names {shown(atlas_id)}, which is not one of the figure's ids",
                where=block.where(key, atlas_id),
                expected="one of " + ", ".join(ids),
                fix=f"add {shown(atlas_id)} to 'ids' or remove it from '{key}'",
            )
    return value


def _view(
    block: BlockYaml,
    ctx: PageContext,
    atlas_id: str,
    given: Any,
    klass: str | None,
    bad: Any,
) -> Rect | None:
    facts = ctx.atlases[atlas_id]
    if given is not None:
        rect = check_rect(given, facts)
        if rect is None:
            raise bad(
                "views",
                given,
                f" for {shown(atlas_id)} (inside its {facts.width}x{facts.height} px)",
            )
        return rect
    if klass is None:
        return None
    where = block.where("class")
    if ctx.queries is None:
        raise ContentError(
            "no atlas data to find the class's region", where=where, fix="give 'views'"
        )
    try:
        result = ctx.queries.resolve(atlas_id, parse_query({"top_class": klass}, where), where)
    except ContentError as err:
        err.fix = f"{err.fix}; or give this atlas a view: 'views: {{{atlas_id}: [x, y, w, h]}}'"
        err.args = (err.message(),)
        raise
    return result.rect


def class_menu(ctx: PageContext, ids: list[str], klass: str | None) -> list[str]:
    """The classes offered by the figure's menu: every class that is the top class of a cell
    of any panel's atlas (all grids), sorted; plus the block's class."""
    names: set[str] = {klass} if klass else set()
    if ctx.queries is not None:
        for atlas_id in ids:
            data = ctx.queries.data(atlas_id)
            labels = data.bundle.labels
            for grid in data.bundle.grids:
                names.update(
                    labels[k] for k in set(data.cells(grid).top.tolist()) if 0 <= k < len(labels)
                )
    return sorted(names, key=str.lower)


def render_layers(text: str, line: int, ctx: PageContext) -> str:
    """The HTML of a layers block (``partials/atlas-layers.html``); registers its viewers."""
    block = load_block(
        text, source=str(ctx.page.source), line=line, kind="atlas-layers", keys="ids, class, flip"
    )
    layers = parse_layers(block, ctx)
    panels = []
    for panel in layers.panels:
        add_embed(ctx, panel.embed)
        config = {"flip": panel.flip, "group": layers.figure, "help": f"{layers.figure}-help"}
        panels.append({**ctx.figures.figure_context(panel.embed, ctx, **config), "panel": panel})
    ids = [panel.embed.atlas for panel in layers.panels]
    caption = ctx.figures.caption_html(layers.caption, ctx) if layers.caption else ""
    return ctx.figures.render_partial(
        "partials/atlas-layers.html",
        layers=layers,
        panels=panels,
        classes=class_menu(ctx, ids, layers.klass),
        caption=caption,
    )
