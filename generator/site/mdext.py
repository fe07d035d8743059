"""Python-Markdown extensions of the site: atlas embeds, citations, margin notes, figures, links.

:class:`PageMarkdown` converts every page of a build: ``convert(text, ctx)`` hands the page's
:class:`PageContext` to the extension for that one conversion, and every processor reads and
writes it there. Fenced blocks besides ``atlas`` register with the extension when the converter
is made (``blocks``: info string -> :data:`BlockHandler`); a handler renders through the
context's :class:`Figures` (what it may ask of the page renderer), never the renderer itself.

- ```` ```atlas ```` blocks (YAML, see :mod:`generator.site.blocks.embeds`) -> a viewer figure; the
  registered blocks (```` ```atlas-layers ````, ```` ```patch-results ````) -> what their
  handler renders.
- ``[@key]`` / ``[@a; @b]`` -> numbered citations of the publication's BibTeX entries.
- A blockquote starting ``[!margin]`` -> ``<aside class="margin-note">`` beside the text.
- A paragraph holding only an image -> ``<figure>``, the image's title as ``<figcaption>``;
  classes from ``{.wide}`` / ``{.screen}`` (attr_list) move to the figure.
- Links to ``other.md`` -> that page's output URL; ``#atlas:<figure>?xywh=x,y,w,h`` -> a link
  that moves the viewer (``class="atlas-link"`` with ``data-atlas-*`` attributes).
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as etree
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from markdown import Extension, Markdown
from markdown.inlinepatterns import InlineProcessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

from generator.errors import ContentError, closest, where_at
from generator.site.atlases import AtlasFacts
from generator.site.bibtex import Entry, entry_text
from generator.site.blocks.embeds import AtlasEmbed, check_rect, parse_embed, parse_xywh
from generator.site.blocks.tourquery import TourQueries
from generator.site.content import Page

#: A fenced block's handler: (YAML text, fence line, context) -> HTML.
BlockHandler = Callable[[str, int, "PageContext"], str]


class Figures(Protocol):
    """What the extensions and block handlers may ask of the page renderer."""

    def figure_html(self, embed: AtlasEmbed, ctx: PageContext) -> str:
        """One viewer's figure (``partials/atlas-figure.html``)."""
        ...

    def figure_context(self, embed: AtlasEmbed, ctx: PageContext, **extra: Any) -> dict[str, Any]:
        """What ``partials/atlas-figure.html`` needs for one viewer."""
        ...

    def caption_html(self, text: str, ctx: PageContext) -> Any:
        """Markdown (a caption of the page ``ctx`` describes) -> trusted HTML."""
        ...

    def render_partial(self, name: str, **context: Any) -> str:
        """A template that renders part of a page (figures, tables)."""
        ...

    @property
    def experiments(self) -> Mapping[tuple[str, str], Any]:
        """Computed patch experiments by (publication, id)."""
        ...


@dataclass
class PageContext:
    """What the extensions need about a page, and what they found in it.

    Attributes:
        page: the page being converted.
        bib: the publication's BibTeX entries.
        atlases: every atlas of the site by id.
        url_map: content-relative Markdown path -> output path (both POSIX, from the root).
        figures: the page renderer's figures, captions and partial templates.
        citations: cited keys in order of first citation (number = index + 1).
        embeds: the page's embeds by figure id.
        extra_refs: links found outside the HTML (tour captions inside JSON).
        originals: rewritten href -> href as written (to find its source line).
        queries: answers tour stops given as data queries (None: no atlas data).
    """

    page: Page
    bib: dict[str, Entry]
    atlases: dict[str, AtlasFacts]
    url_map: dict[str, str]
    figures: Figures
    citations: list[str] = field(default_factory=list)
    embeds: dict[str, AtlasEmbed] = field(default_factory=dict)
    extra_refs: list[str] = field(default_factory=list)
    originals: dict[str, str] = field(default_factory=dict)
    queries: TourQueries | None = None

    def line_of(self, needle: str) -> int | None:
        """The first source line containing ``needle``, or None."""
        index = self.page.text.find(needle)
        return None if index < 0 else self.page.text.count("\n", 0, index) + 1

    def where(self, needle: str | None = None, line: int | None = None) -> str:
        line = line or (self.line_of(needle) if needle else None)
        return where_at(self.page.source, line)

    def page_link(self, target_url: str) -> str:
        """A relative link from this page to another output path (index pages as folders)."""
        rel = posixpath.relpath(target_url, posixpath.dirname(self.page.url) or ".")
        if rel == "index.html" or rel.endswith("/index.html"):
            rel = rel[: -len("index.html")] or "./"
        elif target_url.endswith("/") and not rel.endswith("/"):
            rel += "/"  # folders keep their slash (prefixes such as OpenSeadragon's images)
        return rel


def _context(md: Markdown) -> PageContext:
    """The context of the page ``md`` is converting (:meth:`PageMarkdown.convert`)."""
    for extension in md.registeredExtensions:
        if isinstance(extension, SiteExtension) and extension.context is not None:
            return extension.context
    raise RuntimeError("convert pages with PageMarkdown.convert(text, ctx)")


_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")


class AtlasBlockPreprocessor(Preprocessor):
    """Replaces top-level ```` ```atlas ```` blocks by their figure, and registered blocks by
    what their handler renders (stashed raw HTML)."""

    def __init__(self, md: Markdown, blocks: Mapping[str, BlockHandler]) -> None:
        super().__init__(md)
        self.blocks = dict(blocks)

    def run(self, lines: list[str]) -> list[str]:
        ctx = _context(self.md)
        out: list[str] = []
        index = 0
        while index < len(lines):
            match = _FENCE.match(lines[index])
            if not match:
                out.append(lines[index])
                index += 1
                continue
            fence = match.group("fence")
            end = index + 1
            while end < len(lines) and not (
                lines[end].strip().startswith(fence) and not lines[end].strip().strip(fence[0])
            ):
                end += 1
            info = match.group("info")
            if info != "atlas" and info not in self.blocks:  # another fenced block: keep it
                out.extend(lines[index : end + 1])
                index = end + 1
                continue
            line = ctx.page.body_line + index
            if end >= len(lines):
                raise ContentError(
                    f"the {info} block is not closed",
                    where=ctx.where(line=line),
                    expected=f"a line {fence} after the block's YAML",
                    fix=f"add a line containing only {fence}",
                )
            text = "\n".join(lines[index + 1 : end])
            if info == "atlas":
                html = self._atlas(ctx, text, line)
            else:
                html = self.blocks[info](text, line, ctx)
            out.extend(["", self.md.htmlStash.store(html), ""])
            index = end + 1
        return out

    @staticmethod
    def _atlas(ctx: PageContext, text: str, line: int) -> str:
        embed = parse_embed(
            text, source=str(ctx.page.source), line=line, atlases=ctx.atlases, queries=ctx.queries
        )
        add_embed(ctx, embed)
        return ctx.figures.figure_html(embed, ctx)


def add_embed(ctx: PageContext, embed: AtlasEmbed) -> None:
    """Record a viewer of the page (the target of ``#atlas:<figure>`` links); ids are unique."""
    if embed.figure in ctx.embeds:
        raise ContentError(
            f"two atlas figures on this page have the id {embed.figure!r}",
            where=ctx.where(line=embed.line),
            expected="a unique figure id per embed",
            fix="add 'figure: <another id>' to one of the blocks",
        )
    ctx.embeds[embed.figure] = embed


class CitationProcessor(InlineProcessor):
    """``[@key]`` or ``[@a; @b]`` -> ``[1]`` / ``[1, 2]`` linked to the reference list."""

    PATTERN = r"\[(@[\w:.\-/]+(?:\s*[;,]\s*@[\w:.\-/]+)*)\]"

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        ctx = _context(self.md)
        keys = [k.strip().lstrip("@") for k in re.split(r"[;,]", m.group(1))]
        span = etree.Element("span", {"class": "citation"})
        span.text = "["
        for position, key in enumerate(keys):
            entry = ctx.bib.get(key)
            if entry is None:
                guess = closest(key, ctx.bib)
                raise ContentError(
                    f"unknown citation key {key!r}"
                    + (f" (did you mean {guess!r}?)" if guess else ""),
                    where=ctx.where(f"@{key}"),
                    expected="a key of the publication's .bib file(s)"
                    + ("" if ctx.bib else " (this publication has no .bib file)"),
                    fix=f"cite [@{guess}]"
                    if guess
                    else "add the entry to a .bib file beside the page",
                )
            if key not in ctx.citations:
                ctx.citations.append(key)
            link = etree.SubElement(
                span,
                "a",
                {"href": f"#ref-{key}", "role": "doc-biblioref", "title": entry_text(entry)},
            )
            link.text = str(ctx.citations.index(key) + 1)
            link.tail = ", " if position < len(keys) - 1 else "]"
        return span, m.start(0), m.end(0)


class PageTreeprocessor(Treeprocessor):
    """Margin notes, figures, and link rewriting/validation (after inline processing)."""

    def run(self, root: etree.Element) -> None:
        ctx = _context(self.md)
        pairs = [(parent, child) for parent in root.iter() for child in parent]
        for parent, child in pairs:  # collected first: the loop replaces elements
            if child.tag == "blockquote":
                self._margin_note(parent, list(parent).index(child), child)
            elif child.tag == "p":
                self._figure(parent, list(parent).index(child), child)
        for element in root.iter("a"):
            href = element.get("href")
            if href:
                self._link(ctx, element, href)

    @staticmethod
    def _margin_note(parent: etree.Element, index: int, quote: etree.Element) -> None:
        first = quote[0] if len(quote) else None
        if first is None or first.tag != "p" or not (first.text or "").startswith("[!margin]"):
            return
        first.text = (first.text or "")[len("[!margin]") :].lstrip()
        aside = etree.Element("aside", {"class": "margin-note"})
        aside.text, aside.tail = quote.text, quote.tail
        aside.extend(list(quote))
        if not (first.text or "").strip() and not len(first):
            aside.remove(first)
        parent.remove(quote)
        parent.insert(index, aside)

    @staticmethod
    def _figure(parent: etree.Element, index: int, para: etree.Element) -> None:
        if len(para) != 1 or para[0].tag != "img" or (para.text or "").strip():
            return
        image = para[0]
        if (image.tail or "").strip():
            return
        classes = image.attrib.pop("class", "")
        figure = etree.Element("figure", {"class": " ".join(["figure", *classes.split()])})
        figure.tail = para.tail
        image.tail = None
        figure.append(image)
        caption = image.get("title")
        if caption:
            image.attrib.pop("title")
            etree.SubElement(figure, "figcaption").text = caption
        parent.remove(para)
        parent.insert(index, figure)

    @staticmethod
    def _link(ctx: PageContext, element: etree.Element, href: str) -> None:
        if href.startswith("#atlas:"):
            _atlas_link(ctx, element, href)
            return
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.endswith(".md"):
            return
        base = posixpath.dirname(ctx.page.rel)
        target = posixpath.normpath(posixpath.join(base, parts.path))
        url = ctx.url_map.get(target)
        if url is not None:
            new = ctx.page_link(url) + (f"#{parts.fragment}" if parts.fragment else "")
            ctx.originals[new] = href
            element.set("href", new)


def _atlas_link(ctx: PageContext, element: etree.Element, href: str) -> None:
    """``#atlas:<figure>[?xywh=x,y,w,h]`` -> a link carrying the figure and rectangle."""
    figure, _, query = href[len("#atlas:") :].partition("?")
    embed = ctx.embeds.get(figure)
    if embed is None:
        guess = closest(figure, ctx.embeds)
        raise ContentError(
            f"the link {href!r} names no atlas figure on this page"
            + (f" (did you mean {guess!r}?)" if guess else ""),
            where=ctx.where(href),
            expected="#atlas:<figure id>?xywh=x,y,w,h where the figure is an atlas block above"
            " or below on the same page (its 'figure' key, else its atlas id)",
            got=figure,
            fix=f"use #atlas:{guess}" if guess else "add an atlas block with that figure id",
        )
    facts = ctx.atlases[embed.atlas]
    rect: Any = embed.view or (0, 0, facts.width, facts.height)
    if query:
        values = parse_xywh(query)
        rect = check_rect(values, facts) if values else None
        if rect is None:
            raise ContentError(
                "the link's rectangle is invalid",
                where=ctx.where(href),
                expected=f"?xywh=x,y,w,h inside the {facts.width}x{facts.height} px atlas,"
                " w and h > 0",
                got=query,
                fix="correct the four numbers (image pixels of the atlas)",
            )
    element.set("href", f"#{figure}")
    element.set("class", " ".join(filter(None, [element.get("class"), "atlas-link"])))
    element.set("data-atlas-figure", figure)
    element.set("data-atlas-rect", ",".join(f"{v:g}" for v in rect))


#: Typographic replacements, in order: dashes, ellipses, then quotes by their left context.
_TYPOGRAPHY = [
    (re.compile(r"---"), "\u2014"),
    (re.compile(r"--"), "\u2013"),
    (re.compile(r"\.\.\."), "\u2026"),
    (re.compile(r'(^|[\s(\[{\u2014\u2013-])"'), "\\1\u201c"),
    (re.compile(r'"'), "\u201d"),
    (re.compile(r"(^|[\s(\[{\u2014\u2013-])'"), "\\1\u2018"),
    (re.compile(r"'"), "\u2019"),
]

#: Elements whose text is code or data, never typeset.
_LITERAL = {"code", "pre", "kbd", "samp", "script", "style", "math"}


class TypographyTreeprocessor(Treeprocessor):
    """Curly quotes, apostrophes, en/em dashes and ellipses in text (not in code).

    The job of Python-Markdown's ``smarty`` extension at a fraction of its cost: one pass of
    a few regular expressions over each text node instead of inline patterns tried at every
    character position (smarty was ~60% of the conversion time of a long article).
    """

    def run(self, root: etree.Element) -> None:
        self.previous = " "  # the last character of text before the current node
        self._typeset(root)

    def _text(self, text: str) -> str:
        # A quote's direction depends on the character before it, possibly in another node.
        opener = self.previous.isspace() or self.previous in "([{\u2014\u2013-"
        typeset = _typeset_text((" " if opener else "a") + text)[1:]
        self.previous = text[-1]
        return typeset

    def _typeset(self, element: etree.Element) -> None:
        if element.tag in _LITERAL:
            self.previous = (element.text or " ")[-1:] or " "
            return
        if element.tag in ("p", "li", "h1", "h2", "h3", "h4", "td", "th", "figcaption"):
            self.previous = " "  # a new block of text
        if element.text:
            element.text = self._text(element.text)
        for child in element:
            self._typeset(child)
            if child.tail:
                child.tail = self._text(child.tail)


def _typeset_text(text: str) -> str:
    if not any(c in text for c in "-.\"'"):
        return text
    for pattern, replacement in _TYPOGRAPHY:
        text = pattern.sub(replacement, text)
    return text


class SiteExtension(Extension):
    """Registers the site's processors (priorities relative to Python-Markdown's own)."""

    def __init__(
        self, *, embeds: bool = True, blocks: Mapping[str, BlockHandler] | None = None
    ) -> None:
        super().__init__()
        self.embeds = embeds
        self.blocks = dict(blocks or {})
        self.context: PageContext | None = None  # the page being converted

    def extendMarkdown(self, md: Markdown) -> None:
        md.registerExtension(self)
        if self.embeds:  # before fenced_code (25) so atlas blocks are not code blocks
            block = AtlasBlockPreprocessor(md, self.blocks)
            md.preprocessors.register(block, "atlas_block", 28)
        # before links (160) and references (170): [@key] is not a link
        md.inlinePatterns.register(CitationProcessor(CitationProcessor.PATTERN, md), "cite", 175)
        # after inline (20) and attr_list (8: {.wide} is parsed), before smarty (6) and toc (5)
        md.treeprocessors.register(PageTreeprocessor(md), "atlas_page", 7)
        md.treeprocessors.register(TypographyTreeprocessor(md), "typography", 6)


#: Python-Markdown's built-in extensions the site uses.
BUILTIN_EXTENSIONS = [
    "tables",
    "fenced_code",
    "footnotes",
    "attr_list",
    "md_in_html",
    "sane_lists",
]


class PageMarkdown:
    """A Markdown converter with the site's extensions; one converts every page of a build.

    ``embeds=False`` makes the converter for captions: no atlas blocks, no heading anchors.
    ``blocks`` registers handlers of fenced blocks besides ``atlas`` by info string.
    """

    def __init__(
        self, *, embeds: bool = True, blocks: Mapping[str, BlockHandler] | None = None
    ) -> None:
        self.extension = SiteExtension(embeds=embeds, blocks=blocks)
        extensions: list[Any] = [*BUILTIN_EXTENSIONS, self.extension]
        configs: dict[str, Any] = {"footnotes": {"BACKLINK_TITLE": "Back to the text"}}
        if embeds:
            extensions.append("toc")
            configs["toc"] = {
                "permalink": "#",
                "permalink_title": "Link to this section",
                "toc_depth": "2-3",
            }
        self.md = Markdown(extensions=extensions, extension_configs=configs, output_format="html")

    def convert(self, text: str, ctx: PageContext) -> str:
        """``text`` (Markdown of the page ``ctx`` describes) -> HTML; ``ctx`` collects what
        the page holds (embeds, citations, links)."""
        self.md.reset()
        outer, self.extension.context = self.extension.context, ctx
        try:
            return self.md.convert(text)
        except RecursionError:
            # Python-Markdown recurses once per level of lists, quotes and emphasis
            raise ContentError(
                "the Markdown is nested too deeply to convert",
                where=str(ctx.page.source),
                expected="lists, block quotes, emphasis and links nested at most a few dozen"
                " levels (Python's recursion limit stops Python-Markdown at ~100-300)",
                fix="flatten the nesting (a list inside a list inside a list ... is the usual"
                " cause)",
            ) from None
        finally:
            self.extension.context = outer

    @property
    def toc_tokens(self) -> list[dict[str, Any]]:
        """The headings of the last page converted (the toc extension's tokens)."""
        return list(getattr(self.md, "toc_tokens", []))
