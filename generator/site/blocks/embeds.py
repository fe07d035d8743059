"""Atlas embeds: the ```` ```atlas ```` block's YAML, validated, and its viewer configuration.

An embed (see docs/ARCHITECTURE.md, "The Markdown embed")::

    ```atlas
    id: mixed4c                  # atlas id from an atlases.toml (required)
    figure: overview             # HTML id of the figure (default: the atlas id)
    height: 560                  # viewer height in CSS px
    width: page                  # body | page | screen: how wide the figure is
    view: [0, 0, 800, 800]       # initial view: x, y, w, h in the atlas image's pixels
    caption: "Markdown"
    scroll: false                # true: a scroll-driven tour (sticky viewer, captions as text)
    tour:                        # optional stops (generator.site.blocks.tour), previous/next, step list
      - rect: [0, 0, 400, 400]   # or query: {top_class: [lion]} (generator.site.blocks.tourquery)
        caption: "Markdown"
    ```

A text link ``[text](#atlas:<figure>?xywh=x,y,w,h)`` (``xywh=pixel:x,y,w,h`` also accepted, as in
W3C media fragments) moves the viewer of that figure on the same page to the rectangle; without
``?xywh`` it returns to the figure's initial view.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.errors import ContentError, shown, unknown_name
from generator.site.atlases import AtlasFacts
from generator.site.blocks.blockyaml import check_keys, load_block
from generator.site.blocks.tour import TourStop, check_rect, parse_tour
from generator.site.blocks.tourquery import TourQueries

#: Keys of an atlas block and what each must be.
EMBED_KEYS = {
    "id": "an atlas id declared in an atlases.toml",
    "figure": "an HTML id: a letter, then letters, digits, '-' or '_'",
    "height": "an integer number of CSS pixels from 120 to 2000",
    "width": "one of body, page, screen",
    "view": "[x, y, w, h] in atlas image pixels, inside the image, w and h > 0",
    "caption": "a Markdown string",
    "tour": "a list of stops, each {rect: [x, y, w, h] or query: {...}, caption: Markdown}",
    "scroll": "true or false: the tour is driven by scrolling through its captions",
}
WIDTHS = ("body", "page", "screen")
DEFAULT_HEIGHT = 560

_FIGURE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class AtlasEmbed:
    """A validated atlas block.

    Attributes:
        atlas: the atlas id.
        figure: the figure's HTML id (target of ``#atlas:<figure>`` links).
        height: viewer height in CSS px.
        width: ``body``, ``page`` or ``screen``.
        view: the initial view (image px), or None for the whole atlas.
        caption: Markdown.
        tour: the tour's stops, in order.
        line: the block's first line in the page's source file.
        scroll: whether the tour is driven by scrolling (sticky viewer, captions as text).
    """

    atlas: str
    figure: str
    height: int
    width: str
    view: Rect | None
    caption: str
    tour: tuple[TourStop, ...]
    line: int
    scroll: bool = False


def parse_xywh(query: str) -> list[float] | None:
    """``xywh=x,y,w,h`` or ``xywh=pixel:x,y,w,h`` -> four numbers, else None."""
    match = re.fullmatch(r"xywh=(?:pixel:)?([^&]*)", query)
    if not match:
        return None
    try:
        values = [float(v) for v in match.group(1).split(",")]
    except ValueError:
        return None
    return values if len(values) == 4 else None


def parse_embed(
    text: str,
    *,
    source: str,
    line: int,
    atlases: Mapping[str, AtlasFacts],
    queries: TourQueries | None = None,
) -> AtlasEmbed:
    """Validate the YAML of an atlas block starting at ``source:line`` (the fence line);
    ``queries`` answers tour stops given as queries."""
    block = load_block(
        text, source=source, line=line, kind="atlas", keys="id, height, view, caption, tour"
    )
    data = block.data
    where = f"{source}:{line}"

    def bad(key: str, value: Any, hint: str = "") -> ContentError:
        return ContentError(
            f"atlas block key '{key}' is invalid{hint}",
            where=f"{where} (key '{key}')",
            expected=EMBED_KEYS[key],
            got=shown(value),
            fix=f"set '{key}' to {EMBED_KEYS[key]}",
        )

    check_keys(data, EMBED_KEYS, where, "atlas block")
    atlas = data.get("id")
    if not isinstance(atlas, str):
        raise bad("id", atlas)
    if atlas not in atlases:
        raise unknown_name(
            "atlas id",
            atlas,
            sorted(atlases),
            where=f"{where} (key 'id')",
            fix=None if atlases else "declare the atlas in content/<publication>/atlases.toml",
        )
    facts = atlases[atlas]
    figure = data.get("figure", atlas)
    if not isinstance(figure, str) or not _FIGURE_ID.fullmatch(figure):
        raise bad("figure", figure)
    height = data.get("height", DEFAULT_HEIGHT)
    if isinstance(height, bool) or not isinstance(height, int) or not 120 <= height <= 2000:
        raise bad("height", height)
    width = data.get("width", "page")
    if width not in WIDTHS:
        raise bad("width", width)
    view = None
    if "view" in data:
        view = check_rect(data["view"], facts)
        if view is None:
            raise bad("view", data["view"], f" (the atlas is {facts.width}x{facts.height} px)")
    caption = data.get("caption", "")
    if not isinstance(caption, str):
        raise bad("caption", caption)
    scroll = data.get("scroll", False)
    if not isinstance(scroll, bool):
        raise bad("scroll", scroll)
    tour = parse_tour(block, facts, queries)
    if scroll and not tour:
        raise bad("scroll", scroll, " (a scroll-driven tour needs 'tour' stops)")
    return AtlasEmbed(atlas, figure, height, str(width), view, caption, tour, line, scroll)


def script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>``, no ``<!--``."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
