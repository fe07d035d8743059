"""``atlas build``: content -> validated pages and atlases -> a complete site, swapped in at once.

The build reads like its phases:

1. gather: config, publications, front matter, bibliographies, atlas and experiment specs,
   then compute (or find cached) every publication's bundles and experiments
   (:mod:`generator.site.compute`; a publication the machine cannot compute is left out, a
   notice in place of each of its pages, unless ``strict``);
2. plan every output path (two sources for one path is an error);
3. render every page (or reuse the previous HTML when nothing it depends on changed) and
   check every internal link and anchor;
4. only then write: a temporary folder gets the atlases' pyramids, pages, static files,
   assets, sitemap, feed and 404 page; the size budget is checked; the folder replaces
   ``site/`` in one rename. Any error before that leaves ``site/`` as it was.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import keys, seal
from generator.bundle import AtlasBundle
from generator.cache import CacheLayout, atomic_dir, bytes_digest
from generator.config import Config
from generator.errors import ConfigError, ContentError
from generator.lock import project_lock
from generator.site import atlases as atlas_specs
from generator.site.bibtex import read_bibtex
from generator.site.blocks.patch_results_block import experiment_inputs
from generator.site.build_experiments import load_experiments
from generator.site.compute import compute_publications
from generator.site.content import Content, Page, default_site_index, gather_content
from generator.site.feed import FeedEntry, atom_feed, sitemap_xml
from generator.site.links import PageLinks, check_links
from generator.site.output import (
    OWNER_FILE,
    OWNER_TEXT,
    OutputPlan,
    by_publication,
    check_budget,
    check_output_folder,
    clean_leftovers,
    find_openseadragon,
    human_bytes,
    measure,
    owners_of,
    static_sources,
)
from generator.site.pages import RenderedPage, Renderer, template_dirs
from generator.site.skipped import accept_anchors, stub_page
from generator.site.state import BuildState, PageState
from generator.specs import read_spec_files

#: The contract files of a published atlas that pages link to (see docs/ARCHITECTURE.md).
ATLAS_FILES = ("viewer.json", "atlas.dzi", "fallback.jpg")


@dataclass(frozen=True)
class BuildReport:
    """What a build did (printed by ``atlas build``, measured by the benchmark)."""

    output: Path
    pages: int
    rendered: int
    atlases: int
    files: int
    bytes: int
    seconds: float
    warnings: tuple[str, ...]
    #: bytes per publication (its pages, assets and atlases), largest first; ``(shared)``: the rest
    by_publication: dict[str, int] = dataclasses.field(default_factory=dict)
    #: the site passed ``[budget] warn_fraction`` of ``max_bytes`` (not failed by ``--strict``)
    budget_warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        head = (
            f"built {self.output}: {self.pages} pages ({self.rendered} rendered,"
            f" {self.pages - self.rendered} unchanged), {self.atlases}"
            f" atlas{'' if self.atlases == 1 else 'es'},"
            f" {self.files:,} files, {human_bytes(self.bytes)} in {self.seconds:.2f} s"
        )
        by_pub = self.by_publication if len(self.by_publication) > 1 else {}  # not only shared
        parts = [f"  {name}: {human_bytes(n)}" for name, n in by_pub.items()]
        return "\n".join([head, *parts, *(f"warning: {w}" for w in self.budget_warnings)])


@dataclass
class Prepared:
    """Everything a build gathered, validated and rendered, before anything is written."""

    config: Config
    started: float
    state: BuildState
    new_state: BuildState
    file_digests: atlas_specs.FileDigests
    pages: list[Page]
    bundles: dict[str, AtlasBundle]
    static: dict[str, Path]
    assets: dict[str, Path]
    rendered: dict[str, RenderedPage]
    renderer: Renderer
    warnings: tuple[str, ...]
    #: atlas id -> its publication (for the bytes per publication)
    atlas_owners: dict[str, str] = dataclasses.field(default_factory=dict)


def build(
    config: Config,
    *,
    strict: bool = False,
    include_drafts: bool = False,
    log: Callable[[str], None] | None = print,
) -> BuildReport:
    """Build the site described by ``config`` into ``[paths] output``; see the module doc."""
    say = log or (lambda _message: None)
    with project_lock(config.paths.cache, "atlas build", log=say, output=config.paths.output):
        prepared = prepare(config, strict=strict, include_drafts=include_drafts, log=say)
        report = write(prepared)
    say(report.summary())
    return report


def prepare(
    config: Config,
    *,
    strict: bool = False,
    include_drafts: bool = False,
    log: Callable[[str], None] = print,
) -> Prepared:
    """Phases 1-3: gather, plan, render and check links; writes only to the cache."""
    started = time.perf_counter()
    output = config.paths.output
    check_output_folder(config)
    layout = CacheLayout(config.paths.cache)
    state = BuildState.load(layout.build_state(), output)
    file_digests = atlas_specs.FileDigests(layout.file_digests())

    # 1. Gather and validate everything.
    content = gather_content(config.paths.content, include_drafts=include_drafts)
    if content.site_index is None:
        content.site_index = default_site_index(config.paths.content, config.site.title)
    spec_files = read_spec_files(content.root)  # each atlases.toml read once
    specs, spec_warnings = atlas_specs.load_specs(spec_files, content.root)
    experiments = load_experiments(spec_files)
    warnings = (*config.warnings, *content.warnings, *spec_warnings)
    if strict and warnings:
        raise ConfigError(
            f"{len(warnings)} warning(s) and --strict:\n" + "\n".join(f"  - {w}" for w in warnings),
            fix="resolve each warning, or build without --strict",
        )
    for warning in warnings:
        log(f"warning: {warning}")
    bibs = {pub.name: read_bibtex(pub.bib_files) for pub in content.publications}
    computed = compute_publications(
        content, specs, experiments, config, file_digests, strict=strict, log=log
    )
    bundles = computed.bundles
    specs = {atlas_id: spec for atlas_id, spec in specs.items() if atlas_id in bundles}
    warnings += tuple(
        f"publication {name!r} left out: {s.error.what}" for name, s in computed.skipped.items()
    )
    facts = {atlas_id: atlas_specs.facts_of(bundle) for atlas_id, bundle in bundles.items()}

    # 2. Plan every output path.
    for pub in content.publications:
        if pub.name in computed.skipped:
            skipped = computed.skipped[pub.name]
            pub.index = stub_page(pub.index, skipped)
            pub.articles = [stub_page(article, skipped) for article in pub.articles]
    pages = content.pages()
    plan = OutputPlan()
    for page in pages:
        plan.claim(page.url, str(page.source))
    osd = find_openseadragon(config) if specs else None
    static = static_sources(template_dirs(config), osd)
    assets = _asset_sources(content, {s.image for s in specs.values() if s.image})
    for results in computed.experiments.values():
        assets.update(results.outputs())
    for out, source in [*static.items(), *assets.items()]:
        plan.claim(out, str(source))
    for atlas_id, spec in specs.items():
        for name in ATLAS_FILES:
            plan.claim(f"atlases/{atlas_id}/{name}", f"[atlas.{atlas_id}] in {spec.source}")
    for special in (".nojekyll", "sitemap.xml", "feed.xml", "404.html"):
        plan.claim(special, "the build")

    # 3. Render (or reuse) every page, then check every link.
    url_map = {page.rel: page.url for page in pages}
    computed_results = {key: r.results for key, r in computed.experiments.items()}
    renderer = Renderer(config, facts, url_map, static, bundles, computed_results)
    code = keys.site_code_digest(template_dirs(config))
    shared_key = keys.shared_page_key(code, config, facts.values(), url_map, renderer.static_urls)
    bib_keys = {pub.name: keys.bibliography_key(pub.bib_files) for pub in content.publications}
    # patch-results blocks read experiments/*/results.json: part of their publication's keys
    experiment_keys: dict[str, list[Any]] = {
        pub.name: [*experiment_inputs(pub.folder)] for pub in content.publications
    }
    for (pub_name, _), results in sorted(computed.experiments.items()):
        experiment_keys[pub_name].append(str(results.folder))  # a content-addressed folder
    rendered: dict[str, RenderedPage] = {}
    new_state = BuildState(state.path, str(output))
    navigation = Navigation(content)
    for page in pages:
        nav, nav_key = navigation.of(page)
        pub_name = page.publication or ""
        key = keys.page_key(
            shared_key,
            page,
            bib_keys.get(pub_name, ""),
            nav_key,
            experiment_keys.get(pub_name),
            list(computed.skipped[pub_name].missing) if pub_name in computed.skipped else None,
        )
        previous = state.pages.get(page.url)
        if previous and previous.key == key and _unchanged(output / page.url, previous):
            new_state.pages[page.url] = previous
            continue
        result = renderer.render(page, nav, bibs.get(page.publication or "", {}))
        _check_ids(result)
        rendered[page.url] = result
        new_state.pages[page.url] = PageState(
            key,
            bytes_digest(result.html.encode()),
            list(result.ids),
            list(result.refs),
            result.source,
        )
    links = {url: PageLinks(p.source, p.ids, p.refs) for url, p in new_state.pages.items()}
    stubs = {page.url for page in pages if page.publication in computed.skipped}
    check_links(accept_anchors(links, stubs, plan.files()), plan.files())
    return Prepared(
        config,
        started,
        state,
        new_state,
        file_digests,
        pages,
        bundles,
        static,
        assets,
        rendered,
        renderer,
        warnings,
        {
            i: pub.name
            for pub in content.publications
            for i, s in specs.items()
            if s.source == pub.atlases_toml
        },
    )


def write(prepared: Prepared) -> BuildReport:
    """Phase 4: fill a temporary folder, check the budget, swap it in as the output."""
    p = prepared
    config = p.config
    output = config.paths.output
    clean_leftovers(output)
    entries = [_feed_entry(p.renderer, page) for page in p.pages]
    with atomic_dir(output) as tmp:
        for atlas_id, bundle in p.bundles.items():
            key = keys.published_atlas_key(bundle, config)
            old = output / "atlases" / atlas_id
            sealed = CacheLayout(config.paths.cache).site_state() / f"atlas-{atlas_id}.seal"
            if (
                p.state.atlases.get(atlas_id) == key
                and _intact_atlas(old)
                and seal.check(old, at=sealed) is None  # its files (cache hard links) unharmed
            ):
                atlas_specs.link_tree(old, tmp / "atlases" / atlas_id)
            else:
                atlas_specs.publish_bundles(
                    {atlas_id: bundle}, tmp / "atlases", config.tile_settings(), config.paths.cache
                )
                seal.seal(tmp / "atlases" / atlas_id, at=sealed)
            p.new_state.atlases[atlas_id] = key
        for page in p.pages:
            target = tmp / page.url
            target.parent.mkdir(parents=True, exist_ok=True)
            if page.url in p.rendered:
                target.write_text(p.rendered[page.url].html, encoding="utf-8")
            else:
                atlas_specs.link_or_copy(output / page.url, target)
        for out, source in [*p.static.items(), *p.assets.items()]:
            (tmp / out).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / out)
        (tmp / ".nojekyll").write_text("")
        (tmp / OWNER_FILE).write_text(OWNER_TEXT)
        (tmp / "sitemap.xml").write_text(sitemap_xml(entries), encoding="utf-8")
        feed = atom_feed(config.site, entries, config.site.site_url + "feed.xml")
        (tmp / "feed.xml").write_text(feed, encoding="utf-8")
        (tmp / "404.html").write_text(p.renderer.render_template("404.html"), encoding="utf-8")
        size = measure(tmp)
        publications = sorted({page.publication for page in p.pages if page.publication})
        owners = owners_of(publications, p.atlas_owners)
        budget_warnings = check_budget(config, size, owners)
    p.new_state.save()
    p.file_digests.save()
    return BuildReport(
        output,
        len(p.pages),
        len(p.rendered),
        len(p.bundles),
        size.files,
        size.bytes,
        time.perf_counter() - p.started,
        p.warnings,
        by_publication(size.parts, publications, p.atlas_owners),
        budget_warnings,
    )


class Navigation:
    """The JSON-able navigation each page shows, made once per build (each publication's
    article list is shared by its pages, so a build is linear in its pages), and the part of
    each page's key that stands for it."""

    def __init__(self, content: Content) -> None:
        self.content = content
        self.publications: dict[str, tuple[dict[str, Any], list[dict[str, Any]], str]] = {}
        self.position: dict[str, int] = {}
        for pub in content.publications:
            articles = [self.item(a) for a in pub.articles]
            self.publications[pub.name] = (
                self.item(pub.index),
                articles,
                keys.articles_key(articles),
            )
            self.position.update({a.url: i for i, a in enumerate(pub.articles)})
        self.site = {
            "publications": [
                {**self.item(pub.index), "articles": len(pub.articles)}
                for pub in content.publications
            ]
        }

    @staticmethod
    def item(p: Page) -> dict[str, Any]:
        m = p.meta
        return {
            "title": m.title,
            "url": p.url,
            "description": m.description,
            "date": m.date.isoformat() if m.date else None,
            "authors": list(m.authors),
        }

    def of(self, page: Page) -> tuple[dict[str, Any], Any]:
        """(the page's navigation, what stands for it in the page's key)."""
        if page.kind == "site":
            return self.site, self.site
        index, articles, listed = self.publications[str(page.publication)]
        nav: dict[str, Any] = {"publication": index, "articles": articles}
        key: dict[str, Any] = {"publication": index, "articles": listed}
        if page.kind == "article":
            at = self.position[page.url]
            nav["prev"] = key["prev"] = articles[at - 1] if at > 0 else None
            nav["next"] = key["next"] = articles[at + 1] if at + 1 < len(articles) else None
        return nav, key


def _asset_sources(content: Content, atlas_images: set[Path]) -> dict[str, Path]:
    """Output path -> file for every asset (atlas source images are not copied)."""
    assets = {path.name: path for path in content.root_assets if path not in atlas_images}
    for pub in content.publications:
        for path in pub.assets:
            if path.resolve() not in atlas_images:
                assets[path.relative_to(content.root).as_posix()] = path
    return assets


def _intact_atlas(folder: Path) -> bool:
    """Whether a previously published atlas folder has its files and every tile."""
    from generator.tiles import check_dzi

    if not all((folder / name).is_file() for name in ATLAS_FILES):
        return False
    return not check_dzi(folder / "atlas.dzi")


def _unchanged(path: Path, previous: PageState) -> bool:
    try:
        return bytes_digest(path.read_bytes()) == previous.html_digest
    except FileNotFoundError:
        return False


def _check_ids(page: RenderedPage) -> None:
    seen: set[str] = set()
    for element_id in page.ids:
        if element_id in seen:
            raise ContentError(
                f"two elements on the page have the id {element_id!r}",
                where=page.source,
                expected="unique ids (headings, figures and footnotes share one namespace)",
                fix="rename the heading, or set another 'figure:' id in the atlas block",
            )
        seen.add(element_id)


def _feed_entry(renderer: Renderer, page: Page) -> FeedEntry:
    m = page.meta
    return FeedEntry(renderer.canonical(page.url), m.title, m.description, m.date, m.authors)
