"""The Markdown extensions: atlas blocks, citations, margin notes, figures, links."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from generator.errors import ContentError, UnknownNameError
from generator.site.atlases import AtlasFacts
from generator.site.bibtex import parse_bibtex
from generator.site.blocks.embeds import AtlasEmbed
from generator.site.content import FrontMatter, Page
from generator.site.mdext import PageContext, PageMarkdown

BIB = parse_bibtex("@article{olah2017, author={Olah, Chris}, title={Feature Visualization}}")
ATLASES = {"mixed4c": AtlasFacts("mixed4c", "Mixed 4c", 1600, 1600)}
URL_MAP = {
    "pub/a.md": "pub/a.html",
    "pub/other.md": "pub/renamed.html",
    "pub/index.md": "pub/index.html",
}


class PlainFigures:
    """The page renderer's part the extensions use, minimal: a figure names its atlas."""

    def __init__(self) -> None:
        self.captions = PageMarkdown(embeds=False)
        self.experiments: dict[tuple[str, str], Any] = {}

    def figure_html(self, embed: AtlasEmbed, ctx: PageContext) -> str:
        return f'<figure id="{embed.figure}" data-test="{embed.atlas}"></figure>'

    def figure_context(self, embed: AtlasEmbed, ctx: PageContext, **extra: Any) -> dict[str, Any]:
        return {"embed": embed, **extra}

    def caption_html(self, text: str, ctx: PageContext) -> str:
        return self.captions.convert(text, ctx)

    def render_partial(self, name: str, **context: Any) -> str:
        return f"<div data-partial={name!r}></div>"


def convert(body: str, *, front_lines: int = 3) -> tuple[str, PageContext]:
    """Convert ``body`` as page pub/a.md whose body starts after ``front_lines`` lines."""
    text = "---\ntitle: A\n---\n" + body if front_lines == 3 else body
    page = Page(Path("/c/pub/a.md"), "pub/a.md", "pub/a.html", "article", "pub",
                FrontMatter("A"), text, body, front_lines + 1)  # fmt: skip
    md = PageMarkdown()
    ctx = PageContext(page, BIB, ATLASES, URL_MAP, PlainFigures())
    return md.convert(body, ctx), ctx


def test_atlas_block_becomes_a_figure_and_is_recorded() -> None:
    html, ctx = convert(
        "Intro.\n\n```atlas\nid: mixed4c\nfigure: overview\nheight: 300\nview: [0, 0, 800, 800]\n"
        "tour:\n  - rect: [0, 0, 100, 100]\n    caption: '*one*'\n```\n\nAfter.\n"
    )
    assert '<figure id="overview" data-test="mixed4c"></figure>' in html
    assert "<code" not in html  # not a code block
    embed = ctx.embeds["overview"]
    assert (embed.height, embed.view, embed.line) == (300, (0, 0, 800, 800), 6)
    assert embed.tour[0].rect == (0, 0, 100, 100)


def test_other_fenced_blocks_are_left_alone() -> None:
    html, ctx = convert("````markdown\n```atlas\nid: nope\n```\n````\n\n```python\nx = 1\n```\n")
    assert ctx.embeds == {}
    assert "id: nope" in html
    assert 'class="language-python"' in html


@pytest.mark.parametrize(
    ("block", "message", "line"),
    [
        ("id: mixed4c\ncaption: a: b\n", "invalid YAML in an atlas block", 8),
        ("id: mixed4", "unknown atlas id 'mixed4' (did you mean 'mixed4c'?)", 6),
        (
            "id: mixed4c\ncaptoin: x",
            "unknown atlas block key 'captoin' (did you mean 'caption'?)",
            6,
        ),
        ("id: mixed4c\nview: [0, 0, 2000, 10]", "'view' is invalid (the atlas is 1600x1600 px)", 6),
        ("id: mixed4c\nheight: tall", "'height' is invalid", 6),
        # tour stops: the stop's own line
        ("id: mixed4c\ntour:\n  - rect: [0, 0, -1, 5]", "stop 1: rect must be", 9),
        ("id: mixed4c\ntour:\n  - caption: x", "stop 1 must have 'rect'", 9),
        ("just text", "must hold YAML keys", 6),
    ],
)
def test_bad_atlas_blocks_name_file_and_line(block: str, message: str, line: int) -> None:
    with pytest.raises((ContentError, UnknownNameError)) as info:
        convert(f"Intro.\n\n```atlas\n{block}\n```\n")
    assert message in info.value.message()
    assert info.value.where is not None
    assert re.match(rf"/c/pub/a.md:{line}\b", info.value.where), info.value.where


def test_unclosed_atlas_block_and_duplicate_figures() -> None:
    with pytest.raises(ContentError, match="not closed"):
        convert("```atlas\nid: mixed4c\n")
    with pytest.raises(ContentError, match="two atlas figures on this page"):
        convert("```atlas\nid: mixed4c\n```\n\n```atlas\nid: mixed4c\n```\n")


def test_citations_are_numbered_linked_and_checked() -> None:
    html, ctx = convert("First [@olah2017], again [@olah2017].\n\nCode `[@olah2017]` stays.\n")
    assert ctx.citations == ["olah2017"]
    assert html.count('href="#ref-olah2017"') == 2
    assert ">1</a>]" in html
    assert "<code>[@olah2017]</code>" in html
    with pytest.raises(
        ContentError, match=r"unknown citation key 'olah2071' \(did you mean 'olah2017'"
    ) as info:
        convert("Line one.\n\nBad [@olah2071].\n")
    assert info.value.where == "/c/pub/a.md:6"


def test_margin_notes_and_figures() -> None:
    html, _ = convert(
        "> [!margin]\n> A *note*.\n\nBetween.\n\n> A plain quote.\n\n"
        '![An image](img.png "The caption")\n\n![Wide](w.png){ .wide }\n\nText ![inline](i.png) here.\n'
    )
    assert '<aside class="margin-note">\n<p>A <em>note</em>.</p>\n</aside>' in html
    assert "<blockquote>\n<p>A plain quote.</p>" in html
    assert re.search(
        r'<figure class="figure"><img alt="An image" src="img.png" ?/?><figcaption>The caption</figcaption>',
        html,
    )
    assert '<figure class="figure wide">' in html
    assert "<p>Text <img" in html


def test_markdown_links_become_output_urls_and_atlas_links_carry_rectangles() -> None:
    html, ctx = convert(
        "```atlas\nid: mixed4c\nview: [0, 0, 800, 800]\n```\n\n"
        "[other](other.md#part) [index](index.md) [ext](https://x.org/a.md) [missing](gone.md)\n"
        "[zoom](#atlas:mixed4c?xywh=pixel:10,20,30,40) [home](#atlas:mixed4c)\n"
    )
    assert 'href="renamed.html#part"' in html
    assert 'href="./"' in html
    assert 'href="https://x.org/a.md"' in html
    assert 'href="gone.md"' in html  # left for the link check to report
    assert ctx.originals["renamed.html#part"] == "other.md#part"
    assert 'data-atlas-rect="10,20,30,40"' in html
    assert 'data-atlas-rect="0,0,800,800"' in html
    assert html.count('class="atlas-link" data-atlas-figure="mixed4c"') == 2


@pytest.mark.parametrize(
    ("link", "message"),
    [
        (
            "#atlas:mixed4?xywh=0,0,1,1",
            "names no atlas figure on this page (did you mean 'mixed4c'?)",
        ),
        ("#atlas:mixed4c?xywh=0,0,1", "the link's rectangle is invalid"),
        ("#atlas:mixed4c?xywh=0,0,9999,1", "the link's rectangle is invalid"),
        ("#atlas:mixed4c?zoom=2", "the link's rectangle is invalid"),
    ],
)
def test_bad_atlas_links(link: str, message: str) -> None:
    with pytest.raises(ContentError, match=re.escape(message)) as info:
        convert(f"```atlas\nid: mixed4c\n```\n\nSee [this]({link}).\n")
    assert info.value.where == "/c/pub/a.md:8"


def test_tour_captions_are_markdown_in_escaped_json() -> None:
    from generator.site.blocks.embeds import script_json

    text = script_json({"caption": "</script><script>alert(1)</script>", "x": "a & b \u2028"})
    assert "</script>" not in text and "<" not in text and "&" not in text
    assert json.loads(text)["caption"] == "</script><script>alert(1)</script>"


def test_typography_curls_quotes_and_dashes_outside_code() -> None:
    html, _ = convert(
        '"Hello," she said -- it\'s *the* "best" --- isn\'t it... (a \'quote\') `"code"` '
        'and *x*"y"\n\n    "indented code" -- kept\n'
    )
    assert "<p>“Hello,” she said – it’s <em>the</em> “best” — isn’t it… (a ‘quote’)" in html
    assert '<code>"code"</code>' in html
    assert "<em>x</em>”y”" in html  # a quote after a word in another node closes
    assert '"indented code" -- kept' in html
