"""Tour stops of an atlas block: parsed, validated and resolved (queries) when the page builds.

A stop (a list item under ``tour:``)::

    - rect: [800, 800, 1600, 1600]        # x, y, w, h in the atlas's finest image pixels
      # or: query: {top_class: [lion, tiger]}   (generator.site.blocks.tourquery; resolved at build)
      title: "Big cats"                   # the step list's entry (default: the caption's text)
      caption: "Markdown"
      highlights:                         # rectangles drawn over the atlas, with a label
        - {rect: [900, 900, 200, 200], label: "a mane"}
      arrows:                             # labelled arrows, from a point to a point
        - {from: [700, 700], to: [900, 900], label: "look here"}
      mark: "lions"                       # query stops: outline the cells found (a label, or true)

Exactly one of ``rect`` and ``query``. Points and rectangles must lie inside the atlas image.
Errors name the page and the line of the offending stop or key.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Any

from generator.errors import ContentError, shown
from generator.site.atlases import AtlasFacts
from generator.site.blocks.blockyaml import BlockYaml, check_keys
from generator.site.blocks.tourquery import Query, TourQueries, parse_query

Rect = tuple[float, float, float, float]
Point = tuple[float, float]

#: Keys of a tour stop and what each must be.
STOP_KEYS = {
    "rect": "[x, y, w, h] in atlas image pixels, inside the image, w and h > 0",
    "query": "a data query such as {top_class: [lion]} (see generator/site/blocks/tourquery.py)",
    "title": "a short plain-text string (the step list's entry)",
    "caption": "a Markdown string",
    "highlights": "a list of {rect: [x, y, w, h], label: text}",
    "arrows": "a list of {from: [x, y], to: [x, y], label: text}",
    "mark": "true, or a label: outline the cells a query found",
}
HIGHLIGHT_KEYS = {"rect": STOP_KEYS["rect"], "label": "a plain-text string"}
ARROW_KEYS = {
    "from": "[x, y] in atlas image pixels (the tail)",
    "to": "[x, y] in atlas image pixels (the head)",
    "label": "a plain-text string (written at the tail)",
}


@dataclass(frozen=True)
class Highlight:
    """A labelled rectangle drawn over the atlas at a stop."""

    rect: Rect
    label: str = ""


@dataclass(frozen=True)
class Arrow:
    """A labelled arrow from ``start`` to ``end`` (image px) drawn at a stop."""

    start: Point
    end: Point
    label: str = ""


@dataclass(frozen=True)
class TourStop:
    """One stop of a tour.

    Attributes:
        rect: the view (image px): as written, or what the query resolved to.
        caption: Markdown; title: plain text for the step list ("" -> from the caption).
        highlights, arrows: overlays drawn while the stop is shown.
        query: the query the rectangle came from (None: an authored rectangle).
        line: the stop's line in the page.
    """

    rect: Rect
    caption: str = ""
    title: str = ""
    highlights: tuple[Highlight, ...] = ()
    arrows: tuple[Arrow, ...] = ()
    query: Query | None = None
    line: int = 0


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


def check_point(value: Any, facts: AtlasFacts) -> Point | None:
    """``value`` as a point inside the atlas image, or None."""
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(map(_number, value)):
        return None
    x, y = float(value[0]), float(value[1])
    return (x, y) if 0 <= x <= facts.width and 0 <= y <= facts.height else None


def parse_tour(
    block: BlockYaml, facts: AtlasFacts, queries: TourQueries | None
) -> tuple[TourStop, ...]:
    """The validated stops of ``block.data["tour"]`` (queries resolved with ``queries``)."""
    tour = block.data.get("tour", [])
    if not isinstance(tour, list):
        raise _bad(block, ("tour",), "the tour must be a list of stops", tour, "a list of stops")
    return tuple(
        _parse_stop(block, facts, queries, number, stop)
        for number, stop in enumerate(tour, start=1)
    )


def _bad(
    block: BlockYaml, path: tuple[str | int, ...], what: str, got: Any, expected: str
) -> ContentError:
    return ContentError(
        what,
        where=block.where(*path),
        expected=expected,
        got=shown(got),
        fix="correct it (coordinates are pixels of the atlas's finest level)",
    )


def _parse_stop(
    block: BlockYaml, facts: AtlasFacts, queries: TourQueries | None, number: int, stop: Any
) -> TourStop:
    path: tuple[str | int, ...] = ("tour", number - 1)
    line = block.lines.get(path, block.line)
    size = f"{facts.width}x{facts.height} px"
    if not isinstance(stop, dict) or ("rect" in stop) == ("query" in stop):
        raise _bad(
            block,
            path,
            f"tour stop {number} must have 'rect' or 'query' (one of them) and may have"
            " 'caption', 'title', 'highlights', 'arrows'",
            stop,
            "{rect: [x, y, w, h], caption: ...} or {query: {...}, caption: ...}",
        )
    check_keys(stop, STOP_KEYS, block.where(*path), f"tour stop {number}")
    for key in ("caption", "title"):
        if not isinstance(stop.get(key, ""), str):
            raise _bad(
                block,
                (*path, key),
                f"stop {number}: {key} must be a string",
                stop[key],
                STOP_KEYS[key],
            )
    query = None
    highlights = list(_highlights(block, facts, number, path, stop.get("highlights", [])))
    if "rect" in stop:
        rect = check_rect(stop["rect"], facts)
        if rect is None:
            raise _bad(
                block,
                (*path, "rect"),
                f"stop {number}: rect must be [x, y, w, h] inside the {size} atlas",
                stop["rect"],
                STOP_KEYS["rect"],
            )
        if "mark" in stop:
            raise _bad(
                block,
                (*path, "mark"),
                f"stop {number}: 'mark' needs a query",
                stop["mark"],
                "a 'query' stop",
            )
    else:
        where = block.where(*path, "query")
        query = parse_query(stop["query"], where)
        if queries is None:
            raise ContentError(
                f"tour stop {number} has a query, but no atlas data is available to answer it",
                where=where,
                fix="give the stop a 'rect' instead",
            )
        result = queries.resolve(facts.id, query, where)
        rect = result.rect
        mark = stop.get("mark", False)
        if not isinstance(mark, bool | str):
            raise _bad(
                block, (*path, "mark"), f"stop {number}: mark is invalid", mark, STOP_KEYS["mark"]
            )
        if mark is not False:
            highlights.append(Highlight(result.box, "" if mark is True else mark))
    return TourStop(
        rect,
        stop.get("caption", ""),
        stop.get("title", ""),
        tuple(highlights),
        tuple(_arrows(block, facts, number, path, stop.get("arrows", []))),
        query,
        line,
    )


def _highlights(
    block: BlockYaml, facts: AtlasFacts, number: int, path: tuple[str | int, ...], items: Any
) -> list[Highlight]:
    if not isinstance(items, list):
        raise _bad(
            block,
            (*path, "highlights"),
            f"stop {number}: highlights must be a list",
            items,
            STOP_KEYS["highlights"],
        )
    out = []
    for index, item in enumerate(items):
        at = (*path, "highlights", index)
        if not isinstance(item, dict) or "rect" not in item:
            raise _bad(
                block, at, f"stop {number}: a highlight needs a rect", item, STOP_KEYS["highlights"]
            )
        check_keys(item, HIGHLIGHT_KEYS, block.where(*at), "highlight")
        rect = check_rect(item["rect"], facts)
        label = item.get("label", "")
        if rect is None or not isinstance(label, str):
            raise _bad(
                block,
                at,
                f"stop {number}: highlight {index + 1} is invalid",
                item,
                f"{STOP_KEYS['highlights']}, inside the {facts.width}x{facts.height} px atlas",
            )
        out.append(Highlight(rect, label))
    return out


def _arrows(
    block: BlockYaml, facts: AtlasFacts, number: int, path: tuple[str | int, ...], items: Any
) -> list[Arrow]:
    if not isinstance(items, list):
        raise _bad(
            block,
            (*path, "arrows"),
            f"stop {number}: arrows must be a list",
            items,
            STOP_KEYS["arrows"],
        )
    out = []
    for index, item in enumerate(items):
        at = (*path, "arrows", index)
        if not isinstance(item, dict) or "from" not in item or "to" not in item:
            raise _bad(
                block,
                at,
                f"stop {number}: an arrow needs 'from' and 'to'",
                item,
                STOP_KEYS["arrows"],
            )
        check_keys(item, ARROW_KEYS, block.where(*at), "arrow")
        start, end = check_point(item["from"], facts), check_point(item["to"], facts)
        label = item.get("label", "")
        if start is None or end is None or start == end or not isinstance(label, str):
            raise _bad(
                block,
                at,
                f"stop {number}: arrow {index + 1} is invalid",
                item,
                f"two different points inside the {facts.width}x{facts.height} px atlas"
                " and a string label",
            )
        out.append(Arrow(start, end, label))
    return out


def stop_title(stop: TourStop, caption_html: str, number: int) -> str:
    """The step list's entry: the stop's title, else its caption's first sentence (plain text,
    at most 80 characters), else "Stop <n>"."""
    if stop.title:
        return stop.title
    blocks = re.sub(r"</(?:p|li|h\d|div|blockquote)>|<br\s*/?>", " ", caption_html)
    text = html.unescape(re.sub(r"<[^>]+>", "", blocks))
    text = " ".join(text.split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0] if text else ""
    if len(sentence) > 80:
        sentence = sentence[:79].rsplit(" ", 1)[0] + "\u2026"
    return sentence or f"Stop {number}"


def stop_config(stop: TourStop, caption_html: str, number: int) -> dict[str, Any]:
    """A stop as the viewer's configuration holds it (see templates/static/atlas-viewer-tour.js)."""
    return {
        "rect": numbers(stop.rect),
        "title": stop_title(stop, caption_html, number),
        "caption": caption_html,
        "highlights": [{"rect": numbers(h.rect), "label": h.label} for h in stop.highlights],
        "arrows": [
            {"from": numbers(a.start), "to": numbers(a.end), "label": a.label} for a in stop.arrows
        ],
    }


def numbers(values: tuple[float, ...]) -> list[float | int]:
    """Whole numbers as ints (``[0, 0, 320, 320]``, not ``[0.0, ...]``) for readable JSON."""
    return [int(v) if float(v).is_integer() else v for v in values]
