"""End-to-end builds of a small project: output layout, relative URLs, escaping, incremental
rebuilds, determinism, strict mode, drafts, template overrides, output-folder safety."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sitekit import CONFIG, snapshot, write

from generator.config import Config
from generator.errors import ConfigError, ContentError
from generator.site.build import build
from generator.site.links import is_external, scan_html

ConfigOf = Callable[[Path], Config]


def test_full_build_writes_a_complete_site(project: Path, config_of: ConfigOf) -> None:
    report = build(config_of(project), log=None)
    site = project / "site"
    assert (report.pages, report.rendered, report.atlases) == (3, 3, 1)
    for rel in (
        ".nojekyll", ".atlas-build", "404.html", "index.html", "sitemap.xml", "feed.xml",
        "study/index.html", "study/first-look.html",
        "static/site.css", "static/site.js", "static/atlas-viewer.js", "static/atlas-viewer.css",
        "static/openseadragon/openseadragon.min.js", "static/openseadragon/images/home_rest.png",
        "atlases/grid/viewer.json", "atlases/grid/atlas.dzi", "atlases/grid/fallback.jpg",
        "atlases/grid/cells-10.json",
    ):  # fmt: skip
        assert (site / rel).is_file(), rel
    assert not (site / "study/images/grid.png").exists()  # atlas sources are not copied
    files = [p for p in site.rglob("*") if p.is_file()]
    assert report.files == len(files)
    assert report.bytes == sum(p.stat().st_size for p in files)
    assert json.loads((site / "atlases/grid/viewer.json").read_text())["width"] == 320

    article = (site / "study/first-look.html").read_text()
    assert '<li id="ref-carter2019">Shan Carter and Chris Olah.' in article
    assert 'data-atlas-rect="0,0,64,64"' in article
    assert '<a href="./">The study</a>' in article
    assert '"manifest":"../atlases/grid/viewer.json"' in article
    assert 'src="../atlases/grid/fallback.jpg"' in article
    assert "static/openseadragon/openseadragon.min.js?v=" in article
    index = (site / "index.html").read_text()
    assert '<a href="study/">The study</a>' in index
    assert "atlas-viewer.js" not in index  # pages without atlases load no viewer


def test_every_url_in_every_page_is_relative(project: Path, config_of: ConfigOf) -> None:
    build(config_of(project), log=None)
    site = project / "site"
    for page in site.rglob("*.html"):
        if page.name == "404.html":
            continue  # served at any depth: links home with the absolute site_url
        _, refs = scan_html(page.read_text())
        for ref in refs:
            assert not ref.startswith("/"), (page, ref)
            if ref.startswith("https://example.org/"):
                continue  # the canonical link, checked below
            assert not is_external(ref) or ref.startswith("https://doi.org"), (page, ref)
        head = page.read_text().split("</head>")[0]
        absolute = re.findall(r'href="(https?://[^"]+)"', head)
        assert absolute == [f"https://example.org/repo/{_canonical(page, site)}"]


def _canonical(page: Path, site: Path) -> str:
    rel = page.relative_to(site).as_posix()
    return rel[: -len("index.html")] if rel.endswith("index.html") else rel


def test_data_is_escaped_in_html_attributes_and_json(project: Path, config_of: ConfigOf) -> None:
    evil = "</script><script>alert(\"x\")</script> & 'q'"
    atlases = project / "content/study/atlases.toml"
    atlases.write_text(atlases.read_text().replace('"A test grid"', json.dumps(evil)))
    article = project / "content/study/first-look.md"
    text = article.read_text().replace('caption: "A corner."', "caption: '</script><b>x</b>'")
    article.write_text(text.replace("title: First look", 'title: "<i>First</i> & look"'))
    build(config_of(project), log=None)
    html = (project / "site/study/first-look.html").read_text()
    assert "<script>alert" not in html
    assert 'aria-label="Atlas viewer: &lt;/script&gt;&lt;script&gt;alert(&#34;x&#34;)' in html
    assert "<h1>&lt;i&gt;First&lt;/i&gt; &amp; look</h1>" in html
    config = re.search(r'class="atlas-config">(.*?)</script>', html)
    assert config is not None
    assert json.loads(config.group(1))["tour"][0]["caption"] == "<p></script><b>x</b></p>"
    viewer = json.loads((project / "site/atlases/grid/viewer.json").read_text())
    assert viewer["title"] == evil  # JSON is data: escaped by the viewer (textContent)


def test_incremental_rebuilds_only_what_changed(
    project: Path, config_of: ConfigOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of(project)
    build(config, log=None)
    import generator.tiles

    def no_recut(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged atlas was published again")

    monkeypatch.setattr(generator.tiles, "publish_atlas", no_recut)
    monkeypatch.setattr(generator.tiles, "bundle_from_image", no_recut)
    assert build(config, log=None).rendered == 0

    second = project / "content/study/second.md"
    write(second, "---\ntitle: Second\norder: 2\n---\n\nMore.\n")
    # the new page, its publication index (lists it), its neighbour (links to it) and the
    # site index (counts articles)
    assert build(config, log=None).rendered == 4
    article = project / "content/study/first-look.md"
    article.write_text(article.read_text().replace("## Overview", "## Overview, revised"))
    assert build(config, log=None).rendered == 1
    assert "Overview, revised" in (project / "site/study/first-look.html").read_text()

    (project / "site/study/second.html").write_text("tampered")
    assert build(config, log=None).rendered == 1  # outputs are verified, not trusted
    monkeypatch.undo()
    tile = sorted((project / "site/atlases/grid/atlas_files").rglob("*.png"))[-1]
    tile.unlink()
    build(config, log=None)  # a damaged atlas folder is published again, not reused
    assert tile.is_file()
    shutil.rmtree(project / "site")
    assert build(config, log=None).rendered == 4  # no previous output: everything again


def test_builds_are_deterministic(project: Path, config_of: ConfigOf) -> None:
    build(config_of(project), log=None)
    first = snapshot(project / "site")
    shutil.rmtree(project / "site")
    shutil.rmtree(project / ".atlas-cache")
    build(config_of(project), log=None)
    assert snapshot(project / "site") == first


def test_strict_fails_on_warnings_and_lenient_reports_them(
    project: Path, config_of: ConfigOf
) -> None:
    article = project / "content/study/first-look.md"
    article.write_text(article.read_text().replace("order: 1", "order: 1\ntags: [x]"))
    messages: list[str] = []
    report = build(config_of(project), log=messages.append)
    assert any("unknown front matter key 'tags'" in m for m in messages)
    assert len(report.warnings) == 1
    with pytest.raises(ConfigError, match=r"1 warning\(s\) and --strict"):
        build(config_of(project), strict=True, log=None)


def test_drafts_are_left_out_unless_asked(project: Path, config_of: ConfigOf) -> None:
    write(project / "content/study/wip.md", "---\ntitle: WIP\ndraft: true\n---\n\nSoon.\n")
    build(config_of(project), log=None)
    assert not (project / "site/study/wip.html").exists()
    build(config_of(project), include_drafts=True, log=None)
    assert (project / "site/study/wip.html").exists()
    index = project / "content/index.md"
    index.write_text(index.read_text() + "\nSee [the draft](study/wip.md).\n")
    with pytest.raises(ContentError, match=r"study/wip\.md"):
        build(config_of(project), log=None)


def test_template_overrides_and_template_errors(project: Path, config_of: ConfigOf) -> None:
    write(
        project / "overrides/site.html",
        '{% extends "base.html" %}{% block main %}<p id="custom">{{ site.title }}</p>{% endblock %}',
    )
    write(project / "overrides/static/site.css", "body { color: red; }")
    build(config_of(project), log=None)
    assert '<p id="custom">Test site</p>' in (project / "site/index.html").read_text()
    assert (project / "site/static/site.css").read_text() == "body { color: red; }"
    write(project / "overrides/site.html", "{% block main %}")
    with pytest.raises(ContentError, match="template syntax error") as info:
        build(config_of(project), log=None)
    assert "overrides/site.html:1" in (info.value.where or "")


def test_output_folder_must_be_its_own(project: Path, config_of: ConfigOf) -> None:
    config_file = project / "atlas.toml"
    config_file.write_text(config_file.read_text() + '\n[paths]\noutput = "."\n')
    with pytest.raises(ConfigError, match="would replace the project"):
        build(config_of(project), log=None)
    config_file.write_text(config_file.read_text().replace('output = "."', 'output = "docs"'))
    write(project / "docs/notes.txt", "keep me")
    with pytest.raises(ConfigError, match="did not build"):
        build(config_of(project), log=None)
    assert (project / "docs/notes.txt").read_text() == "keep me"


def test_citations_on_a_publication_index_get_its_reference_list(
    project: Path, config_of: ConfigOf
) -> None:
    index = project / "content/study/index.md"
    index.write_text(index.read_text() + "\nAs in the original article [@carter2019].\n")
    build(config_of(project), log=None)  # the #ref-carter2019 link resolves on the index page
    page = (project / "site/study/index.html").read_text()
    assert 'href="#ref-carter2019"' in page
    assert re.search(
        r'<li id="ref-carter2019">Shan Carter and Chris Olah\. .*Activation Atlas', page
    )
    assert page.index('id="references"') < page.index('id="articles-title"')
    assert 'id="references"' in (project / "site/study/first-look.html").read_text()
    assert 'id="references"' not in (project / "site/index.html").read_text()  # no citations


def test_navigation_is_made_once_per_build_not_once_per_page(tmp_path: Path, monkeypatch) -> None:
    """A rebuild stays linear in the pages: each page's navigation item is made once (it was
    made again for every page of its publication: 18 s for a no-change rebuild of 2,000)."""
    from generator.site import build as build_module
    from generator.site.content import gather_content

    root = tmp_path / "p"
    write(root / "atlas.toml", CONFIG)
    for n in range(40):
        write(
            root / f"content/pub/a{n:02d}.md", f"---\ntitle: A{n}\norder: {n}\n---\n\nText {n}.\n"
        )
    write(root / "content/pub/index.md", "---\ntitle: Pub\n---\n\nThe publication.\n")
    calls = []
    original = build_module.Navigation.item
    monkeypatch.setattr(
        build_module.Navigation, "item", staticmethod(lambda p: calls.append(p) or original(p))
    )
    content = gather_content(root / "content")
    navigation = build_module.Navigation(content)
    pages = [content.publications[0].index, *content.publications[0].articles]
    navs = [navigation.of(page) for page in pages]
    assert len(calls) == 40 + 2  # every article, and the publication's index twice
    nav, key = navs[5]
    assert nav["prev"]["title"] == "A3" and nav["next"]["title"] == "A5"  # articles 0-based
    assert [a["title"] for a in nav["articles"]] == [f"A{n}" for n in range(40)]
    assert key["articles"] == navs[6][1]["articles"] and isinstance(key["articles"], str)
