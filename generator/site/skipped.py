"""Pages of a publication left out of a build (:mod:`generator.site.compute`): short notices.

A publication that the building machine cannot compute (no model weights, no image folder)
keeps its URLs: each of its pages is rendered with its own front matter (title, description,
date) and, instead of its text, a notice naming what was missing and where the build
instructions are. So the site index still lists it and links from other pages keep working;
links to an anchor inside such a page are accepted (its sections are not built here, so the
anchor cannot be checked). The notice names only the missing model or data set and what is
wrong with it, never the building machine's paths. Its element id (:data:`NOTICE_ID`) marks a
built page as a notice, so ``atlas check`` accepts anchors into it as the build does.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from generator.site.content import Page
from generator.site.links import PageLinks, is_external, resolve

if TYPE_CHECKING:
    from generator.site.compute import Skipped

#: The id of the notice's element: a built page holding it is a notice (``notice_pages``).
NOTICE_ID = "publication-skipped"


def stub_page(page: Page, skipped: Skipped) -> Page:
    """``page`` with its body replaced by the notice of ``skipped`` (raw HTML in Markdown)."""
    items = "\n".join(f"<li>{html.escape(line)}</li>" for line in skipped.missing)
    name = html.escape(skipped.publication)
    body = (
        f'<div class="publication-skipped" id="{NOTICE_ID}" role="note">\n'
        f"<p><strong>Not built here.</strong> The publication “{name}” is computed from model"
        " weights and images that the machine which built this site did not have:</p>\n"
        f"<ul>\n{items}\n</ul>\n"
        "<p>Build the site where they are available (the publication's folder in the site's"
        f" repository, <code>content/{name}/</code>, says how) to see it.</p>\n"
        "</div>\n"
    )
    return dataclasses.replace(page, body=body)


def accept_anchors(
    pages: Mapping[str, PageLinks], stubs: Collection[str], files: Collection[str]
) -> dict[str, PageLinks]:
    """``pages`` with every ``#fragment`` that some page links to on a stub page added to the
    stub's ids, so the link check accepts anchors into pages that were not built."""
    wanted: dict[str, set[str]] = {url: set() for url in stubs}
    if not wanted:
        return dict(pages)
    for url, page in pages.items():
        for href, _ in page.refs:
            if is_external(href):
                continue
            target, fragment = resolve(url, href, files)
            if fragment and target in wanted:
                wanted[target].add(fragment)
    out = dict(pages)
    for url, fragments in wanted.items():
        if url in out and fragments:
            page = out[url]
            out[url] = PageLinks(page.source, [*page.ids, *sorted(fragments)], page.refs)
    return out


def notice_pages(pages: Mapping[str, PageLinks]) -> set[str]:
    """The pages of a built site that are notices (their ids include :data:`NOTICE_ID`)."""
    return {url for url, page in pages.items() if NOTICE_ID in page.ids}
