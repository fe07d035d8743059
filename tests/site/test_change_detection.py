"""What the incremental build takes as a change (issue 17, mutation testing of
generator/site/build.py, keys from generator/keys.py): the key of a published atlas (its bundle files' sizes and times, its
folder, the tile settings), whether a published atlas folder is intact, whether a page's output
is still the HTML the build wrote, and the digest of the code, templates and static files every
page uses."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from sitekit import CONFIG, make_project, write
from tourkit import full_grid, make_bundle

from generator.config import Config, load_config
from generator.keys import json_key, published_atlas_key, site_code_digest
from generator.site.build import _intact_atlas, _unchanged
from generator.site.pages import template_dirs
from generator.site.state import PageState
from generator.tiles import publish_atlas
from generator.tiles.pyramid import TileSettings

LABELS = ["a", "b"]


def config_in(root: Path, extra: str = "") -> Config:
    write(root / "atlas.toml", CONFIG + extra)
    (root / "content").mkdir(parents=True, exist_ok=True)
    return load_config(root / "atlas.toml")


def bundle_in(root: Path) -> object:
    return make_bundle(
        root, "grid", {2: full_grid(2, lambda c, r: 0), 4: full_grid(4, lambda c, r: 1)}, LABELS
    )


def bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_an_atlas_key_follows_each_bundle_file(tmp_path: Path) -> None:
    """The key digests each file's bytes (not its time: two builds of the same bytes record
    the same key), so a changed byte in any of them changes it, whatever the time."""
    config = config_in(tmp_path / "project")
    bundle = bundle_in(tmp_path / "bundle")
    key = published_atlas_key(bundle, config)  # type: ignore[arg-type]
    assert key == published_atlas_key(bundle, config)  # type: ignore[arg-type]
    seen = {key}
    for name in ("bundle.json", "level-2.png", "level-4.png", "cells-2.json", "cells-4.json"):
        path = tmp_path / "bundle" / name
        bump_mtime(path)  # touched: same bytes, a new time
        assert published_atlas_key(bundle, config) == key, name  # type: ignore[arg-type]
        stat = path.stat()
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1  # one bit, same size, same time
        path.write_bytes(bytes(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        new = published_atlas_key(bundle, config)  # type: ignore[arg-type]
        assert new not in seen, name
        seen.add(new)
        path.write_bytes(bytes(data) + b" ")  # another size
        assert published_atlas_key(bundle, config) not in seen, name  # type: ignore[arg-type]
        seen.add(published_atlas_key(bundle, config))  # type: ignore[arg-type]
        key = published_atlas_key(bundle, config)  # type: ignore[arg-type]


def test_an_atlas_key_follows_the_tile_settings_and_the_bundle_folder(tmp_path: Path) -> None:
    bundle = bundle_in(tmp_path / "bundle")
    png = config_in(tmp_path / "one")
    jpeg = config_in(tmp_path / "two", "quality = 80\n")  # appended to [tiles]
    assert png.tiles != jpeg.tiles and dataclasses.asdict(png.tiles)["format"] == "png"
    assert published_atlas_key(bundle, png) != published_atlas_key(bundle, jpeg)  # type: ignore[arg-type]
    moved = dataclasses.replace(bundle, root=tmp_path / "elsewhere")  # type: ignore[type-var]
    (tmp_path / "elsewhere").symlink_to(tmp_path / "bundle")
    assert published_atlas_key(moved, png) != published_atlas_key(bundle, png)  # type: ignore[arg-type]


def test_a_published_atlas_is_intact_only_with_its_files_and_every_tile(tmp_path: Path) -> None:
    bundle = bundle_in(tmp_path / "bundle")
    folder = tmp_path / "site" / "atlases" / "grid"
    publish_atlas(bundle, folder, TileSettings(format="png"), tmp_path / "cache")  # type: ignore[arg-type]
    assert _intact_atlas(folder)
    for name in ("viewer.json", "atlas.dzi", "fallback.jpg"):
        data = (folder / name).read_bytes()
        (folder / name).unlink()
        assert not _intact_atlas(folder), name
        (folder / name).write_bytes(data)
    assert _intact_atlas(folder)
    tile = sorted((folder / "atlas_files").rglob("*.png"))[0]
    tile.unlink()
    assert not _intact_atlas(folder)


def test_a_page_output_is_unchanged_only_with_the_bytes_the_build_wrote(tmp_path: Path) -> None:
    from generator.cache import bytes_digest

    page = tmp_path / "page.html"
    page.write_text("<p>hello</p>")
    state = PageState("key", bytes_digest(b"<p>hello</p>"), [], [], "page.md")
    assert _unchanged(page, state)
    page.write_text("<p>hello!</p>")
    assert not _unchanged(page, state)
    page.unlink()
    assert not _unchanged(page, state)


def test_page_keys_ignore_mapping_order_but_not_values() -> None:
    key = json_key("shared", {"title": "Ünïcode", "n": 1}, ["x", None])
    assert key == json_key("shared", {"n": 1, "title": "Ünïcode"}, ["x", None])
    assert key != json_key("shared", {"title": "Unicode", "n": 1}, ["x", None])
    assert key != json_key("shared", {"title": "Ünïcode", "n": 1}, ["x"])
    assert len({json_key(1), json_key("1"), json_key([1]), json_key(1, None)}) == 4


def test_a_page_key_is_the_digest_of_its_compact_sorted_utf8_json() -> None:
    """The format of the keys state.json keeps: a page whose inputs did not change keeps its
    key from one release to the next (else every page re-renders once after an upgrade), so
    the text digested is fixed: compact separators, sorted keys, UTF-8 (not \\u escapes)."""
    import hashlib

    text = '["shared",{"n":1,"title":"Ünïcode"},["x",null]]'
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    assert json_key("shared", {"title": "Ünïcode", "n": 1}, ["x", None]) == expected


def test_code_and_templates_digest_follows_every_template(tmp_path: Path) -> None:
    root = tmp_path / "project"
    make_project(root)
    config = load_config(root / "atlas.toml")
    digest = site_code_digest(template_dirs(config))
    assert digest == site_code_digest(template_dirs(config))
    override = config.paths.templates / "article.html"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text("{% extends 'base.html' %}")  # an override appears
    with_override = site_code_digest(template_dirs(config))
    assert with_override != digest
    override.write_text("{% extends 'base.html' %}{# edited #}")  # it changes
    assert site_code_digest(template_dirs(config)) not in (digest, with_override)
    edited = site_code_digest(template_dirs(config))
    static = override.parent / "static" / "site.css"  # static files count too (import maps)
    static.parent.mkdir()
    static.write_text("body { margin: 0 }")
    assert site_code_digest(template_dirs(config)) not in (digest, with_override, edited)
