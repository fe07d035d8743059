"""A changed atlas is published again, and only it (issue 17, point 2).

A project with two image atlases, each embedded in its own article, is built once; then one
input changes at a time and the site is rebuilt. The truth each rebuild is held to is a build
from scratch of the same inputs in another folder (its own cache): every file of the rebuilt
site must have its bytes. An atlas whose inputs did not change must be reused, not published
again: its folder is hard-linked from the previous site (same inodes, ``viewer.json`` too,
which publishing always writes anew) and :func:`generator.tiles.publish_atlas` is not called
for it.
"""

from __future__ import annotations

import colorsys
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sitekit import CONFIG, snapshot, write

from generator.bundle import AtlasBundle
from generator.cache import CacheLayout
from generator.config import load_config
from generator.site.build import BuildReport, build

ATLASES = """\
[atlas.alpha]
image = "images/alpha.png"
grid = 10
icon_size = 32
title = "Alpha"

[atlas.beta]
image = "images/beta.png"
grid = 8
icon_size = 40
title = "Beta"
"""


def _article(title: str, order: int, atlas_id: str) -> str:
    return f"""\
---
title: {title}
order: {order}
---

## About {atlas_id}

```atlas
id: {atlas_id}
height: 400
view: [0, 0, 320, 320]
caption: "The {atlas_id} atlas."
```
"""


def draw_atlas(path: Path, grid: int, icon: int, seed: int) -> Path:
    """A ``grid * icon`` px square atlas of coloured squares on white; ``seed`` shifts the
    colours and which cells are left empty (so the cells data differs too)."""
    image = Image.new("RGB", (grid * icon, grid * icon), "white")
    draw = ImageDraw.Draw(image)
    for row in range(grid):
        for col in range(grid):
            if (col * 7 + row * 3 + seed) % 11 == 0:
                continue
            hue = (col / grid + 0.37 * seed) % 1.0
            r, g, b = colorsys.hsv_to_rgb(hue, 0.4 + 0.5 * row / grid, 0.9)
            box = [col * icon + 2, row * icon + 2, col * icon + icon - 3, row * icon + icon - 3]
            draw.rectangle(box, fill=(int(r * 255), int(g * 255), int(b * 255)))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_two_atlas_project(root: Path) -> Path:
    write(root / "atlas.toml", CONFIG)
    write(root / "content" / "index.md", "---\ntitle: Home\n---\n\nWelcome.\n")
    pub = root / "content" / "study"
    write(pub / "index.md", "---\ntitle: The study\n---\n\nTwo atlases.\n")
    write(pub / "first.md", _article("First", 1, "alpha"))
    write(pub / "second.md", _article("Second", 2, "beta"))
    write(pub / "atlases.toml", ATLASES)
    draw_atlas(pub / "images" / "alpha.png", 10, 32, seed=0)
    draw_atlas(pub / "images" / "beta.png", 8, 40, seed=0)
    return root


def rebuild(root: Path) -> BuildReport:
    return build(load_config(root / "atlas.toml"), log=None)


def fresh_site(project: Path, elsewhere: Path) -> dict[str, bytes]:
    """The site a build from scratch of ``project``'s inputs writes (no previous site, no
    cache): the independent truth a rebuilt site is compared with."""
    shutil.copytree(project, elsewhere, ignore=shutil.ignore_patterns("site", ".atlas-cache"))
    rebuild(elsewhere)
    return snapshot(elsewhere / "site")


def differences(got: dict[str, bytes], want: dict[str, bytes]) -> list[str]:
    """Paths missing, extra or with other bytes (readable where a dict diff of bytes is not)."""
    return sorted(
        [f"missing {p}" for p in want.keys() - got.keys()]
        + [f"extra {p}" for p in got.keys() - want.keys()]
        + [f"differs {p}" for p in got.keys() & want.keys() if got[p] != want[p]]
    )


def inodes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_ino
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def touch_later(path: Path) -> None:
    """Move ``path``'s mtime one second past what the build remembered, so the (size, mtime)
    check sees the edit even on a file system with coarse timestamps. (An edit keeping both
    size and mtime is the accepted blind spot of that check, not tested here.)"""
    later = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_two_atlas_project(tmp_path / "project")
    rebuild(root)
    return root


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ids of the atlases the next builds publish (cut or link from the tile cache, and
    write viewer.json and cells) instead of reusing the previous site's folder."""
    import generator.tiles

    real = generator.tiles.publish_atlas
    ids: list[str] = []

    def spy(bundle: AtlasBundle, *args: Any, **kwargs: Any) -> Any:
        ids.append(bundle.id)
        return real(bundle, *args, **kwargs)

    monkeypatch.setattr(generator.tiles, "publish_atlas", spy)
    yield ids


def test_a_changed_image_republishes_its_atlas_and_reuses_the_other(
    project: Path, tmp_path: Path, published: list[str]
) -> None:
    site = project / "site"
    alpha_before = snapshot(site / "atlases/alpha")
    beta_before, beta_inodes = snapshot(site / "atlases/beta"), inodes(site / "atlases/beta")

    image = project / "content/study/images/alpha.png"
    draw_atlas(image, 10, 32, seed=1)  # same size, other colours and other empty cells
    touch_later(image)
    rebuild(project)

    assert published == ["alpha"]
    truth = fresh_site(project, tmp_path / "fresh")
    assert differences(snapshot(site), truth) == []
    # the truth moved: tiles, fallback and cells of alpha are not what they were
    alpha_tiles = [p for p in truth if p.startswith("atlases/alpha/atlas_files/")]
    assert alpha_tiles
    for rel in ["fallback.jpg", "cells-10.json", *(p.split("alpha/")[1] for p in alpha_tiles)]:
        assert truth[f"atlases/alpha/{rel}"] != alpha_before[rel], rel
    assert snapshot(site / "atlases/beta") == beta_before
    assert inodes(site / "atlases/beta") == beta_inodes  # hard-linked, not published again


def test_changed_atlas_settings_republish_it_and_its_page(
    project: Path, tmp_path: Path, published: list[str]
) -> None:
    site = project / "site"
    beta_inodes = inodes(site / "atlases/beta")
    second_page = (site / "study/second.html").read_bytes()
    spec = project / "content/study/atlases.toml"

    # the same image read as a finer grid: other cells, other viewer levels
    spec.write_text(ATLASES.replace("grid = 10\nicon_size = 32", "grid = 20\nicon_size = 16"))
    rebuild(project)
    assert published == ["alpha"]
    truth = fresh_site(project, tmp_path / "fresh-grid")
    assert differences(snapshot(site), truth) == []
    assert "atlases/alpha/cells-20.json" in truth and "atlases/alpha/cells-10.json" not in truth
    assert inodes(site / "atlases/beta") == beta_inodes

    published.clear()
    first_page = (site / "study/first.html").read_bytes()
    spec.write_text(spec.read_text().replace('title = "Alpha"', 'title = "Alpha, revised"'))
    rebuild(project)
    assert published == ["alpha"]
    truth = fresh_site(project, tmp_path / "fresh-title")
    assert differences(snapshot(site), truth) == []
    assert b'"title": "Alpha, revised"' in truth["atlases/alpha/viewer.json"]
    assert b"Atlas viewer: Alpha, revised" in truth["study/first.html"]
    assert truth["study/first.html"] != first_page  # the page embedding alpha changed
    assert truth["study/second.html"] == second_page  # the one embedding beta did not
    assert inodes(site / "atlases/beta") == beta_inodes


def test_changed_tile_settings_republish_every_atlas(
    project: Path, tmp_path: Path, published: list[str]
) -> None:
    site = project / "site"
    before = snapshot(site)
    write(project / "atlas.toml", CONFIG + "tile_size = 128\n")
    rebuild(project)

    assert sorted(published) == ["alpha", "beta"]
    truth = fresh_site(project, tmp_path / "fresh")
    assert differences(snapshot(site), truth) == []
    for atlas_id in ("alpha", "beta"):
        dzi = f"atlases/{atlas_id}/atlas.dzi"
        assert b'TileSize="128"' in truth[dzi] and truth[dzi] != before[dzi]


def test_a_new_tiles_version_republishes_every_atlas(
    project: Path, published: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing code, its format version or libvips changing re-cuts every atlas: a bump of
    TILES_VERSION (which invalidates cached pyramids) must reach an existing site too."""
    import generator.keys

    monkeypatch.setattr(generator.keys, "TILES_VERSION", generator.keys.TILES_VERSION + 1)
    generator.keys.publishing_code_digest.cache_clear()
    try:
        rebuild(project)
    finally:
        generator.keys.publishing_code_digest.cache_clear()
    assert sorted(published) == ["alpha", "beta"]


def test_an_overridden_viewer_module_re_renders_the_pages_that_map_it(
    project: Path, tmp_path: Path
) -> None:
    """A page's import map holds each viewer module's versioned URL: overriding one module
    (and not the entry) must reach every page, as a build from scratch has it."""
    site = project / "site"
    first = (site / "study/first.html").read_bytes()
    static = Path(__file__).resolve().parents[2] / "templates/static"
    override = project / "overrides/static/atlas-viewer-paint.js"
    override.parent.mkdir(parents=True)
    override.write_text((static / "atlas-viewer-paint.js").read_text() + "\n/* edited */\n")
    rebuild(project)
    truth = fresh_site(project, tmp_path / "fresh")
    assert differences(snapshot(site), truth) == []
    assert truth["study/first.html"] != first  # the new module URL is in the page
    assert truth["static/atlas-viewer-paint.js"].endswith(b"/* edited */\n")


def test_a_rebuild_without_changes_republishes_nothing(
    project: Path, tmp_path: Path, published: list[str]
) -> None:
    site = project / "site"
    before, atlas_inodes = snapshot(site), inodes(site / "atlases")
    assert rebuild(project).rendered == 0

    assert published == []
    assert inodes(site / "atlases") == atlas_inodes  # every atlas file hard-linked
    assert differences(snapshot(site), before) == []
    assert differences(snapshot(site), fresh_site(project, tmp_path / "fresh")) == []


def test_a_bundle_edited_in_place_is_repaired_from_its_source(
    project: Path, tmp_path: Path, published: list[str]
) -> None:
    """Bundles live in content-addressed folders and are sealed when written
    (generator/seal.py): an edit inside one is damage, found by the seal, and the bundle is
    made again from its source, so the site keeps what its sources say."""
    bundles = sorted(
        p for p in CacheLayout(project / ".atlas-cache").bundles().glob("alpha-*") if p.is_dir()
    )
    assert len(bundles) == 1
    bundle = AtlasBundle.load(bundles[0])
    level = bundle.root / bundle.levels[0].image
    original = level.read_bytes()
    before = snapshot(project / "site")
    draw_atlas(level, 10, 32, seed=2)
    touch_later(level)
    rebuild(project)

    assert level.read_bytes() == original  # made again from the atlas image
    assert published == []  # the same bytes: nothing to publish again
    assert snapshot(project / "site") == before
