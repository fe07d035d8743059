"""Atlas embeds: the ```` ```atlas ```` block's YAML, validated, and its viewer configuration.

An embed (see docs/ARCHITECTURE.md, "The Markdown embed")::

    ```atlas
    id: mixed4c                  # atlas id from an atlases.toml (required)
    figure: overview             # HTML id of the figure (default: the atlas id)
    height: 560                  # viewer height in CSS px
    width: page                  # body | page | screen: how wide the figure is
    view: [0, 0, 800, 800]       # initial view: x, y, w, h in the atlas image's pixels
    caption: "Markdown"
    tour:                        # optional stops, shown with previous/next buttons
      - rect: [0, 0, 400, 400]
        caption: "Markdown"
    ```

A text link ``[text](#atlas:<figure>?xywh=x,y,w,h)`` (``xywh=pixel:x,y,w,h`` also accepted, as in
W3C media fragments) moves the viewer of that figure on the same page to the rectangle; without
``?xywh`` it returns to the figure's initial view.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from generator.errors import ContentError, closest, unknown_name
from generator.site.atlases import AtlasFacts

#: Keys of an atlas block and what each must be.
EMBED_KEYS = {
    "id": "an atlas id declared in an atlases.toml",
    "figure": "an HTML id: a letter, then letters, digits, '-' or '_'",
    "height": "an integer number of CSS pixels from 120 to 2000",
    "width": "one of body, page, screen",
    "view": "[x, y, w, h] in atlas image pixels, inside the image, w and h > 0",
    "caption": "a Markdown string",
    "tour": "a list of stops, each {rect: [x, y, w, h], caption: Markdown}",
}
STOP_KEYS = ("rect", "caption")
WIDTHS = ("body", "page", "screen")
DEFAULT_HEIGHT = 560

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_FIGURE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class TourStop:
    """One stop of a tour: an image rectangle and a Markdown caption."""

    rect: Rect
    caption: str


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
    """

    atlas: str
    figure: str
    height: int
    width: str
    view: Rect | None
    caption: str
    tour: tuple[TourStop, ...]
    line: int


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_rect(value: Any, facts: AtlasFacts) -> Rect | None:
    """``value`` as a rectangle inside the atlas image, or None when it is not one."""
    if not isinstance(value, list | tuple) or len(value) != 4 or not all(map(_number, value)):
        return None
    x, y, w, h = (float(v) for v in value)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > facts.width or y + h > facts.height:
        return None
    return (x, y, w, h)


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
    text: str, *, source: str, line: int, atlases: Mapping[str, AtlasFacts]
) -> AtlasEmbed:
    """Validate the YAML of an atlas block starting at ``source:line`` (the fence line)."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader (C if available)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = line + 1 + (mark.line if mark is not None else 0)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ContentError(
            f"invalid YAML in an atlas block: {problem}",
            where=f"{source}:{at}",
            expected="'key: value' lines (id, height, view, caption, tour)",
            fix="fix the YAML; quote captions that contain ':' or start with '*'",
        ) from err
    where = f"{source}:{line}"
    if not isinstance(data, dict):
        raise ContentError(
            "an atlas block must hold YAML keys",
            where=where,
            expected="at least 'id: <atlas id>'",
            got=repr(data),
            fix="write e.g. 'id: mixed4c' inside the block",
        )

    def bad(key: str, value: Any, hint: str = "") -> ContentError:
        return ContentError(
            f"atlas block key '{key}' is invalid{hint}",
            where=f"{where} (key '{key}')",
            expected=EMBED_KEYS[key],
            got=repr(value),
            fix=f"set '{key}' to {EMBED_KEYS[key]}",
        )

    for key in data:
        if key not in EMBED_KEYS:
            guess = closest(str(key), EMBED_KEYS)
            raise ContentError(
                f"unknown atlas block key {key!r}"
                + (f" (did you mean {guess!r}?)" if guess else ""),
                where=where,
                expected="one of " + ", ".join(EMBED_KEYS),
                fix=f"rename it to {guess!r}" if guess else "remove it",
            )
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
    return AtlasEmbed(
        atlas, figure, height, str(width), view, caption, _parse_tour(data, facts, bad), line
    )


def _parse_tour(data: dict[str, Any], facts: AtlasFacts, bad: Any) -> tuple[TourStop, ...]:
    tour = data.get("tour", [])
    if not isinstance(tour, list):
        raise bad("tour", tour)
    stops = []
    for number, stop in enumerate(tour, start=1):
        if not isinstance(stop, dict) or set(stop) - set(STOP_KEYS) or "rect" not in stop:
            raise bad("tour", stop, f" (stop {number} must have 'rect' and may have 'caption')")
        rect = check_rect(stop["rect"], facts)
        if rect is None:
            raise bad(
                "tour",
                stop["rect"],
                f" (stop {number}: rect must be [x, y, w, h] inside the"
                f" {facts.width}x{facts.height} px atlas)",
            )
        caption = stop.get("caption", "")
        if not isinstance(caption, str):
            raise bad("tour", caption, f" (stop {number}: caption must be a string)")
        stops.append(TourStop(rect, caption))
    return tuple(stops)


def script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>``, no ``<!--``."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
