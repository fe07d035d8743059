"""Tour stops in atlas blocks: queries resolved into the page, highlights and arrows, the step
list, the W3C Web Annotation (JSON-LD) form, and errors naming the page and line."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from tourkit import build_project, full_grid, make_bundle, write_project

from generator.bundle import AtlasBundle
from generator.errors import ContentError
from generator.site.atlases import facts_of
from generator.site.blocks.annotations import parse_xywh_pixel, tour_annotations, xywh
from generator.site.blocks.embeds import parse_embed
from generator.site.blocks.tour import Arrow, Highlight, TourStop
from generator.site.blocks.tourquery import TourQueries

LABELS = ["background", "lion", "tiger"]


def cats(root: Path, lions: set[tuple[int, int]]) -> AtlasBundle:
    """8 x 8 cells of 20 px (160 px); lions where asked, the rest background."""
    cells = full_grid(8, lambda c, r: 1 if (c, r) in lions else 0)
    coarse = full_grid(4, lambda c, r: 0)
    return make_bundle(root, "cats", {4: coarse, 8: cells}, LABELS, cell_px=20)


ARTICLE = """---
title: Tour
---

Intro.

```atlas
id: cats
figure: fig
height: 300
tour:
  - query: {top_class: lion}
    title: Lions
    caption: "The **lions**."
    mark: "lions here"
  - rect: [0, 0, 80, 80]
    caption: "A corner & <b>more</b>. Then more."
    highlights:
      - {rect: [10, 10, 20, 20], label: "a <cell>"}
    arrows:
      - {from: [70, 70], to: [30, 30], label: "this one"}
```
"""


def _scripts(page: str, kind: str) -> list[dict[str, object]]:
    found = re.findall(
        rf'<script type="{re.escape(kind)}" class="atlas-[a-z]+">(.*?)</script>', page
    )
    return [json.loads(text) for text in found]


def test_queries_resolve_into_the_page_and_follow_the_data(tmp_path: Path) -> None:
    bundle = cats(tmp_path / "bundle", {(5, 2), (6, 2)})
    root = write_project(tmp_path / "project", ARTICLE, {"cats": bundle})
    build_project(root, {"cats": bundle})
    page = (root / "www/repo/study/tour.html").read_text()
    config = _scripts(page, "application/json")[0]
    tour = config["tour"]
    assert isinstance(tour, list)
    # lions at cells (5,2), (6,2) of 20 px: box x 100..140, y 40..60, one cell of margin
    assert tour[0]["rect"] == [80, 20, 80, 60]
    assert tour[0]["highlights"] == [{"rect": [100, 40, 40, 20], "label": "lions here"}]
    assert (
        tour[0]["title"] == "Lions" and tour[0]["caption"] == "<p>The <strong>lions</strong>.</p>"
    )
    assert tour[1]["highlights"] == [{"rect": [10, 10, 20, 20], "label": "a <cell>"}]
    assert tour[1]["arrows"] == [{"from": [70, 70], "to": [30, 30], "label": "this one"}]
    assert "a <cell>" not in page  # escaped inside the JSON script
    # the step list: the titles, the second from its caption's first sentence, escaped
    steps = re.findall(r'<button type="button" data-step="(\d)">(.*?)</button>', page)
    assert steps == [("1", "Lions"), ("2", "A corner &amp; more.")]

    # the lions move: the next build answers the query again (the page's key follows the data)
    moved = cats(tmp_path / "bundle", {(0, 7), (1, 7), (1, 6)})
    build_project(root, {"cats": moved})
    config = _scripts((root / "www/repo/study/tour.html").read_text(), "application/json")[0]
    assert config["tour"][0]["rect"] == [0, 100, 60, 60]  # type: ignore[index]


def test_the_tour_is_in_the_page_as_web_annotations(tmp_path: Path) -> None:
    bundle = cats(tmp_path / "bundle", {(5, 2)})
    root = write_project(tmp_path / "project", ARTICLE, {"cats": bundle})
    build_project(root, {"cats": bundle})
    page = (root / "www/repo/study/tour.html").read_text()
    doc = _scripts(page, "application/ld+json")[0]
    assert doc["@context"] == "http://www.w3.org/ns/anno.jsonld"
    assert doc["type"] == "AnnotationCollection" and doc["id"] == "#fig-tour"
    items = doc["first"]["items"]  # type: ignore[index]
    assert doc["total"] == len(items) == 5  # 2 stops, the mark, a highlight, an arrow
    kinds = [(item["id"], item["motivation"]) for item in items]
    assert kinds == [
        ("#fig-stop-1", "describing"),
        ("#fig-stop-1-highlight-1", "highlighting"),
        ("#fig-stop-2", "describing"),
        ("#fig-stop-2-highlight-1", "highlighting"),
        ("#fig-stop-2-arrow-1", "highlighting"),
    ]
    for item in items:
        assert item["type"] == "Annotation"
        assert item["target"]["source"] == "../atlases/cats/atlas.dzi"
        selector = item["target"]["selector"]
        assert selector["type"] == "FragmentSelector"
        assert selector["conformsTo"] == "http://www.w3.org/TR/media-frags/"
    values = [item["target"]["selector"]["value"] for item in items]
    assert values[0] == "xywh=pixel:80,20,60,60" and values[2] == "xywh=pixel:0,0,80,80"
    assert values[3] == "xywh=pixel:10,10,20,20"
    assert items[2]["body"] == {
        "type": "TextualBody",
        "value": "<p>A corner &amp; <b>more</b>. Then more.</p>",
        "format": "text/html",
    }
    assert items[3]["body"]["value"] == "a <cell>" and items[3]["scope"] == "#fig-stop-2"
    arrow = items[4]["target"]["selector"]
    assert arrow["value"] == "xywh=pixel:30,30,40,40"  # the arrow's bounding box
    svg = arrow["refinedBy"]
    assert svg["type"] == "SvgSelector"
    assert re.search(r'<line x1="40" y1="40" x2="0" y2="0"', svg["value"])  # tail -> head


def test_annotation_rectangles_round_to_whole_pixels() -> None:
    assert xywh((10.4, 0.6, 19.2, 0.2)) == "xywh=pixel:10,1,20,1"
    assert parse_xywh_pixel("xywh=pixel:10,1,20,1") == (10, 1, 20, 1)
    with pytest.raises(ValueError):
        parse_xywh_pixel("xywh=percent:1,2,3,4")
    stop = TourStop(
        (0, 0, 8, 8), highlights=(Highlight((1, 1, 2, 2)),), arrows=(Arrow((5, 0), (5, 6)),)
    )
    doc = tour_annotations("f", "T", "a.dzi", [stop], [""])
    items = doc["first"]["items"]
    assert "body" not in items[0] and "body" not in items[1]  # no caption, no label
    assert items[2]["target"]["selector"]["value"] == "xywh=pixel:5,0,1,6"  # at least 1 px wide


def _parse(block: str, queries: TourQueries | None, facts: object) -> object:
    return parse_embed(block, source="page.md", line=7, atlases={"cats": facts}, queries=queries)  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("block", "message", "line"),
    [
        ("id: cats\ntour:\n  - query: {top_class: lino}", "did you mean 'lion'?", 10),
        (
            "id: cats\ntour:\n  - rect: [0, 0, 9, 9]\n  - query: {channel: 1}",
            "needs directions",
            11,
        ),
        (
            "id: cats\ntour:\n  - query: {top_class: lion}\n    rect: [0, 0, 9, 9]",
            "one of them",
            10,
        ),
        ("id: cats\ntour:\n  - rect: [0, 0, 9, 9]\n    mark: true", "'mark' needs a query", 11),
        ("id: cats\ntour:\n  - rect: [0, 0, 9, 9]\n    captoin: x", "did you mean 'caption'?", 10),
        (
            "id: cats\ntour:\n  - rect: [0, 0, 9, 9]\n    highlights:\n      - {rect: [150, 0, 20, 5]}",
            "highlight 1 is invalid",
            12,
        ),
        (
            "id: cats\ntour:\n  - rect: [0, 0, 9, 9]\n    arrows:\n\n      - {from: [1, 1], to: [1, 1]}",
            "arrow 1 is invalid",
            13,
        ),
        (
            "id: cats\ntour:\n  - rect: [0, 0, 9, 9]\n    arrows:\n      - {from: [1, 1]}",
            "an arrow needs 'from' and 'to'",
            12,
        ),
        ("id: cats\nscroll: true", "a scroll-driven tour needs 'tour' stops", 7),
        ("id: cats\nscroll: yes please", "'scroll' is invalid", 7),
    ],
)
def test_bad_stops_name_the_page_and_line(
    tmp_path: Path, block: str, message: str, line: int
) -> None:
    bundle = cats(tmp_path / "bundle", {(1, 1)})
    queries = TourQueries({"cats": bundle})
    with pytest.raises(ContentError) as info:
        _parse(block, queries, facts_of(bundle))
    assert message in info.value.message()
    assert re.match(rf"page\.md:{line}\b", str(info.value.where)), info.value.where


def test_a_stop_with_a_query_needs_atlas_data(tmp_path: Path) -> None:
    bundle = cats(tmp_path / "bundle", {(1, 1)})
    with pytest.raises(ContentError, match="no atlas data is available"):
        _parse("id: cats\ntour:\n  - query: {top_class: lion}", None, facts_of(bundle))


def test_scroll_tours_render_their_captions_as_step_texts(tmp_path: Path) -> None:
    bundle = cats(tmp_path / "bundle", {(5, 2)})
    article = ARTICLE.replace("height: 300\n", "height: 300\nscroll: true\n")
    root = write_project(tmp_path / "project", article, {"cats": bundle})
    build_project(root, {"cats": bundle})
    page = (root / "www/repo/study/tour.html").read_text()
    assert 'class="atlas-figure l-page atlas-scroll"' in page
    steps = re.findall(
        r'<section class="atlas-step" data-step="(\d)" aria-label="([^"]*)">\s*(.*?)\s*</section>',
        page,
        re.S,
    )
    assert [(n, html.unescape(label)) for n, label, _ in steps] == [
        ("1", "Stop 1: Lions"),
        ("2", "Stop 2: A corner & more."),
    ]
    assert steps[0][2] == "<p>The <strong>lions</strong>.</p>"
    assert "atlas-tour-steps" not in page  # the texts are the step list
    assert _scripts(page, "application/json")[0]["scroll"] is True
