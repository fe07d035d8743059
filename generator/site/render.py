"""Pages -> HTML: Markdown through the site's extensions, then a Jinja template.

Templates come from ``templates/`` (the defaults) with ``[paths] templates`` searched first, so
a project overrides any template or static file by putting one with the same name there.
Everything from data (titles, captions, labels) is escaped by Jinja's autoescaping; Markdown
bodies and captions are trusted HTML (authors may write raw HTML).
"""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from generator import __version__
from generator.config import Config
from generator.errors import ContentError
from generator.site.atlases import AtlasFacts
from generator.site.bibtex import Entry, format_entry
from generator.site.content import Page
from generator.site.embeds import AtlasEmbed, script_json
from generator.site.links import scan_html
from generator.site.mdext import PageContext, make_markdown

#: The default templates and static files shipped with the generator.
TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"

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


class Renderer:
    """Converts pages with one Markdown instance and one Jinja environment per build."""

    def __init__(
        self,
        config: Config,
        atlases: dict[str, AtlasFacts],
        url_map: dict[str, str],
        static_urls: dict[str, str],
    ) -> None:
        self.config = config
        self.atlases = atlases
        self.url_map = url_map
        self.static_urls = static_urls
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in template_dirs(config)]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["date_text"] = format_date
        self.md = make_markdown()
        self.caption_md = make_markdown(embeds=False)

    def render(self, page: Page, nav: dict[str, Any], bib: dict[str, Entry]) -> RenderedPage:
        """Markdown -> body HTML -> the page template; collects ids and links."""
        ctx = PageContext(
            page=page,
            bib=bib,
            atlases=self.atlases,
            url_map=self.url_map,
            render_figure=self._figure,
            render_caption=self._caption,
        )
        self.md.reset()
        self.md.atlas_context = ctx
        self.caption_md.atlas_context = ctx
        body = self.md.convert(page.body)
        toc = getattr(self.md, "toc_tokens", [])
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

    def _caption(self, text: str) -> str:
        self.caption_md.reset()
        return self.caption_md.convert(text)

    def _figure(self, embed: AtlasEmbed, ctx: PageContext) -> str:
        facts = self.atlases[embed.atlas]
        folder = ctx.page_link(facts.url)
        stops = []
        for stop in embed.tour:
            caption = self._caption(stop.caption) if stop.caption else ""
            ctx.extra_refs.extend(scan_html(caption)[1])
            stops.append({"rect": _numbers(stop.rect), "caption": caption})
        config = {
            "atlas": embed.atlas,
            "manifest": posixpath.join(folder, "viewer.json"),
            "view": _numbers(embed.view) if embed.view else None,
            "tour": stops,
        }
        template = self._template("partials/atlas-figure.html")
        return template.render(
            embed=embed,
            facts=facts,
            folder=folder,
            caption=Markup(self._caption(embed.caption)) if embed.caption else "",
            config_json=Markup(script_json(config)),
        )


def _numbers(values: tuple[float, ...]) -> list[float | int]:
    """Whole numbers as ints (``[0, 0, 320, 320]``, not ``[0.0, ...]``) for readable JSON."""
    return [int(v) if float(v).is_integer() else v for v in values]
