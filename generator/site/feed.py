"""``sitemap.xml`` and the Atom feed (``feed.xml``): the only files with absolute URLs.

Both are deterministic: dates come from front matter, never from the clock, so rebuilding
unchanged content produces identical bytes.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as etree
from dataclasses import dataclass

from generator.config import SiteConfig

_ATOM = "http://www.w3.org/2005/Atom"
_SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"


@dataclass(frozen=True)
class FeedEntry:
    """One page as the sitemap and feed see it (``url`` absolute)."""

    url: str
    title: str
    description: str
    date: dt.date | None
    authors: tuple[str, ...]


def _xml(root: etree.Element) -> str:
    etree.indent(root, space=" ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + etree.tostring(root, "unicode") + "\n"


def sitemap_xml(entries: list[FeedEntry]) -> str:
    """A sitemap of every page (``lastmod`` from the page's date when it has one)."""
    root = etree.Element("urlset", {"xmlns": _SITEMAP})
    for entry in entries:
        url = etree.SubElement(root, "url")
        etree.SubElement(url, "loc").text = entry.url
        if entry.date:
            etree.SubElement(url, "lastmod").text = entry.date.isoformat()
    return _xml(root)


def _stamp(date: dt.date) -> str:
    return f"{date.isoformat()}T00:00:00Z"


def atom_feed(site: SiteConfig, entries: list[FeedEntry], feed_url: str) -> str:
    """An Atom 1.0 feed of the dated articles, newest first."""
    dated = sorted((e for e in entries if e.date), key=lambda e: (e.date, e.url), reverse=True)
    root = etree.Element("feed", {"xmlns": _ATOM, "xml:lang": site.language})
    etree.SubElement(root, "title").text = site.title
    if site.description:
        etree.SubElement(root, "subtitle").text = site.description
    etree.SubElement(root, "id").text = site.site_url
    etree.SubElement(root, "link", {"href": site.site_url})
    etree.SubElement(root, "link", {"rel": "self", "href": feed_url})
    newest = dated[0].date if dated and dated[0].date else dt.date(1970, 1, 1)
    etree.SubElement(root, "updated").text = _stamp(newest)
    author = etree.SubElement(root, "author")
    etree.SubElement(author, "name").text = ", ".join(site.authors) or site.title
    for entry in dated:
        assert entry.date is not None
        item = etree.SubElement(root, "entry")
        etree.SubElement(item, "title").text = entry.title
        etree.SubElement(item, "id").text = entry.url
        etree.SubElement(item, "link", {"href": entry.url})
        etree.SubElement(item, "updated").text = _stamp(entry.date)
        for name in entry.authors:
            etree.SubElement(etree.SubElement(item, "author"), "name").text = name
        if entry.description:
            etree.SubElement(item, "summary").text = entry.description
    return _xml(root)
