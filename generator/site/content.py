"""The content model: publications of Markdown articles with YAML front matter.

Layout of the content folder::

    content/index.md                    the site index (optional; front matter + intro text)
    content/<publication>/index.md      a publication's index page (required)
    content/<publication>/<slug>.md     its articles
    content/<publication>/atlases.toml  its atlas specs (optional, see generator.site.atlases)
    content/<publication>/*.bib         its bibliography (optional, see generator.site.bibtex)
    content/<publication>/**            anything else is an asset, copied beside the pages

Output paths (relative to the site root): ``index.html``, ``<publication>/index.html`` and
``<publication>/<slug>.html``. Gathering reads and validates everything but writes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import ContentError, closest, shown
from generator.paths import confine
from generator.site.yamldoc import YamlProblem, load_yaml
from generator.specs import SPEC_FILE, publication_folders, spec_file
from generator.textfiles import MAX_PAGE_BYTES, read_text

#: Folder names the build itself writes at the site root.
RESERVED = ("static", "atlases")

#: Front matter keys and what each must be.
FRONT_MATTER_KEYS = {
    "title": "a non-empty string",
    "description": "a string",
    "date": "a date written YYYY-MM-DD",
    "authors": "a name or a list of names",
    "draft": "true or false",
    "order": "an integer (articles sort by it, then by date, then by title)",
    "slug": "lowercase letters, digits and dashes (the output file name)",
}

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class FrontMatter:
    """The validated front matter of a page."""

    title: str
    description: str = ""
    date: dt.date | None = None
    authors: tuple[str, ...] = ()
    draft: bool = False
    order: int | None = None
    slug: str | None = None


@dataclass
class Page:
    """One Markdown source and where it goes.

    Attributes:
        source: the Markdown file (absolute).
        rel: ``source`` relative to the content folder, POSIX style (``pub/intro.md``).
        url: output path relative to the site root (``pub/intro.html``).
        kind: ``"site"`` (site index), ``"publication"`` (a publication's index) or
            ``"article"``.
        publication: the publication folder name (None for the site index).
        meta: the front matter.
        text: the whole file (for digests and line lookups).
        body: the Markdown after the front matter.
        body_line: the 1-based line number in ``source`` where ``body`` starts.
    """

    source: Path
    rel: str
    url: str
    kind: str
    publication: str | None
    meta: FrontMatter
    text: str
    body: str
    body_line: int

    @property
    def depth(self) -> int:
        """How many folders below the site root the page lives."""
        return self.url.count("/")


@dataclass
class Publication:
    """A folder of articles with an index page, atlas specs and a bibliography."""

    name: str
    folder: Path
    index: Page
    articles: list[Page]
    bib_files: list[Path]
    atlases_toml: Path | None
    assets: list[Path]


@dataclass
class Content:
    """Everything under the content folder, read and validated."""

    root: Path
    site_index: Page | None
    publications: list[Publication]
    root_assets: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def pages(self) -> list[Page]:
        """Every page, site index first, then each publication's index and articles."""
        pages = [self.site_index] if self.site_index else []
        for pub in self.publications:
            pages.append(pub.index)
            pages.extend(pub.articles)
        return pages


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str, int]:
    """Split ``---``-delimited YAML front matter from Markdown.

    Returns (front matter mapping, body, 1-based line where the body starts).
    Raises a ContentError naming ``where`` and the line for malformed front matter.
    """
    data, body, body_line, _lines = _split_front_matter(text, where)
    return data, body, body_line


def _split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str, int, dict[str, int]]:
    """:func:`split_front_matter`, and the 1-based line of each top-level key."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError(
            "the page has no front matter",
            where=f"{where}:1",
            expected="a first line '---', YAML keys (at least 'title: ...'), then a line '---'",
            fix="add front matter at the top, e.g. ---\\ntitle: My article\\n---",
        )
    for number in range(1, len(lines)):
        if lines[number].strip() in ("---", "..."):
            break
    else:
        raise ContentError(
            "the front matter is not closed",
            where=f"{where}:1",
            expected="a line '---' after the front matter's YAML",
            fix="add a line containing only '---' after the last front matter key",
        )
    yaml_text = "".join(lines[1:number])
    try:
        doc = load_yaml(yaml_text)  # the site's YAML loader: safe, no aliases, bounded
    except YamlProblem as err:
        raise ContentError(
            f"malformed front matter: {err.problem}",
            where=f"{where}:{2 + err.line}",
            expected="YAML 'key: value' lines",
            fix=err.fix or "quote values containing ':' or '#', e.g. title: \"Atlas: a tour\"",
        ) from None
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ContentError(
            "the front matter is not a mapping of keys to values",
            where=f"{where}:2",
            expected="YAML 'key: value' lines",
            got=shown(data),
            fix="write one 'key: value' per line",
        )
    key_lines = {str(path[0]): 2 + at for path, at in doc.lines.items() if len(path) == 1}
    return data, "".join(lines[number + 1 :]), number + 2, key_lines


def parse_front_matter(
    data: dict[str, Any],
    where: str,
    warnings: list[str],
    lines: Mapping[str, int] | None = None,
) -> FrontMatter:
    """Validate front matter keys; unknown keys are appended to ``warnings``. ``lines``
    (key -> line in the file) lets errors name ``file:line``."""

    def at(key: Any) -> str:
        line = (lines or {}).get(str(key))
        return f"{where}:{line}" if line else where

    def bad(key: str, value: Any) -> ContentError:
        return ContentError(
            f"front matter '{key}' is invalid",
            where=f"{at(key)} (front matter key '{key}')",
            expected=FRONT_MATTER_KEYS[key],
            got=shown(value),
            fix=f"set '{key}' to {FRONT_MATTER_KEYS[key]}"
            + (' (quoted: "...")' if key in ("title", "description") else ""),
        )

    for key in data:
        if key not in FRONT_MATTER_KEYS:
            guess = closest(str(key), FRONT_MATTER_KEYS)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            warnings.append(
                f"{at(key)}: unknown front matter key {shown(key)}{hint}; it is ignored"
            )
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise bad("title", title)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise bad("description", description)
    date = data.get("date")
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError:
            raise bad("date", date) from None
    if isinstance(date, dt.datetime):
        date = date.date()
    if date is not None and not isinstance(date, dt.date):
        raise bad("date", date)
    authors = data.get("authors", ())
    if isinstance(authors, str):
        authors = (authors,)
    if not isinstance(authors, list | tuple) or not all(isinstance(a, str) for a in authors):
        raise bad("authors", authors)
    draft = data.get("draft", False)
    if not isinstance(draft, bool):
        raise bad("draft", draft)
    order = data.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise bad("order", order)
    slug = data.get("slug")
    if slug is not None and (not isinstance(slug, str) or not _SLUG.fullmatch(slug)):
        raise bad("slug", slug)
    return FrontMatter(
        title=title.strip(),
        description=description.strip(),
        date=date,
        authors=tuple(authors),
        draft=draft,
        order=order,
        slug=slug,
    )


def slugify(stem: str) -> str:
    """A file stem as an output name: lowercase, runs of other characters become one dash."""
    return re.sub(r"[^a-z0-9_]+", "-", stem.lower()).strip("-") or "page"


def read_page(source: Path, root: Path, kind: str, warnings: list[str]) -> Page:
    """Read one Markdown file (inside ``root``, symlinks followed) and validate its front
    matter."""
    rel = source.relative_to(root).as_posix()
    where = str(source)
    _inside(source, root)
    text = read_text(source, limit=MAX_PAGE_BYTES, error=ContentError, kind="page")
    data, body, body_line, lines = _split_front_matter(text, where)
    meta = parse_front_matter(data, where, warnings, lines)
    publication = None if kind == "site" else rel.split("/")[0]
    if kind == "site":
        url = "index.html"
    elif kind == "publication":
        url = f"{publication}/index.html"
    else:
        url = f"{publication}/{meta.slug or slugify(source.stem)}.html"
    return Page(source, rel, url, kind, publication, meta, text, body, body_line)


def _inside(path: Path, root: Path) -> None:
    """Refuse a file of the content tree that is a symlink leading out of it."""
    confine(path, root, where=str(path), what="this file")


def check_publication_name(name: str, where: str, *, scaffold: bool = False) -> None:
    """Raise the ContentError a build raises for a publication folder called ``name`` (the
    build and ``atlas new`` share the rule): not a name the build writes at the site root,
    and a slug, as the name becomes part of URLs. ``scaffold``: the fix names ``atlas new``."""
    if name in RESERVED:
        better = f"{name}-pub"
        raise ContentError(
            f"the publication name {name!r} is reserved for the build's own files",
            where=where,
            expected=f"any folder name except {', '.join(RESERVED)}",
            fix=f"`atlas new {better}`" if scaffold else f"rename the folder, e.g. to {better}",
        )
    if not _SLUG.fullmatch(name):
        better = slugify(name)
        raise ContentError(
            "a publication folder name becomes part of URLs",
            where=where,
            expected="lowercase letters, digits, '-' and '_'",
            got=name,
            fix=f"`atlas new {better}`" if scaffold else f"rename the folder to {better!r}",
        )


def check_article_name(name: str, where: str) -> None:
    """Raise a ContentError unless ``<name>.md`` can be an article of a publication (a slug,
    and not ``index``: ``index.md`` is the publication's own page)."""
    if name == "index" or not _SLUG.fullmatch(name):
        raise ContentError(
            f"{name!r} cannot name an article",
            where=where,
            expected="lowercase letters, digits, '-' and '_', and not 'index' (index.md is"
            " the publication's own page)",
            got=name,
            fix="choose another name, e.g. first-look",
        )


def default_site_index(root: Path, title: str) -> Page:
    """The site index when ``content/index.md`` is absent: the publication list alone."""
    text = f"---\ntitle: {title}\n---\n"
    return Page(root / "index.md", "index.md", "index.html", "site", None,
                FrontMatter(title), text, "", 4)  # fmt: skip


def _article_sort_key(page: Page) -> tuple[int, int, str, str]:
    order = page.meta.order if page.meta.order is not None else 1 << 30
    date = page.meta.date.toordinal() if page.meta.date else 1 << 30
    return (order, date, page.meta.title.lower(), page.rel)


def gather_content(root: Path, *, include_drafts: bool = False) -> Content:
    """Read every publication under ``root``; validate front matter; write nothing."""
    if not root.is_dir():
        raise ContentError(
            "the content folder does not exist",
            where=str(root),
            fix="create it with `atlas new <publication>` or set [paths] content in atlas.toml",
        )
    warnings: list[str] = []
    site_index = None
    if (root / "index.md").is_file():
        site_index = read_page(root / "index.md", root, "site", warnings)
    root_assets: list[Path] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")) or entry.is_dir() or entry.name == "index.md":
            continue
        _inside(entry, root)
        if entry.suffix == ".md":
            warnings.append(
                f"{entry}: Markdown directly in the content folder is ignored"
                " (articles belong in a publication folder: content/<publication>/)"
            )
        else:
            root_assets.append(entry)
    publications = [
        _gather_publication(folder, root, include_drafts, warnings)
        for folder in publication_folders(root)
    ]
    return Content(root, site_index, publications, root_assets, warnings)


def _gather_publication(
    folder: Path, root: Path, include_drafts: bool, warnings: list[str]
) -> Publication:
    check_publication_name(folder.name, str(folder))
    index_md = folder / "index.md"
    if not index_md.is_file():
        raise ContentError(
            "the publication has no index.md",
            where=str(folder),
            fix=f"create {index_md} (or run `atlas new {folder.name}`)",
        )
    index = read_page(index_md, root, "publication", warnings)
    articles, assets, bibs = [], [], []
    for path in sorted(folder.rglob("*")):
        rel_parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel_parts) or not path.is_file():
            continue
        _inside(path, root)
        if path.parent == folder and path.suffix == ".md":
            if path.name != "index.md":
                page = read_page(path, root, "article", warnings)
                if include_drafts or not page.meta.draft:
                    articles.append(page)
        elif path.suffix == ".md":
            warnings.append(f"{path}: Markdown in a subfolder is not a page; it is ignored")
        elif path.parent == folder and path.suffix == ".bib":
            bibs.append(path)
        elif path.parent == folder and path.name == SPEC_FILE:
            continue
        else:
            assets.append(path)
    articles.sort(key=_article_sort_key)
    return Publication(
        name=folder.name,
        folder=folder,
        index=index,
        articles=articles,
        bib_files=bibs,
        atlases_toml=spec_file(folder),
        assets=assets,
    )
