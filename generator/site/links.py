"""Internal link checking: every href/src of every page resolves to an output file, and every
``#fragment`` to an id on the target page.

Links are resolved the way a static host does: relative to the page's folder, a trailing ``/``
(or a folder) means its ``index.html``; the query string is ignored. External links (with a
scheme or host) are not fetched.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from html import unescape
from urllib.parse import unquote, urlsplit

from generator.errors import ContentError, closest, excerpt, shown

#: Attributes that hold a URL the browser will load or navigate to.
_URL_ATTRS = {"href", "src", "poster", "data"}


#: A start tag and its attributes. Text and attribute values in the generated HTML escape
#: "<", and the inline JSON escapes it too, so every match is a real tag.
_TAG = re.compile(
    r"<([a-zA-Z][\w-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*/?>"
)
_ATTR = re.compile(r"([^\s=>/]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?")


def scan_html(html: str) -> tuple[list[str], list[str]]:
    """(element ids, URLs in href/src/srcset/poster/data attributes) of an HTML document.

    A regular-expression scan of start tags (several times faster than ``html.parser`` on
    the pages the build writes); comments are skipped.
    """
    ids: list[str] = []
    refs: list[str] = []
    for tag in _TAG.finditer(_COMMENT.sub("", html)):
        for match in _ATTR.finditer(tag.group(2)):
            name = match.group(1).lower()
            value = match.group(2) or match.group(3) or match.group(4)
            if not value:
                continue
            value = unescape(value)
            if name == "id" or (name == "name" and tag.group(1).lower() == "a"):
                ids.append(value)
            elif name in _URL_ATTRS:
                refs.append(value)
            elif name == "srcset":
                refs.extend(part.split()[0] for part in value.split(",") if part.strip())
    return ids, refs


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass(frozen=True)
class PageLinks:
    """What the link check knows about one output page."""

    source: str
    ids: Sequence[str]
    refs: Sequence[tuple[str, int | None]]


def is_external(href: str) -> bool:
    parts = urlsplit(href)
    return bool(parts.scheme or parts.netloc or href.startswith("//"))


def resolve(page_url: str, href: str, files: Collection[str]) -> tuple[str, str]:
    """(output path, fragment) that ``href`` on ``page_url`` points to (paths from the root).

    The path starts with ``../`` when the link leaves the site.
    """
    parts = urlsplit(href)
    path = unquote(parts.path)
    fragment = unquote(parts.fragment)
    if not path:
        return page_url, fragment
    base = posixpath.dirname(page_url)
    target = posixpath.normpath(posixpath.join(base, path) if not path.startswith("/") else path)
    if path.startswith("/"):
        return "../" + target.lstrip("/"), fragment  # root-absolute breaks under a subpath
    if target == ".":
        target = "index.html"
    elif path.endswith("/") or (target not in files and f"{target}/index.html" in files):
        target = f"{target}/index.html"
    return target, fragment


def check_links(pages: Mapping[str, PageLinks], files: Collection[str]) -> None:
    """Raise one ContentError listing every broken internal link (file:line, target, hint)."""
    problems: list[str] = []
    ids = {url: set(page.ids) for url, page in pages.items()}
    for url, page in sorted(pages.items()):
        seen = set()
        for href, line in page.refs:
            if is_external(href) or href in seen:
                continue
            seen.add(href)
            where = f"{page.source}:{line}" if line else f"{page.source} (template of {url})"
            target, fragment = resolve(url, href, files)
            if target.startswith("../"):
                problems.append(
                    f"{where}: {shown(href)} leaves the site (root-absolute or too many '../');"
                    " use a relative link"
                )
            elif target not in files:
                problems.append(f"{where}: {shown(href)} points to a missing file {shown(target)}")
                guess = closest(
                    target, [f for f in files if f.endswith(posixpath.splitext(target)[1])]
                )
                if guess:
                    problems[-1] += (
                        f" (did you mean {posixpath.relpath(guess, posixpath.dirname(url) or '.')!r}?)"
                    )
            elif fragment and target in ids and fragment not in ids[target]:
                guess = closest(fragment, ids[target])
                problems.append(
                    f"{where}: {shown(href)}: no anchor #{excerpt(fragment)} in {target}"
                    + (f" (did you mean #{guess}?)" if guess else "")
                )
    if problems:
        listed = problems[:50] + (
            [f"... and {len(problems) - 50} more"] if len(problems) > 50 else []
        )
        raise ContentError(
            f"{len(problems)} broken link{'s' if len(problems) > 1 else ''}:\n"
            + "\n".join(f"  - {p}" for p in listed),
            expected="links to pages (other.md or other.md#heading), assets beside the page,"
            " or anchors on the page",
            fix="correct each link, or add the missing page, file or heading",
        )
