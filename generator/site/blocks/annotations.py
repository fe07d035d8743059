"""A tour as W3C Web Annotations (JSON-LD), embedded in the page beside its figure.

One ``AnnotationCollection`` per tour (https://www.w3.org/TR/annotation-model/), its first
``AnnotationPage`` listing, in order:

- per stop, a ``describing`` annotation: body = the caption (``TextualBody``, HTML), target =
  the stop's view on the atlas image as a media-fragment selector ``xywh=pixel:x,y,w,h``;
- per highlight, a ``highlighting`` annotation: body = its label (plain text), target = its
  rectangle (``xywh=pixel:``), ``scope`` = the stop's annotation;
- per arrow, a ``highlighting`` annotation whose target is the arrow's bounding box
  (``xywh=pixel:``, at least 1 px each way) ``refinedBy`` an ``SvgSelector`` holding the line
  from tail to head in that box's coordinates.

Targets name the atlas's Deep Zoom image (``atlases/<id>/atlas.dzi``, relative to the page);
coordinates are the finest level's image pixels, rounded to whole pixels as media fragments
require. Every id is a fragment of the page (``#<figure>-stop-2``).
"""

from __future__ import annotations

from typing import Any

from generator.site.blocks.tour import Arrow, Rect, TourStop

CONTEXT = "http://www.w3.org/ns/anno.jsonld"
MEDIA_FRAGMENTS = "http://www.w3.org/TR/media-frags/"


def xywh(rect: Rect) -> str:
    """``xywh=pixel:x,y,w,h`` of a rectangle, whole pixels, w and h at least 1."""
    x, y = round(rect[0]), round(rect[1])
    w, h = max(1, round(rect[0] + rect[2]) - x), max(1, round(rect[1] + rect[3]) - y)
    return f"xywh=pixel:{x},{y},{w},{h}"


def parse_xywh_pixel(value: str) -> tuple[int, int, int, int]:
    """The four integers of ``xywh=pixel:x,y,w,h`` (the inverse of :func:`xywh`)."""
    prefix = "xywh=pixel:"
    if not value.startswith(prefix):
        raise ValueError(f"not a pixel media fragment: {value!r}")
    x, y, w, h = (int(v) for v in value[len(prefix) :].split(","))
    return (x, y, w, h)


def _target(source: str, rect: Rect) -> dict[str, Any]:
    return {
        "source": source,
        "selector": {
            "type": "FragmentSelector",
            "conformsTo": MEDIA_FRAGMENTS,
            "value": xywh(rect),
        },
    }


def _text(value: str, html: bool = False) -> dict[str, Any]:
    return {"type": "TextualBody", "value": value, "format": "text/html" if html else "text/plain"}


def _arrow_target(source: str, arrow: Arrow) -> dict[str, Any]:
    (x1, y1), (x2, y2) = arrow.start, arrow.end
    box: Rect = (min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1))
    target = _target(source, box)
    bx, by = round(box[0]), round(box[1])
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg"><line'
        f' x1="{round(x1) - bx}" y1="{round(y1) - by}" x2="{round(x2) - bx}" y2="{round(y2) - by}"'
        ' marker-end="url(#arrowhead)"/></svg>'
    )
    target["selector"]["refinedBy"] = {"type": "SvgSelector", "value": svg}
    return target


def _mark(mark_id: str, stop_id: str, target: dict[str, Any], label: str | None) -> dict[str, Any]:
    """A highlight or arrow of a stop: a highlighting annotation scoped to the stop, its label
    (if any) as its body."""
    mark: dict[str, Any] = {
        "id": mark_id,
        "type": "Annotation",
        "motivation": "highlighting",
        "scope": stop_id,
        "target": target,
    }
    if label:
        mark["body"] = _text(label)
    return mark


def tour_annotations(
    figure: str, title: str, source: str, stops: list[TourStop], captions: list[str]
) -> dict[str, Any]:
    """The tour of figure ``figure`` as a JSON-LD ``AnnotationCollection`` (see the module doc).

    ``source``: the atlas image's URL relative to the page; ``captions``: each stop's caption
    rendered to HTML.
    """
    items: list[dict[str, Any]] = []
    for number, (stop, caption) in enumerate(zip(stops, captions, strict=True), start=1):
        stop_id = f"#{figure}-stop-{number}"
        view: dict[str, Any] = {
            "id": stop_id,
            "type": "Annotation",
            "motivation": "describing",
            "target": _target(source, stop.rect),
        }
        if stop.title:
            view["label"] = stop.title
        if caption:
            view["body"] = _text(caption, html=True)
        items.append(view)
        for index, highlight in enumerate(stop.highlights, start=1):
            target = _target(source, highlight.rect)
            items.append(_mark(f"{stop_id}-highlight-{index}", stop_id, target, highlight.label))
        for index, arrow in enumerate(stop.arrows, start=1):
            target = _arrow_target(source, arrow)
            items.append(_mark(f"{stop_id}-arrow-{index}", stop_id, target, arrow.label))
    return {
        "@context": CONTEXT,
        "id": f"#{figure}-tour",
        "type": "AnnotationCollection",
        "label": f"Tour of {title}",
        "total": len(items),
        "first": {
            "id": f"#{figure}-tour-page-1",
            "type": "AnnotationPage",
            "startIndex": 0,
            "items": items,
        },
    }
