"""Pages -> HTML: Markdown through the site's extensions, then a Jinja template.

Templates come from ``templates/`` (the defaults) with ``[paths] templates`` searched first, so
a project overrides any template or static file by putting one with the same name there.
Everything from data (titles, captions, labels) is escaped by Jinja's autoescaping; Markdown
bodies and captions are trusted HTML (authors may write raw HTML).
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from generator import __version__
from generator.bundle import AtlasBundle
from generator.cache import bytes_digest, file_digest
from generator.config import Config
from generator.errors import ContentError
from generator.site.atlases import AtlasFacts
from generator.site.bibtex import Entry, format_entry
from generator.site.blocks.annotations import tour_annotations
from generator.site.blocks.embeds import AtlasEmbed, script_json
from generator.site.blocks.layers_block import render_layers
from generator.site.blocks.patch_results_block import render_patch_results
from generator.site.blocks.tour import numbers, stop_config
from generator.site.blocks.tourquery import TourQueries
from generator.site.content import Page
from generator.site.links import scan_html
from generator.site.mdext import BlockHandler, PageContext, PageMarkdown

#: The default templates and static files shipped with the generator.
TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"

#: Names templates use for static files (the values are output paths).
STATIC_NAMES = {
    "css": "static/site.css",
    "favicon": "static/favicon.svg",
    "js": "static/site.js",
    "viewer_css": "static/atlas-viewer.css",
    "viewer_js": "static/atlas-viewer.js",
    "osd": "static/openseadragon/openseadragon.min.js",
}

#: Template per page kind.
TEMPLATE_OF = {"site": "site.html", "publication": "publication.html", "article": "article.html"}


@dataclass(frozen=True)
class RenderedPage:
    """A page's HTML and what the link check needs from it.

    Attributes:
        url: output path (site-root relative).
        html: the whole document.
        ids: element ids in the document (link targets).
        refs: (href or src as written in the output, source line or None) for every link.
        source: the Markdown file (for messages).
    """

    url: str
    html: str
    ids: tuple[str, ...]
    refs: tuple[tuple[str, int | None], ...]
    source: str


def template_dirs(config: Config) -> list[Path]:
    """Template folders, most specific first."""
    dirs = [config.paths.templates] if config.paths.templates.is_dir() else []
    return [*dirs, TEMPLATES]


#: A relative module specifier of an ES module: ``import ... from "./x.js"``, ``import "./x.js"``,
#: ``export ... from "./x.js"`` or ``import("./x.js")``.
_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*(["'])(\.\.?/[^"'\s]+?\.js)\1""")


def module_graph(url: str, source_of: Callable[[str], Path | None]) -> dict[str, Path]:
    """``url`` and every module it imports by a relative URL, transitively: output path -> source.

    ``source_of`` gives the source of an output path (None: no such file, left out). Only
    ``.js`` files are read for imports.
    """
    first = source_of(url)
    graph: dict[str, Path] = {url: first} if first else {}
    todo = [url] if first else []
    while todo:
        module = todo.pop()
        if not module.endswith(".js"):
            continue
        text = graph[module].read_text(encoding="utf-8", errors="replace")
        for match in _IMPORT.finditer(text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(module), match.group(2)))
            source = source_of(target) if target not in graph else None
            if source is not None:
                graph[target] = source
                todo.append(target)
    return graph


def module_digest(graph: dict[str, Path]) -> str:
    """The version of a module graph's first file (8 hex digits): the file's own digest when
    it imports nothing, else a digest over every file of the graph."""
    if len(graph) == 1:
        return file_digest(next(iter(graph.values())), 8)
    lines = [f"{url} {file_digest(path)}" for url, path in sorted(graph.items())]
    return bytes_digest("\n".join(lines).encode(), 8)


def versioned(url: str, static: Mapping[str, Path]) -> str:
    """``static/x.css?v=<digest>``: browsers refetch a static file only when it changed.

    ``static`` is the build's static files, output path -> source
    (:func:`generator.site.output.static_sources`: a project's templates folder first), the
    one place modules are found. The digest of a JavaScript module covers the modules it
    imports by relative URL too (:func:`module_graph`), so a page that loads the viewer's
    entry module changes, and is rendered again with a new import map, whenever any of the
    viewer's modules does.
    """
    return f"{url}?v={module_digest(module_graph(url, static.get))}"


def import_map(entry: str, static: Mapping[str, Path]) -> dict[str, str]:
    """Every module the ES module ``entry`` (an output path) imports, transitively -> its
    versioned URL (:func:`versioned`: ``static/x.js?v=<digest of x.js and what it imports>``).

    A page holds this as its import map, so that the viewer's plain relative imports
    (``import ... from "./x.js"``) fetch versioned URLs: browsers refetch exactly the modules
    that changed, and nobody keeps a table of digests.
    """
    graph = module_graph(entry, static.get)
    return {url: versioned(url, static) for url in sorted(graph) if url != entry}


def format_date(date: dt.date | str | None) -> str:
    """``2019-03-06`` -> ``March 6, 2019`` (English, independent of the machine's locale)."""
    if not date:
        return ""
    if isinstance(date, str):
        date = dt.date.fromisoformat(date)
    months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
    return f"{months[date.month - 1]} {date.day}, {date.year}"


#: The fenced blocks besides ``atlas``, registered with the page converter.
BLOCKS: dict[str, BlockHandler] = {
    "atlas-layers": render_layers,
    "patch-results": render_patch_results,
}


class Renderer:
    """Converts pages with one Markdown instance and one Jinja environment per build."""

    def __init__(
        self,
        config: Config,
        atlases: dict[str, AtlasFacts],
        url_map: dict[str, str],
        static: Mapping[str, Path],
        bundles: dict[str, AtlasBundle] | None = None,
        experiments: dict[tuple[str, str], Path] | None = None,
    ) -> None:
        self.config = config
        self.queries = TourQueries(bundles or {})
        #: ``results.json`` of each computed experiment by (publication, experiment id).
        self.experiments = dict(experiments or {})
        self.atlases = atlases
        self.url_map = url_map
        #: Template name -> versioned URL of each static file templates use.
        self.static_urls = {
            name: versioned(url, static) for name, url in STATIC_NAMES.items() if url in static
        }
        #: The viewer's modules -> their versioned URLs (the import map of pages with atlases).
        viewer = STATIC_NAMES["viewer_js"]
        self.modules = import_map(viewer, static) if viewer in static else {}
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in template_dirs(config)]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["date_text"] = format_date
        self.md = PageMarkdown(blocks=BLOCKS)
        self.caption_md = PageMarkdown(embeds=False)

    def render(self, page: Page, nav: dict[str, Any], bib: dict[str, Entry]) -> RenderedPage:
        """Markdown -> body HTML -> the page template; collects ids and links."""
        ctx = PageContext(
            page=page,
            bib=bib,
            atlases=self.atlases,
            url_map=self.url_map,
            figures=self,
            queries=self.queries,
        )
        body = self.md.convert(page.body, ctx)
        toc = self.md.toc_tokens
        references = [
            {"key": key, "number": number, "html": format_entry(bib[key])}
            for number, key in enumerate(ctx.citations, start=1)
        ]
        link = ctx.page_link
        html = self._template(TEMPLATE_OF[page.kind]).render(
            site=self.config.site,
            page=page,
            meta=page.meta,
            body=Markup(body),
            toc=toc,
            references=references,
            nav=nav,
            link=link,
            static={name: link(url) for name, url in self.static_urls.items()},
            importmap={"imports": {link(url): link(v) for url, v in self.modules.items()}},
            has_atlas=bool(ctx.embeds),
            canonical=self.canonical(page.url),
            generator=f"atlas {__version__}",
        )
        ids, hrefs = scan_html(html)
        lines = {ref: ctx.line_of(ctx.originals.get(ref, ref)) for ref in {*hrefs, *ctx.extra_refs}}
        refs = tuple((ref, lines[ref]) for ref in dict.fromkeys([*hrefs, *ctx.extra_refs]))
        return RenderedPage(page.url, html, tuple(ids), refs, str(page.source))

    def render_template(self, name: str, **context: Any) -> str:
        """Render a template that is not a page (the 404 page)."""
        return self._template(name).render(
            site=self.config.site, generator=f"atlas {__version__}", **context
        )

    def _template(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateSyntaxError as err:
            raise ContentError(
                f"template syntax error: {err.message}",
                where=f"{err.filename}:{err.lineno}",
                fix="fix the template (https://jinja.palletsprojects.com/templates/)",
            ) from err
        except jinja2.TemplateNotFound as err:
            raise ContentError(
                f"template {err.name!r} not found",
                where=" or ".join(str(d) for d in template_dirs(self.config)),
                fix="restore the template, or remove the override that includes it",
            ) from err

    def canonical(self, url: str) -> str:
        """The absolute URL of an output path (``index.html`` shown as its folder)."""
        if url == "index.html" or url.endswith("/index.html"):
            url = url[: -len("index.html")]
        return self.config.site.site_url + url

    def _caption(self, text: str, ctx: PageContext) -> str:
        return self.caption_md.convert(text, ctx)

    def figure_context(self, embed: AtlasEmbed, ctx: PageContext, **extra: Any) -> dict[str, Any]:
        """What ``partials/atlas-figure.html`` needs for one viewer (``extra`` joins the
        viewer's JSON configuration: a layers figure's ``flip`` and ``group``)."""
        facts = self.atlases[embed.atlas]
        folder = ctx.page_link(facts.url)
        stops, captions = [], []
        for number, stop in enumerate(embed.tour, start=1):
            caption = self._caption(stop.caption, ctx) if stop.caption else ""
            ctx.extra_refs.extend(scan_html(caption)[1])
            captions.append(caption)
            stops.append(stop_config(stop, caption, number))
        config = {
            "atlas": embed.atlas,
            "manifest": posixpath.join(folder, "viewer.json"),
            "view": numbers(embed.view) if embed.view else None,
            "tour": stops,
            "scroll": embed.scroll,
            **extra,
        }
        annotations = None
        if embed.tour:
            source = posixpath.join(folder, "atlas.dzi")
            doc = tour_annotations(embed.figure, facts.title, source, list(embed.tour), captions)
            annotations = Markup(script_json(doc))
        return {
            "embed": embed,
            "facts": facts,
            "folder": folder,
            "stops": [{**stop, "caption": Markup(stop["caption"])} for stop in stops],
            "caption": Markup(self._caption(embed.caption, ctx)) if embed.caption else "",
            "config_json": Markup(script_json(config)),
            "annotations_json": annotations,
        }

    def caption_html(self, text: str, ctx: PageContext) -> Markup:
        """Markdown (a caption of the page ``ctx`` describes) -> trusted HTML."""
        return Markup(self._caption(text, ctx))

    def render_partial(self, name: str, **context: Any) -> str:
        """A template that renders part of a page (figures, tables)."""
        return self._template(name).render(**context)

    def figure_html(self, embed: AtlasEmbed, ctx: PageContext) -> str:
        """One viewer's figure (``partials/atlas-figure.html``)."""
        template = self._template("partials/atlas-figure.html")
        return template.render(**self.figure_context(embed, ctx))
