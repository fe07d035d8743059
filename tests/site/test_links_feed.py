"""Link resolution and checking; sitemap and Atom feed."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as etree

import pytest

from generator.config import SiteConfig
from generator.errors import ContentError
from generator.site.feed import FeedEntry, atom_feed, sitemap_xml
from generator.site.links import PageLinks, check_links, resolve, scan_html

FILES = {"index.html", "pub/index.html", "pub/a.html", "pub/img/x.png", "static/site.css"}


def test_scan_html_finds_ids_and_urls() -> None:
    ids, refs = scan_html(
        '<h2 id="top">T</h2><a name="old"></a><a href="a.html#x">a</a>'
        '<img src="i.png" srcset="i.png 1x, i@2x.png 2x"><link rel="stylesheet" href="s.css?v=1">'
    )
    assert ids == ["top", "old"]
    assert refs == ["a.html#x", "i.png", "i.png", "i@2x.png", "s.css?v=1"]
    ids, refs = scan_html(
        '<!-- <a href="commented.html"> --><p ID=\'x\' data-x="<no>">id="text"</p>'
        "<a href=b.html?a=1&amp;b=2>b</a><video poster='p.jpg' controls></video><br/>"
    )
    assert ids == ["x"]
    assert refs == ["b.html?a=1&b=2", "p.jpg"]


@pytest.mark.parametrize(
    ("page", "href", "target"),
    [
        ("pub/a.html", "../", "index.html"),
        ("pub/a.html", "./", "pub/index.html"),
        ("pub/a.html", "img/x.png", "pub/img/x.png"),
        ("pub/a.html", "../static/site.css?v=abc", "static/site.css"),
        ("pub/a.html", "#part", "pub/a.html"),
        ("index.html", "pub", "pub/index.html"),
        ("index.html", "pub/", "pub/index.html"),
        ("index.html", "/pub/a.html", "../pub/a.html"),
        ("pub/a.html", "../../x.html", "../x.html"),
    ],
)
def test_resolve(page: str, href: str, target: str) -> None:
    assert resolve(page, href, FILES)[0] == target


def test_check_links_reports_every_problem_with_file_line_and_hint() -> None:
    pages = {
        "pub/a.html": PageLinks(
            "content/pub/a.md",
            ["intro", "method"],
            [
                ("#intro", 3),
                ("#methods", 4),
                ("../index.html#nowhere", 5),
                ("img/y.png", 6),
                ("/pub/a.html", 7),
                ("https://example.org/missing", 8),
                ("mailto:a@b.c", 9),
            ],
        ),
        "index.html": PageLinks("content/index.md", ["top"], [("pub/a.html#method", None)]),
    }
    with pytest.raises(ContentError) as info:
        check_links(pages, FILES)
    message = info.value.message()
    assert "4 broken links" in message
    assert (
        "content/pub/a.md:4: '#methods': no anchor #methods in pub/a.html (did you mean #method?)"
        in message
    )
    assert "content/pub/a.md:5: '../index.html#nowhere': no anchor #nowhere" in message
    assert (
        "content/pub/a.md:6: 'img/y.png' points to a missing file 'pub/img/y.png' (did you mean 'img/x.png'?)"
        in message
    )
    assert "content/pub/a.md:7: '/pub/a.html' leaves the site" in message
    assert "example.org" not in message and "mailto" not in message


def test_valid_links_pass() -> None:
    check_links(
        {"pub/a.html": PageLinks("a.md", ["x"], [("#x", 1), ("../static/site.css", 2)])}, FILES
    )


SITE = SiteConfig("Site & co", "About <things>", ("Ada",), "https://e.org/repo/", "en")


def test_sitemap_and_feed_are_valid_xml_and_escaped() -> None:
    entries = [
        FeedEntry("https://e.org/repo/", "Home", "", None, ()),
        FeedEntry("https://e.org/repo/p/a.html", "A <b>", "x & y", dt.date(2020, 1, 2), ("Ada",)),
        FeedEntry("https://e.org/repo/p/b.html", "B", "", dt.date(2021, 5, 6), ()),
    ]
    sitemap = etree.fromstring(sitemap_xml(entries).encode())
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    assert [e.text for e in sitemap.findall("s:url/s:loc", ns)] == [e.url for e in entries]
    assert [e.text for e in sitemap.findall("s:url/s:lastmod", ns)] == ["2020-01-02", "2021-05-06"]

    text = atom_feed(SITE, entries, "https://e.org/repo/feed.xml")
    assert "A &lt;b&gt;" in text and "x &amp; y" in text
    feed = etree.fromstring(text.encode())
    atom = {"a": "http://www.w3.org/2005/Atom"}
    assert feed.findtext("a:title", namespaces=atom) == "Site & co"
    assert feed.findtext("a:updated", namespaces=atom) == "2021-05-06T00:00:00Z"
    assert [e.findtext("a:id", namespaces=atom) for e in feed.findall("a:entry", atom)] == [
        "https://e.org/repo/p/b.html",
        "https://e.org/repo/p/a.html",
    ]
    assert atom_feed(SITE, entries, "u") == text.replace("https://e.org/repo/feed.xml", "u")
