"""Helpers shared by the site and browser tests: a small project, a drawn atlas image."""

from __future__ import annotations

import colorsys
from pathlib import Path

from PIL import Image, ImageDraw

CONFIG = """\
[site]
title = "Test site"
description = "A site for tests"
authors = ["Ada Lovelace"]
site_url = "https://example.org/repo/"

[tiles]
format = "png"
"""

PUB_INDEX = """\
---
title: The study
description: A publication for tests.
---

The study's introduction.
"""

ARTICLE = """\
---
title: First look
description: What the grid shows.
date: 2024-01-02
authors: [Ada Lovelace]
order: 1
---

## Overview

Text citing [@carter2019].

```atlas
id: grid
height: 400
view: [0, 0, 320, 320]
caption: "The **grid**."
tour:
  - rect: [0, 0, 64, 64]
    caption: "A corner."
```

See [the corner](#atlas:grid?xywh=0,0,64,64).
"""

BIB = """\
@article{carter2019,
  author = {Carter, Shan and Olah, Chris},
  title = {Activation Atlas},
  journal = {Distill},
  year = 2019,
}
"""

ATLASES = """\
[atlas.grid]
image = "images/grid.png"
grid = 10
icon_size = 32
title = "A test grid"
"""

#: Cells of the test grid left empty (background), as (col, row).
EMPTY_CELLS = {(c, r) for r in range(10) for c in range(10) if (c * 7 + r * 3) % 11 == 0}


def draw_grid(path: Path, grid: int = 10, icon: int = 32) -> Path:
    """A grid x grid atlas of icon-px coloured squares on white; cells in EMPTY_CELLS blank."""
    image = Image.new("RGB", (grid * icon, grid * icon), "white")
    draw = ImageDraw.Draw(image)
    for row in range(grid):
        for col in range(grid):
            if (col * 7 + row * 3) % 11 == 0:
                continue
            r, g, b = colorsys.hsv_to_rgb(col / grid, 0.4 + 0.5 * row / grid, 0.9)
            box = [col * icon + 2, row * icon + 2, col * icon + icon - 3, row * icon + icon - 3]
            draw.rectangle(box, fill=(int(r * 255), int(g * 255), int(b * 255)))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_project(root: Path) -> Path:
    """Write a project with one publication, one article with an atlas, citations and a tour."""
    write(root / "atlas.toml", CONFIG)
    write(root / "content" / "index.md", "---\ntitle: Home\n---\n\nWelcome.\n")
    pub = root / "content" / "study"
    write(pub / "index.md", PUB_INDEX)
    write(pub / "first-look.md", ARTICLE)
    write(pub / "references.bib", BIB)
    write(pub / "atlases.toml", ATLASES)
    draw_grid(pub / "images" / "grid.png")
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative POSIX path -> bytes): to prove it is unchanged."""
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
