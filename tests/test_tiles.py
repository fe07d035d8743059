"""Tests of generator/tiles: pyramid geometry, determinism, caching, cell detection, semantic zoom.

Images are made here (tiny, a few hundred px) except the shared reference atlas (1600 px).
Tiles are read back with Pillow, not pyvips: pyvips caches decoded files by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.bundle import AtlasBundle, Level, cells_document
from generator.errors import ConfigError, ContentError
from generator.tiles import (
    DziLevel,
    TileSettings,
    bundle_from_image,
    check_dzi,
    dzi_levels,
    plan_spans,
    publish_atlas,
    read_dzi,
    tile_box,
    tile_image,
    tree_stats,
)
from generator.tiles import publish as publish_module
from generator.tiles.pyramid import write_fallback

#: Small tiles so tiny test images still have several tiles per level.
SMALL = TileSettings(tile_size=64, overlap=1, format="jpg", quality=85)

#: One distinct colour per semantic-zoom level (coarse to fine): red, green, blue.
LEVEL_COLOURS = {4: (220, 30, 30), 8: (30, 200, 40), 16: (40, 60, 230)}


def noise_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 [height, width, 3] of 4 px blocks of random colour (icon-like detail)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (-(-height // 4), -(-width // 4), 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)[:height, :width]


def tree(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def level_files(files: Path) -> dict[int, set[str]]:
    """DZI level -> tile file names in a ``*_files`` folder."""
    return {int(d.name): {f.name for f in d.iterdir()} for d in files.iterdir() if d.is_dir()}


def assert_pyramid_matches_dzi(dzi: Path) -> None:
    """Every level folder holds exactly the tiles ``dzi_levels`` implies, each of the size
    ``tile_box`` gives (overlap included), and nothing else."""
    info = read_dzi(dzi)
    files = dzi.parent / f"{dzi.stem}_files"
    found = level_files(files)
    levels = dzi_levels(info.width, info.height, info.tile_size)
    assert sorted(found) == [lv.level for lv in levels]
    assert sorted(p.name for p in files.iterdir()) == sorted(str(lv.level) for lv in levels)
    for lv in levels:
        names = {f"{c}_{r}.{info.format}" for c in range(lv.cols) for r in range(lv.rows)}
        assert found[lv.level] == names, f"level {lv.level}"
        for col in range(lv.cols):
            for row in range(lv.rows):
                with Image.open(files / str(lv.level) / f"{col}_{row}.{info.format}") as tile:
                    _, _, w, h = tile_box(lv, col, row, info.tile_size, info.overlap)
                    assert tile.size == (w, h), f"level {lv.level} tile {col}_{row}"


def make_bundle(
    root: Path, grids: list[int], cell_px: int, colours: dict[int, tuple]
) -> AtlasBundle:
    """A bundle of solid-colour levels (one colour per grid) with one occupied cell each."""
    root.mkdir(parents=True, exist_ok=True)
    levels = []
    for grid in grids:
        side = grid * cell_px
        pixels = np.empty((side, side, 3), np.uint8)
        pixels[:] = colours[grid]
        Image.fromarray(pixels).save(root / f"level-{grid}.png")
        doc = cells_document(grid, cell_px, [(0, 0, 3, [1, 0], [0.5, 0.25])])
        (root / f"cells-{grid}.json").write_text(json.dumps(doc))
        levels.append(Level(grid, cell_px, f"level-{grid}.png", f"cells-{grid}.json"))
    bundle = AtlasBundle(
        id="toy",
        kind="layer",
        title="Toy atlas",
        levels=tuple(levels),
        labels=("cat", "dog"),
        info={"layer": "mixed4c"},
        root=root,
    )
    bundle.save()
    return AtlasBundle.load(root)


def atlas_with_empty_cells(grid: int, cell_px: int, empty: set[tuple[int, int]]) -> np.ndarray:
    """uint8 [G*cell, G*cell, 3]: noise icons on white, the ``(col, row)`` cells in ``empty``
    left white."""
    side = grid * cell_px
    pixels = noise_image(side, side, seed=1)
    for col, row in empty:
        pixels[row * cell_px : (row + 1) * cell_px, col * cell_px : (col + 1) * cell_px] = 255
    return pixels


# --- Deep Zoom geometry -------------------------------------------------------------------


def test_dzi_levels_known_values() -> None:
    levels = dzi_levels(1600, 1600, 254)
    assert len(levels) == 12  # 2**11 = 2048 >= 1600
    assert levels[-1] == DziLevel(11, 1600, 1600, 7, 7)
    assert levels[10] == DziLevel(10, 800, 800, 4, 4)
    assert levels[0] == DziLevel(0, 1, 1, 1, 1)
    level, width, height, cols, rows = levels[9]  # a plain tuple too
    assert (level, width, height, cols, rows) == (9, 400, 400, 2, 2)
    assert dzi_levels(1, 1, 254) == [DziLevel(0, 1, 1, 1, 1)]
    # odd sizes round up at every level, like libvips and OpenSeadragon
    assert [(lv.width, lv.height) for lv in dzi_levels(1001, 517, 254)[-3:]] == [
        (251, 130),
        (501, 259),
        (1001, 517),
    ]


@pytest.mark.parametrize("fmt", ["jpg", "webp", "png"])
@pytest.mark.parametrize("size", [(301, 130), (64, 64), (65, 3)])
def test_pyramid_structure_matches_dzi_levels(tmp_path: Path, fmt: str, size: tuple) -> None:
    width, height = size
    image = tmp_path / "in.png"
    Image.fromarray(noise_image(width, height)).save(image)
    settings = TileSettings(tile_size=64, overlap=2, format=fmt, quality=80)
    dzi = tile_image(image, tmp_path / "out" / "atlas", settings)
    assert dzi == tmp_path / "out" / "atlas.dzi"
    info = read_dzi(dzi)
    assert (info.width, info.height, info.tile_size, info.overlap, info.format) == (
        width,
        height,
        64,
        2,
        fmt,
    )
    assert_pyramid_matches_dzi(dzi)
    assert check_dzi(dzi) == []


def test_tile_image_is_deterministic(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    Image.fromarray(noise_image(700, 450)).save(image)
    tile_image(image, tmp_path / "a" / "atlas", SMALL)
    tile_image(image, tmp_path / "b" / "atlas", SMALL)
    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert len(first) > 50
    assert first == second
    assert not any(name.endswith("vips-properties.xml") for name in first)


def test_tile_image_refuses_to_overwrite(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    Image.fromarray(noise_image(40, 40)).save(image)
    tile_image(image, tmp_path / "atlas", SMALL)
    with pytest.raises(FileExistsError):
        tile_image(image, tmp_path / "atlas", SMALL)


@pytest.mark.parametrize(
    ("field", "value"),
    [("tile_size", 8), ("tile_size", 254.0), ("overlap", -1), ("overlap", 100),
     ("format", "jpeg"), ("format", "gif"), ("quality", 0), ("quality", 101)],
)  # fmt: skip
def test_tile_settings_are_validated(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        TileSettings(**{field: value})  # type: ignore[arg-type]
    assert f"[tiles] {field}" in str(err.value)
    assert err.value.fix


def test_tile_settings_suffix() -> None:
    assert TileSettings().suffix == ".jpg[Q=85,keep=none,optimize_coding]"
    assert TileSettings(format="webp", quality=70).suffix == ".webp[Q=70,keep=none]"
    assert TileSettings(format="png").suffix.startswith(".png[")


# --- check_dzi ------------------------------------------------------------------------------


def test_check_dzi_reports_a_deleted_tile(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    Image.fromarray(noise_image(200, 150)).save(image)
    dzi = tile_image(image, tmp_path / "atlas", SMALL)
    assert check_dzi(dzi) == []
    (tmp_path / "atlas_files" / "8" / "2_1.jpg").unlink()
    assert check_dzi(dzi) == ["atlas_files/8/2_1.jpg"]
    for name in ("0", "1"):
        (tmp_path / "atlas_files" / name / "0_0.jpg").unlink()
        (tmp_path / "atlas_files" / name).rmdir()
    assert check_dzi(dzi) == [
        "atlas_files/0/0_0.jpg",
        "atlas_files/1/0_0.jpg",
        "atlas_files/8/2_1.jpg",
    ]


def test_check_dzi_names_a_broken_descriptor(tmp_path: Path) -> None:
    broken = tmp_path / "atlas.dzi"
    broken.write_text("<Image TileSize='254'>")
    with pytest.raises(ContentError) as err:
        check_dzi(broken)
    assert str(broken) in str(err.value)
    with pytest.raises(ContentError, match="not found"):
        check_dzi(tmp_path / "absent.dzi")


# --- bundle_from_image ------------------------------------------------------------------------


@pytest.mark.parametrize(("cell_px", "suffix"), [(32, ".jpg"), (30, ".jpg"), (32, ".png")])
def test_bundle_from_image_finds_occupied_cells(tmp_path: Path, cell_px: int, suffix: str) -> None:
    empty = {(0, 0), (9, 9), (3, 4), (4, 4), (5, 4), (0, 7), (8, 2)}
    image = tmp_path / f"atlas{suffix}"
    Image.fromarray(atlas_with_empty_cells(10, cell_px, empty)).save(image, quality=75)
    bundle = bundle_from_image(
        image, atlas_id="demo", title="Demo", grid=10, icon_size=cell_px, work_dir=tmp_path / "w"
    )
    assert bundle.grids == (10,)
    assert bundle.level(10).cell_px == cell_px
    assert bundle.level(10).image == f"level-10{suffix}"
    assert (bundle.root / bundle.level(10).image).read_bytes() == image.read_bytes()
    doc = json.loads((bundle.root / "cells-10.json").read_text())
    assert (doc["grid"], doc["cell_px"]) == (10, cell_px)
    found = {(c, r) for c, r, *_ in doc["cells"]}
    assert found == {(c, r) for c in range(10) for r in range(10)} - empty
    assert all(n == 0 and top == [] for _, _, n, top, _ in doc["cells"])


def test_bundle_from_image_ignores_faint_noise_and_flattens_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels = np.full((64, 64, 4), 255, np.uint8)
    pixels[..., :3] -= rng.integers(0, 12, (64, 64, 3), dtype=np.uint8)  # faint noise
    pixels[32:, :32, 3] = 0  # transparent cell: the background
    pixels[:32, 32:, :3] = 0  # a black cell
    image = tmp_path / "rgba.png"
    Image.fromarray(pixels, "RGBA").save(image)
    bundle = bundle_from_image(
        image, atlas_id="a", title="A", grid=2, icon_size=32, work_dir=tmp_path / "w"
    )
    cells = json.loads((bundle.root / "cells-2.json").read_text())["cells"]
    assert [(c, r) for c, r, *_ in cells] == [(1, 0)]


def test_bundle_from_image_is_cached(tmp_path: Path) -> None:
    image = tmp_path / "atlas.png"
    Image.fromarray(atlas_with_empty_cells(4, 16, {(1, 1)})).save(image)
    kwargs = {"atlas_id": "c", "title": "C", "grid": 4, "icon_size": 16, "work_dir": tmp_path}
    first = bundle_from_image(image, **kwargs)  # type: ignore[arg-type]
    stamp = (first.root / "bundle.json").stat().st_mtime_ns
    again = bundle_from_image(image, **kwargs)  # type: ignore[arg-type]
    assert again == first
    assert (again.root / "bundle.json").stat().st_mtime_ns == stamp
    retitled = bundle_from_image(image, **{**kwargs, "title": "Other"})  # type: ignore[arg-type]
    assert retitled.root != first.root and retitled.title == "Other"


def test_bundle_from_image_size_mismatch_names_file_and_fix(tmp_path: Path) -> None:
    image = tmp_path / "atlas.png"
    Image.fromarray(noise_image(320, 320)).save(image)
    with pytest.raises(ContentError) as err:
        bundle_from_image(
            image, atlas_id="m", title="M", grid=20, icon_size=32, work_dir=tmp_path / "w"
        )
    message = str(err.value)
    assert str(image) in message
    assert "640x640 px" in message and "320x320 px" in message
    assert "grid = 10" in message
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("damage", ["missing", "junk", "truncated"])
def test_bundle_from_image_bad_file_names_it(tmp_path: Path, damage: str) -> None:
    image = tmp_path / "atlas.jpg"
    if damage != "missing":
        Image.fromarray(noise_image(320, 320)).save(image, quality=90)
        data = image.read_bytes()
        image.write_bytes(b"not an image at all" if damage == "junk" else data[: len(data) // 2])
    with pytest.raises(ContentError) as err:
        bundle_from_image(
            image, atlas_id="b", title="B", grid=10, icon_size=32, work_dir=tmp_path / "w"
        )
    assert str(image) in str(err.value)
    assert err.value.fix
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_bundle_from_image_rejects_bad_parameters(tmp_path: Path) -> None:
    image = tmp_path / "atlas.png"
    Image.fromarray(noise_image(32, 32)).save(image)
    with pytest.raises(ConfigError, match="grid"):
        bundle_from_image(image, atlas_id="x", title="X", grid=0, icon_size=32, work_dir=tmp_path)
    with pytest.raises(ConfigError, match="background"):
        bundle_from_image(
            image, atlas_id="x", title="X", grid=1, icon_size=32, work_dir=tmp_path,
            background="white",
        )  # fmt: skip


# --- semantic zoom ----------------------------------------------------------------------------


def test_plan_spans_assigns_each_dzi_level_to_one_grid() -> None:
    spans = plan_spans([(20, 80, 1600, 1600), (40, 80, 3200, 3200), (80, 80, 6400, 6400)], "b")
    assert [(s.grid, s.scale, s.dzi_min_level, s.dzi_max_level) for s in spans] == [
        (20, 4, 0, 11),
        (40, 2, 12, 12),
        (80, 1, 13, 13),
    ]
    skip = plan_spans([(20, 80, 1600, 1600), (80, 80, 6400, 6400)], "b")
    assert [(s.dzi_min_level, s.dzi_max_level) for s in skip] == [(0, 11), (12, 13)]


@pytest.mark.parametrize(
    "levels",
    [
        [(20, 80, 1600, 1600), (30, 80, 2400, 2400)],  # ratio 1.5
        [(20, 80, 1600, 1600), (40, 40, 1600, 1600)],  # same side: no zoom between them
        [(40, 80, 3200, 3200), (20, 80, 1600, 1600)],  # fine to coarse
        [(21, 80, 1680, 1680), (40, 80, 3200, 3200)],  # not an exact half
    ],
)
def test_plan_spans_rejects_sides_that_do_not_halve(levels: list) -> None:
    with pytest.raises(ConfigError) as err:
        plan_spans(levels, "content/bundle.json")
    message = str(err.value)
    assert "content/bundle.json" in message and "power of two" in message
    assert f"grid {levels[1][0]}: {levels[1][2]}x{levels[1][3]} px" in message


def test_semantic_zoom_levels_come_from_the_right_grid(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", [4, 8, 16], 32, LEVEL_COLOURS)
    published = publish_atlas(bundle, tmp_path / "site" / "toy", SMALL, tmp_path / "cache")
    manifest = published.manifest
    assert [
        (lv["grid"], lv["cell_px"], lv["scale"], lv["dzi_min_level"], lv["dzi_max_level"])
        for lv in manifest["levels"]
    ] == [(4, 32, 4, 0, 7), (8, 32, 2, 8, 8), (16, 32, 1, 9, 9)]
    dzi = published.folder / "atlas.dzi"
    assert (manifest["width"], manifest["height"]) == (512, 512)
    assert_pyramid_matches_dzi(dzi)
    owner = {L: lv["grid"] for lv in manifest["levels"]
             for L in range(lv["dzi_min_level"], lv["dzi_max_level"] + 1)}  # fmt: skip
    for level, names in level_files(published.folder / "atlas_files").items():
        expected = np.array(LEVEL_COLOURS[owner[level]])
        for name in names:
            with Image.open(published.folder / "atlas_files" / str(level) / name) as tile:
                pixels = np.asarray(tile.convert("RGB"), dtype=int)
            # every pixel of the tile is the owning grid's colour: no other grid leaks in
            assert np.abs(pixels - expected).max() <= 12, f"level {level} tile {name}"
    # it replaces levels: exactly as many tiles as a plain pyramid of the finest image
    plain = tile_image(bundle.root / "level-16.png", tmp_path / "plain" / "atlas", SMALL)
    assert tree_stats(published.folder / "atlas_files")[0] == tree_stats(plain.parent)[0] - 1


def test_publish_writes_the_documented_folder(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", [4, 8], 32, LEVEL_COLOURS)
    published = publish_atlas(bundle, tmp_path / "site" / "toy", SMALL, tmp_path / "cache")
    folder = published.folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "atlas.dzi", "atlas_files", "cells-4.json", "cells-8.json", "fallback.jpg", "viewer.json",
    ]  # fmt: skip
    assert json.loads((folder / "viewer.json").read_text()) == published.manifest
    manifest = published.manifest
    assert {k: manifest[k] for k in ("id", "title", "kind", "dzi", "fallback", "labels")} == {
        "id": "toy", "title": "Toy atlas", "kind": "layer", "dzi": "atlas.dzi",
        "fallback": "fallback.jpg", "labels": ["cat", "dog"],
    }  # fmt: skip
    assert (manifest["tile_size"], manifest["overlap"], manifest["format"]) == (64, 1, "jpg")
    assert manifest["info"] == {"layer": "mixed4c"}
    assert (folder / "cells-8.json").read_bytes() == (bundle.root / "cells-8.json").read_bytes()
    with Image.open(folder / "fallback.jpg") as fallback:  # the coarsest level
        assert (
            fallback.size == (128, 128) == (manifest["fallback_width"], manifest["fallback_height"])
        )
        assert np.abs(np.asarray(fallback, dtype=int) - LEVEL_COLOURS[4]).max() <= 12
    assert (published.files, published.bytes) == tree_stats(folder)
    assert oct(folder.stat().st_mode & 0o755) == oct(0o755)


def test_publish_is_deterministic(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", [4, 8, 16], 32, LEVEL_COLOURS)
    a = publish_atlas(bundle, tmp_path / "a" / "toy", SMALL, tmp_path / "cache-a")
    b = publish_atlas(bundle, tmp_path / "b" / "toy", SMALL, tmp_path / "cache-b")
    assert tree(a.folder) == tree(b.folder)


def test_publish_reuses_the_cached_pyramid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cuts: list[Path] = []
    real_cut = publish_module.cut_pyramid

    def counting_cut(*args, **kwargs):  # type: ignore[no-untyped-def]
        cuts.append(args[-1])
        return real_cut(*args, **kwargs)

    monkeypatch.setattr(publish_module, "cut_pyramid", counting_cut)
    bundle = make_bundle(tmp_path / "bundle", [4, 8], 32, LEVEL_COLOURS)
    cache = tmp_path / "cache"
    first = publish_atlas(bundle, tmp_path / "one" / "toy", SMALL, cache)
    second = publish_atlas(bundle, tmp_path / "two" / "toy", SMALL, cache)
    assert len(cuts) == 1
    assert tree(first.folder) == tree(second.folder)
    (entry,) = [p for p in (cache / "tiles").iterdir() if p.is_dir()]  # beside it: its seal
    tile = Path("atlas_files/8/0_0.jpg")
    # published by hard links to the cached tiles (same file system here)
    assert (second.folder / tile).stat().st_ino == (entry / tile).stat().st_ino
    # other settings: another pyramid
    publish_atlas(bundle, tmp_path / "three" / "toy", TileSettings(tile_size=100), cache)
    assert len(cuts) == 2
    # a damaged cache entry is recut, not published with holes
    (entry / tile).unlink()
    again = publish_atlas(bundle, tmp_path / "one" / "toy", SMALL, cache)
    assert len(cuts) == 3
    assert check_dzi(again.folder / "atlas.dzi") == []


def test_publish_rejects_a_wrong_level_image_and_keeps_dest(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", [4, 8], 32, LEVEL_COLOURS)
    dest = tmp_path / "site" / "toy"
    publish_atlas(bundle, dest, SMALL, tmp_path / "cache")
    before = tree(dest)
    Image.fromarray(noise_image(250, 256)).save(bundle.root / "level-8.png")
    with pytest.raises(ContentError) as err:
        publish_atlas(bundle, dest, SMALL, tmp_path / "cache")
    assert str(bundle.root / "level-8.png") in str(err.value)
    assert "256x256 px" in str(err.value) and "250x256 px" in str(err.value)
    assert tree(dest) == before


def test_publish_names_a_truncated_level_image(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", [4, 8], 32, LEVEL_COLOURS)
    level = bundle.root / "level-8.png"
    Image.fromarray(noise_image(256, 256)).save(level)
    level.write_bytes(level.read_bytes()[:5000])
    with pytest.raises(ContentError) as err:
        publish_atlas(bundle, tmp_path / "site" / "toy", SMALL, tmp_path / "cache")
    assert str(level) in str(err.value)
    assert not (tmp_path / "site" / "toy").exists()
    assert not list((tmp_path / "cache" / "tiles").iterdir())


def test_publish_rejects_a_cells_document_of_another_grid(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "bundle", [4, 8], 32, LEVEL_COLOURS)
    (bundle.root / "cells-8.json").write_text(json.dumps(cells_document(4, 32, [])))
    with pytest.raises(ContentError, match="another grid") as err:
        publish_atlas(bundle, tmp_path / "site" / "toy", SMALL, tmp_path / "cache")
    assert str(bundle.root / "cells-8.json") in str(err.value)


def test_fallback_is_at_most_1600_px(tmp_path: Path) -> None:
    image = tmp_path / "wide.png"
    Image.fromarray(noise_image(2000, 1000)).save(image)
    assert write_fallback(image, (255, 255, 255), tmp_path / "f.jpg") == (1600, 800)
    with Image.open(tmp_path / "f.jpg") as fallback:
        assert fallback.size == (1600, 800)


# --- a published 20x20 atlas of 80 px cells (the article's format) ----------------------------


def publish_20x20_atlas(image: Path, tmp_path: Path) -> tuple[set[tuple[int, int]], Path]:
    """Publish ``image`` (1600 px, 20x20 cells of 80 px) as the article's mixed4c atlas is
    published; returns its occupied cells and published folder after checking the folder."""
    bundle = bundle_from_image(
        image, atlas_id="mixed4c", title="mixed4c", grid=20, icon_size=80,
        work_dir=tmp_path / "work",
    )  # fmt: skip
    assert AtlasBundle.load(bundle.root) == bundle
    doc = json.loads((bundle.root / "cells-20.json").read_text())
    occupied = {(c, r) for c, r, *_ in doc["cells"]}
    published = publish_atlas(bundle, tmp_path / "site" / "mixed4c", TileSettings(), tmp_path / "c")
    assert check_dzi(published.folder / "atlas.dzi") == []
    assert_pyramid_matches_dzi(published.folder / "atlas.dzi")
    assert published.manifest["levels"] == [
        {"grid": 20, "cell_px": 80, "cells": "cells-20.json", "scale": 1,
         "dzi_min_level": 0, "dzi_max_level": 11},
    ]  # fmt: skip
    assert (published.manifest["width"], published.manifest["height"]) == (1600, 1600)
    assert 40 < published.files < 200
    assert os.path.getsize(published.folder / "fallback.jpg") < 1_000_000
    return occupied, published.folder


def test_a_1600px_jpeg_atlas_with_a_blob_of_cells_publishes(tmp_path: Path) -> None:
    """The article's format on an image made here (the equivalent of the test below, which
    needs ../shared): a round blob of icons on white, corners and rim left empty."""
    empty = {(c, r) for c in range(20) for r in range(20) if (c - 9.5) ** 2 + (r - 9.5) ** 2 > 90}
    image = tmp_path / "atlas.jpg"
    Image.fromarray(atlas_with_empty_cells(20, 80, empty)).save(image, quality=85)
    occupied, folder = publish_20x20_atlas(image, tmp_path)
    assert occupied == {(c, r) for c in range(20) for r in range(20)} - empty
    assert len(occupied) == 400 - len(empty) and (0, 0) not in occupied and (10, 10) in occupied
    with Image.open(folder / "fallback.jpg") as fallback:
        corner = np.asarray(fallback.convert("RGB"))[:40, :40]
    assert corner.min() > 240  # an empty cell stays white in the published image


# --- the shared reference atlas ----------------------------------------------------------------


def test_reference_atlas_publishes(reference_atlas: Path, tmp_path: Path) -> None:
    occupied, _ = publish_20x20_atlas(reference_atlas, tmp_path)
    # The article's 20x20 atlas leaves 113 cells white (no activations there): corners and
    # the edges of the layout's blob (checked against a downscaled view of the image).
    assert len(occupied) == 287
    assert (0, 0) not in occupied and (19, 0) not in occupied and (0, 19) not in occupied
    assert {(10, 10), (4, 0), (7, 0), (0, 10), (19, 9), (5, 19)} <= occupied
