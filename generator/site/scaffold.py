"""``atlas new`` and ``atlas deploy --init``: starting files a user then edits.

Nothing here overwrites an existing file (``deploy --init --force`` excepted).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from generator.config import CONFIG_NAME
from generator.errors import AtlasError, ContentError
from generator.site.content import check_article_name, check_publication_name

#: The GitHub Pages workflow ``atlas deploy --init`` writes (and the repository ships).
WORKFLOW_PATH = Path(".github/workflows/pages.yml")

WORKFLOW = """\
# Builds the site with `atlas build --strict` and publishes site/ to GitHub Pages.
# Enable it once: repository Settings -> Pages -> Source: "GitHub Actions".
# The runner has no GPU, model weights or image sets: it installs the site half only (no
# [compute] extras, so no torch) and builds computed atlases from the committed _freeze/
# folder (`atlas freeze` where they were computed, then commit _freeze/).
# Written by `atlas deploy --init`.
name: Publish the site

on:
  push:
    branches: [main]
  workflow_dispatch:

permissions:
  contents: read
  pages: write
  id-token: write

concurrency:
  group: pages
  cancel-in-progress: false

jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      - uses: actions/setup-node@v4
        with:
          node-version: 20
          cache: npm
      - run: npm ci --no-audit --no-fund  # OpenSeadragon, copied into the site
      - run: python -m pip install -e .  # the site half: no torch
      - name: Cache atlas pyramids
        uses: actions/cache@v4
        with:
          path: .atlas-cache
          key: atlas-${{ hashFiles('atlas.toml', 'content/**', '_freeze/**') }}
          restore-keys: atlas-
      - run: atlas build --strict
      - uses: actions/configure-pages@v5
      - uses: actions/upload-pages-artifact@v3
        with:
          path: site

  deploy:
    needs: build
    runs-on: ubuntu-latest
    environment:
      name: github-pages
      url: ${{ steps.deployment.outputs.page_url }}
    steps:
      - id: deployment
        uses: actions/deploy-pages@v4
"""

STARTER_CONFIG = """\
# The project's configuration; every key is described in docs/ARCHITECTURE.md.
[site]
title = "{title}"
description = ""
authors = []
site_url = "https://example.github.io/{slug}/"   # absolute: used by sitemap, feed, canonical

[paths]
content = "content"
output = "site"

[tiles]
tile_size = 254
overlap = 1
format = "jpg"
quality = 85

[budget]
max_bytes = 1_000_000_000      # GitHub Pages' limit
warn_fraction = 0.75           # warn when the site passes this fraction of max_bytes
max_file_bytes = 100_000_000   # GitHub refuses files over 100 MiB
"""

PUBLICATION_INDEX = """\
---
title: {title}
description: What this publication is about, in one sentence.
---

Introduce the publication here. Its articles are listed below this text.
"""

ARTICLE = """\
---
title: {title}
description: One sentence that says what the reader will learn.
date: {date}
authors: []
draft: false
---

## Introduction

Write Markdown here. Cite with `[@key]` (entries in a `.bib` file beside this page), add
footnotes with `[^1]`, and embed an atlas declared in `atlases.toml`:

    ```atlas
    id: my-atlas
    caption: "What the reader sees"
    ```

Then link to a region of it: `[this region](#atlas:my-atlas?xywh=0,0,400,400)`.
"""

ATLASES = """\
# Atlases of this publication, one [atlas.<id>] table each (ids are unique across the site).
# A precomputed atlas image:
#
# [atlas.my-atlas]
# image = "images/my-atlas.jpg"   # relative to this file
# grid = 20                       # cells per side
# icon_size = 80                  # px per cell: the image is 1600x1600 px
# title = "My atlas"
"""


def _title(slug: str) -> str:
    return re.sub(r"[-_]+", " ", slug).strip().capitalize()


def new(target: str, project: Path, content: Path | None, today: dt.date) -> list[Path]:
    """Scaffold ``<publication>`` or ``<publication>/<article>``; returns the files created.

    ``content`` is the configured content folder, or None when the project has no atlas.toml
    yet (one is created in ``project``). Names obey the build's rules
    (:func:`generator.site.content.check_publication_name`, ``check_article_name``), and
    everything is checked before the first file is written: a refused target creates nothing.
    """
    parts = target.strip("/").split("/")
    if len(parts) > 2 or not all(parts):
        raise ContentError(
            f"cannot scaffold {target!r}",
            expected="<publication> or <publication>/<article>, each lowercase letters, digits,"
            " '-' and '_'",
            got=target,
            fix="e.g. `atlas new my-study/first-look`",
        )
    how = f"cannot scaffold {target!r}"
    check_publication_name(parts[0], how, scaffold=True)
    if len(parts) == 2:
        check_article_name(parts[1], how)
    files: list[tuple[Path, str]] = []  # (path, text), written only when absent
    if content is None:
        config = STARTER_CONFIG.format(title=_title(project.name) or "Atlas", slug=project.name)
        files.append((project / CONFIG_NAME, config))
        content = project / "content"
    folder = content / parts[0]
    files.append((folder / "index.md", PUBLICATION_INDEX.format(title=_title(parts[0]))))
    files.append((folder / "atlases.toml", ATLASES))
    if len(parts) == 2:
        article = folder / f"{parts[1]}.md"
        if article.exists():
            raise ContentError(
                "the article already exists", where=str(article), fix="choose another name"
            )
        files.append((article, ARTICLE.format(title=_title(parts[1]), date=today.isoformat())))
    for path, _text in files:
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.is_file()), None)
        if blocker is not None or path.is_dir():
            raise ContentError(
                "a file is in the way of the scaffold",
                where=str(blocker or path),
                expected=f"nothing at {path}, or a folder above it",
                fix="move it away, or choose another name",
            )
    created: list[Path] = []
    for path, text in files:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            created.append(path)
    return created


def deploy_init(project: Path, *, force: bool = False) -> Path:
    """Write the GitHub Pages workflow into ``project``; refuse to replace one unless ``force``."""
    path = project / WORKFLOW_PATH
    if path.exists() and not force:
        if path.read_text(encoding="utf-8") == WORKFLOW:
            return path
        raise AtlasError(
            "a different workflow already exists",
            where=str(path),
            fix="compare it with `atlas deploy` output, or run `atlas deploy --init --force`",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(WORKFLOW, encoding="utf-8")
    return path
