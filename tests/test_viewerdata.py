"""Tests of generator/viewerdata (example sprites, quantised class heat maps) and of publishing
them with an atlas; plus the size report for 20..160 grids with 1008 classes
(``pytest -m slow tests/test_viewerdata.py`` writes test-artifacts/viewerdata-sizes.json).
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.bundle import AtlasBundle, Level, cells_document
from generator.bundle.viewerdata import (
    crop_receptive_field,
    pick_examples,
    quantise,
    read_examples,
    read_heatmap,
    viewer_info,
    write_examples,
    write_heatmaps,
)
from generator.errors import ContentError
from generator.tiles import TileSettings, publish_atlas
from generator.tiles.publish import CELLS_BLOCK, cells_blocks

LABELS = (
    Path(__file__).resolve().parents[1] / "generator/models/labels/inceptionv1_lucid_labels.txt"
)


def colour_of(col: int, row: int, e: int) -> tuple[int, int, int]:
    """A distinct flat colour per example (far apart, so JPEG cannot confuse two)."""
    return (40 + 50 * (col % 4), 40 + 50 * (row % 4), 40 + 60 * e)


def flat_thumbs(cells: np.ndarray, per_cell: int, side: int) -> np.ndarray:
    thumbs = np.empty((len(cells), per_cell, side, side, 3), np.uint8)
    for m, (col, row) in enumerate(cells.tolist()):
        for e in range(per_cell):
            thumbs[m, e] = colour_of(col, row, e)
    return thumbs


# --- choosing and cropping ------------------------------------------------------------------


def test_pick_examples_is_deterministic_and_stays_in_each_cell() -> None:
    rng = np.random.default_rng(0)
    sample_cell = rng.integers(-1, 6, 200)
    sample_cell[sample_cell == 5] = 4  # cell 5 holds no sample
    chosen = pick_examples(sample_cell, 6, 3, seed=7)
    assert chosen.shape == (6, 3) and chosen.dtype == np.int64
    assert np.array_equal(chosen, pick_examples(sample_cell, 6, 3, seed=7))
    assert not np.array_equal(chosen, pick_examples(sample_cell, 6, 3, seed=8))
    for cell in range(6):
        picked = chosen[cell][chosen[cell] >= 0]
        assert len(picked) == min(3, int((sample_cell == cell).sum()))
        assert (sample_cell[picked] == cell).all() and len(set(picked.tolist())) == len(picked)
    assert (chosen[5] == -1).all()
    with pytest.raises(ValueError, match="refers to cell"):
        pick_examples(np.array([0, 9]), 3, 2, seed=0)


def test_crop_receptive_field_centres_the_window_and_fills_outside() -> None:
    image = np.zeros((224, 224, 3), np.uint8)
    image[:112, :112] = (255, 0, 0)  # top-left quadrant red
    image[112:, 112:] = (0, 0, 255)  # bottom-right blue
    # position (0, 0) of a 14x14 map: centre (8, 8) px; a 64 px window is half outside
    crop = crop_receptive_field(image, (0, 0), (14, 14), 64, 32)
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
    assert tuple(crop[2, 2]) == (128, 128, 128)  # outside the image: fill
    assert tuple(crop[24, 24]) == (255, 0, 0)
    # position (13, 13): centre (216, 216), blue around it
    assert tuple(crop_receptive_field(image, (13, 13), (14, 14), 16, 8)[4, 4]) == (0, 0, 255)


# --- example sprites ------------------------------------------------------------------------


def test_examples_round_trip_with_sheets_per_block(tmp_path: Path) -> None:
    grid, side = 10, 16
    cells = np.array([(0, 0), (3, 0), (4, 1), (9, 9), (5, 6)])
    thumbs = flat_thumbs(cells, 3, side)
    counts = np.array([3, 1, 2, 3, 0])
    desc = write_examples(tmp_path, grid, cells, thumbs, counts, block=4)
    folder = tmp_path / "examples-10"
    assert desc == {
        "folder": "examples-10", "format": 1, "thumb": side, "per_cell": 3, "block": 4,
        "sheets": 3, "bytes": desc["bytes"],
    }  # fmt: skip
    # blocks: (0,0) holds (0,0),(3,0); (1,0) holds (4,1); (2,2) holds (9,9); (5,6) has none
    assert sorted(p.name for p in folder.iterdir()) == [
        "0_0.jpg",
        "1_0.jpg",
        "2_2.jpg",
        "index.json",
    ]
    assert desc["bytes"] == sum(p.stat().st_size for p in folder.iterdir())
    with Image.open(folder / "2_2.jpg") as sheet:  # the last block is 2x2 cells (10 = 4+4+2)
        assert sheet.size == (2 * 3 * side, 2 * side)
    index = json.loads((folder / "index.json").read_text())
    per_cell = np.frombuffer(base64.b64decode(index["counts"]), np.uint8).reshape(grid, grid)
    assert per_cell[0, 3] == 1 and per_cell[1, 4] == 2 and per_cell[6, 5] == 0
    assert per_cell.sum() == counts.sum()
    for (col, row), n in zip(cells.tolist(), counts.tolist(), strict=True):
        got = read_examples(folder, col, row)
        assert got.shape == (n, side, side, 3)
        for e in range(n):
            # the middle of each thumbnail is its own colour (JPEG: within a few levels)
            assert np.abs(got[e, 4:-4, 4:-4].astype(int) - colour_of(col, row, e)).max() <= 6
    assert read_examples(folder, 1, 1).shape == (0, side, side, 3)


def test_examples_from_a_lazy_sequence_match_the_array_form(tmp_path: Path) -> None:
    cells = np.array([(1, 2), (2, 2), (7, 3)])
    thumbs = flat_thumbs(cells, 2, 8)
    asked: list[int] = []

    class Lazy:
        def __len__(self) -> int:
            return len(cells)

        def __getitem__(self, index: int) -> np.ndarray:
            asked.append(index)
            return thumbs[index, : 1 + index % 2]

    a = write_examples(tmp_path / "a", 8, cells, thumbs, np.array([1, 2, 1]))
    b = write_examples(tmp_path / "b", 8, cells, Lazy(), per_cell=2)
    assert sorted(asked) == [0, 1, 2]  # each cell read once
    assert a == b
    for name in ("index.json", "0_0.jpg", "1_0.jpg"):
        assert (tmp_path / "a/examples-8" / name).read_bytes() == (
            tmp_path / "b/examples-8" / name
        ).read_bytes()


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (np.array([(0, 0), (0, 0)]), "distinct"),
        (np.array([(0, 10)]), r"\[0, 10\)"),
        (np.array([[0.5, 1.0]]), "int"),
    ],
)
def test_writers_reject_bad_cells(tmp_path: Path, cells: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_examples(tmp_path, 10, cells, np.zeros((len(cells), 1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=message):
        write_heatmaps(tmp_path, 10, cells, np.zeros((len(cells), 2), np.float32), ["a", "b"])
    assert not (tmp_path / "examples-10").exists() and not (tmp_path / "heatmap-10").exists()


# --- heat maps ---------------------------------------------------------------------------------


def test_quantise_error_is_at_most_half_a_step() -> None:
    rng = np.random.default_rng(1)
    values = (rng.standard_normal((500, 30)) * rng.uniform(1e-4, 10, 30)).astype(np.float32)
    values[:, 3] = 0  # a class nobody attributes to
    scales, q = quantise(values)
    assert q.dtype == np.int8 and scales.dtype == np.float32 and np.abs(q).max() <= 127
    error = np.abs(q.astype(np.float64) * scales - values)
    bound = np.abs(values).max(axis=0) / 254
    assert (error <= bound * (1 + 1e-5) + 1e-12).all()
    assert scales[3] == 0 and (q[:, 3] == 0).all()
    # the extreme of each class is represented exactly (+-127 steps)
    peak = np.abs(values).argmax(axis=0)
    assert (np.abs(q[peak, np.arange(30)]) == 127)[np.arange(30) != 3].all()


def test_heatmaps_chunk_layout_and_round_trip(tmp_path: Path) -> None:
    grid, k = 12, 50
    rng = np.random.default_rng(2)
    flat = np.sort(rng.choice(grid * grid, 60, replace=False))
    cells = np.stack([flat % grid, flat // grid], axis=1)
    shuffled = rng.permutation(len(cells))  # the writer orders cells itself
    values = rng.standard_normal((60, k)).astype(np.float32)
    labels = [f"class {i}" for i in range(k)]
    desc = write_heatmaps(
        tmp_path, grid, cells[shuffled], values[shuffled], labels, chunk_bytes=900
    )
    chunk = 900 // 60  # 15 classes per chunk
    assert desc == {
        "folder": "heatmap-12", "format": 1, "classes": k, "chunk": chunk, "cells": 60,
        "files": 4, "bytes": desc["bytes"],
    }  # fmt: skip
    folder = tmp_path / "heatmap-12"
    sizes = {p.name: p.stat().st_size for p in folder.glob("*.bin")}
    # three full chunks and one of the last 5 classes: float32 scales, then int8 [c, M]
    assert sizes == {"0.bin": 15 * 64, "1.bin": 15 * 64, "2.bin": 15 * 64, "3.bin": 5 * 64}
    index = json.loads((folder / "index.json").read_text())
    mask = np.unpackbits(
        np.frombuffer(base64.b64decode(index["mask"]), np.uint8), bitorder="little"
    )
    assert np.array_equal(np.flatnonzero(mask[: grid * grid]), flat)
    for class_index in (0, 14, 15, 47, 49):
        heat = read_heatmap(folder, class_index)
        expected = np.full(grid * grid, np.nan, np.float32)
        expected[flat] = values[:, class_index]
        bound = np.abs(values[:, class_index]).max() / 254 * (1 + 1e-5)
        assert np.array_equal(np.isnan(heat.ravel()), np.isnan(expected))
        assert np.nanmax(np.abs(heat.ravel() - expected)) <= bound
    # the raw bytes of class 17: chunk 1, second class, after the 15 scales
    data = (folder / "1.bin").read_bytes()
    scale = np.frombuffer(data, "<f4", count=15)[2]
    q = np.frombuffer(data, np.int8, count=60, offset=60 + 2 * 60)
    assert np.abs(q * scale - values[:, 17]).max() <= np.abs(values[:, 17]).max() / 254 * 1.0001


def test_heatmaps_reject_a_label_count_mismatch_and_nan(tmp_path: Path) -> None:
    cells = np.array([(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="cells x labels"):
        write_heatmaps(tmp_path, 2, cells, np.zeros((2, 3), np.float32), ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        write_heatmaps(tmp_path, 2, cells, np.array([[0, np.nan]] * 2, np.float32), ["a", "b"])


# --- publishing --------------------------------------------------------------------------------


def viewer_bundle(root: Path, grids: tuple[int, ...] = (4, 8), cell_px: int = 16) -> AtlasBundle:
    """A two-level bundle with examples on both levels and a heat map on the finest."""
    root.mkdir(parents=True, exist_ok=True)
    levels = []
    extras: dict[int, dict[str, dict]] = {}
    labels = ["cat", "dog", "fox"]
    for grid in grids:
        Image.new("RGB", (grid * cell_px,) * 2, (200, 60, 60)).save(root / f"level-{grid}.png")
        cells = np.array([(c, r) for r in range(grid) for c in range(grid) if (c + r) % 3])
        doc = cells_document(grid, cell_px, [(c, r, 9, [1], [0.5]) for c, r in cells.tolist()])
        (root / f"cells-{grid}.json").write_text(json.dumps(doc))
        levels.append(Level(grid, cell_px, f"level-{grid}.png", f"cells-{grid}.json"))
        extras[grid] = {"examples": write_examples(root, grid, cells, flat_thumbs(cells, 2, 8))}
    fine = grids[-1]
    cells = np.array([(c, r) for r in range(fine) for c in range(fine)])
    values = np.linspace(-1, 1, len(cells) * 3, dtype=np.float32).reshape(-1, 3)
    extras[fine]["heatmap"] = write_heatmaps(root, fine, cells, values, labels)
    bundle = AtlasBundle(
        id="toy",
        kind="layer",
        title="Toy",
        levels=tuple(levels),
        labels=tuple(labels),
        info={"layer": "mixed4c", "viewer": viewer_info(extras)},
        root=root,
    )
    bundle.save()
    return AtlasBundle.load(root)


SMALL = TileSettings(tile_size=64, overlap=1, format="png")


def test_publish_copies_viewer_data_and_lists_it(tmp_path: Path) -> None:
    bundle = viewer_bundle(tmp_path / "bundle")
    published = publish_atlas(bundle, tmp_path / "site/toy", SMALL, tmp_path / "cache")
    folder = published.folder
    levels = published.manifest["levels"]
    assert levels[0]["examples"] == {
        "folder": "examples-4", "format": 1, "thumb": 8, "per_cell": 2, "block": 4,
    }  # fmt: skip
    assert "heatmap" not in levels[0]
    assert levels[1]["heatmap"] == {
        "folder": "heatmap-8", "format": 1, "classes": 3, "chunk": 3, "cells": 64,
    }  # fmt: skip
    assert published.manifest["info"] == {"layer": "mixed4c"}  # the descriptions moved
    for name in ("examples-4", "examples-8", "heatmap-8"):
        source, copy = bundle.root / name, folder / name
        assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in source.iterdir())
        for path in source.iterdir():
            assert (copy / path.name).read_bytes() == path.read_bytes()
    assert np.allclose(
        read_heatmap(folder / "heatmap-8", 2), read_heatmap(bundle.root / "heatmap-8", 2)
    )


def test_publish_splits_a_large_cells_document_into_blocks(tmp_path: Path) -> None:
    grid = 40
    bundle = viewer_bundle(tmp_path / "bundle", grids=(20, grid), cell_px=4)
    rows = [
        (c, r, 10 + c, [c % 3, 1, 2, 0, 1], [0.123456, 0.1, 0.05, 0.01, 0.001])
        for r in range(grid) for c in range(grid) if (c * r) % 7
    ]  # fmt: skip
    doc = cells_document(grid, 4, rows, extra={"samples": 99_999})
    (bundle.root / f"cells-{grid}.json").write_text(json.dumps(doc, indent=1))
    assert (bundle.root / f"cells-{grid}.json").stat().st_size > 131_072
    published = publish_atlas(bundle, tmp_path / "site/toy", SMALL, tmp_path / "cache")
    coarse, fine = published.manifest["levels"]
    assert fine["cells_block"] == CELLS_BLOCK and fine["samples"] == 99_999
    assert "cells_block" not in coarse and coarse["samples"] == 9 * len(
        json.loads((bundle.root / "cells-20.json").read_text())["cells"]
    )
    folder = published.folder / f"cells-{grid}"
    assert sorted(p.name for p in folder.iterdir()) == [
        "0_0.json",
        "0_1.json",
        "1_0.json",
        "1_1.json",
    ]
    found = []
    for path in folder.iterdir():
        block = json.loads(path.read_text())
        bx, by = block["block"]
        assert (block["grid"], block["columns"], block["samples"]) == (grid, doc["columns"], 99_999)
        for row in block["cells"]:
            assert (row[0] // CELLS_BLOCK, row[1] // CELLS_BLOCK) == (bx, by)
        found += block["cells"]
    assert sorted(found) == sorted(doc["cells"])
    # the document itself is published unchanged
    assert (published.folder / f"cells-{grid}.json").read_bytes() == (
        bundle.root / f"cells-{grid}.json"
    ).read_bytes()


def test_publish_names_missing_or_foreign_viewer_data(tmp_path: Path) -> None:
    bundle = viewer_bundle(tmp_path / "bundle")
    (bundle.root / "examples-8" / "index.json").unlink()
    with pytest.raises(ContentError, match="'examples' of grid 8 is missing") as err:
        publish_atlas(bundle, tmp_path / "site/toy", SMALL, tmp_path / "cache")
    assert str(bundle.root / "examples-8") in str(err.value)
    info = dict(bundle.info, viewer={"levels": {"16": {}}})
    other = AtlasBundle(**{**bundle.__dict__, "info": info})
    with pytest.raises(ContentError, match="grid the bundle lacks"):
        publish_atlas(other, tmp_path / "site/toy", SMALL, tmp_path / "cache")
    assert not (tmp_path / "site/toy").exists()


# --- sizes for 20..160 grids (reported in docs/ARCHITECTURE.md) ---------------------------------


def clustered_layout(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 2]`` points in [0, 1]: a mixture of 40 anisotropic blobs, UMAP-like clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.1, 0.9, (40, 2))
    widths = rng.uniform(0.02, 0.12, (40, 2))
    which = rng.integers(0, 40, n)
    xy = centres[which] + rng.standard_normal((n, 2)) * widths[which]
    return np.clip(xy, 0, 1)


@pytest.mark.slow  # ~30 s of writing: a report, run with -m slow
def test_sizes_of_viewer_data_for_20_to_160_grids(tmp_path: Path, artifacts_dir: Path) -> None:
    labels = [line.split(" ", 2)[2] for line in LABELS.read_text().splitlines()]
    labels += [f"unused {i}" for i in range(1008 - len(labels))]
    k = len(labels)
    rng = np.random.default_rng(3)
    xy = clustered_layout(1_000_000)
    report: dict[str, dict[str, float]] = {}
    for grid in (20, 40, 80, 160):
        bins = np.minimum((xy * grid).astype(np.int64), grid - 1)
        counts = np.bincount(bins[:, 1] * grid + bins[:, 0], minlength=grid * grid)
        kept = np.flatnonzero(counts > 5)  # the recipe's min count
        cells = np.stack([kept % grid, grid - 1 - kept // grid], axis=1)
        m = len(cells)
        # attributions: a few strong classes per cell over small noise (like real means)
        values = (rng.standard_normal((m, k)) * 0.02).astype(np.float32)
        values[np.arange(m)[:, None], rng.integers(0, k, (m, 5))] += rng.uniform(0.2, 2, (m, 5))
        top = np.argsort(-values, axis=1)[:, :5]
        rows = [
            (c, r, int(counts[f]), t.tolist(), values[i, t].tolist())
            for i, ((c, r), f, t) in enumerate(zip(cells.tolist(), kept, top, strict=True))
        ]
        document = cells_document(grid, 80, rows)
        doc = json.dumps(document, separators=(",", ":")).encode()
        _, blocks = cells_blocks(doc)
        biggest = max(blocks.values(), key=len, default=b"")
        heat = write_heatmaps(tmp_path, grid, cells, values, labels)
        chunk_file = (tmp_path / f"heatmap-{grid}" / "0.bin").stat().st_size
        report[str(grid)] = {
            "cells": m,
            "cells_json_bytes": len(doc),
            "cells_json_gzip_bytes": len(gzip.compress(doc, 6)),
            "cells_blocks": len(blocks),
            "cells_block_max_bytes": len(biggest),
            "cells_block_max_gzip_bytes": len(gzip.compress(biggest, 6)),
            "heatmap_files": heat["files"] + 1,
            "heatmap_bytes": heat["bytes"],
            "heatmap_classes_per_request": heat["chunk"],
            "heatmap_request_bytes": chunk_file,
            "heatmap_index_bytes": (tmp_path / f"heatmap-{grid}" / "index.json").stat().st_size,
        }
        # one class costs one request of at most ~32 KB at every grid size
        assert chunk_file <= 33_000 + 4 * heat["chunk"]
        # what the viewer loads at once: a whole document up to 128 KB, else a 32 x 32 block
        loaded = biggest if blocks else doc
        assert len(loaded) <= 140_000 and len(gzip.compress(loaded, 6)) < 60_000
    # example sheets (4 x 4 cells, 4 thumbnails of 64 px each): photo-like thumbnails
    for grid in (20, 40):
        cells = np.array([(c, r) for r in range(grid) for c in range(grid)])
        yy, xx = np.mgrid[0:64, 0:64]

        def photo(index: int, xx: np.ndarray = xx, yy: np.ndarray = yy) -> np.ndarray:
            local = np.random.default_rng(index)
            base = (
                local.uniform(0, 255, (4, 1, 1, 3))
                * (0.6 + 0.4 * np.sin(xx / 9 + yy / 13))[None, :, :, None]
            )
            noise = local.normal(0, 12, (4, 64, 64, 3))
            return np.clip(base + noise, 0, 255).astype(np.uint8)

        desc = write_examples(tmp_path, grid, cells, _Lazy(len(cells), photo), per_cell=4)
        sheet = (tmp_path / f"examples-{grid}" / "0_0.jpg").stat().st_size
        report[str(grid)].update(
            examples_sheets=desc["sheets"], examples_bytes=desc["bytes"], examples_sheet_bytes=sheet
        )
        assert sheet < 150_000  # one click: one sheet of 64 thumbnails
    (artifacts_dir / "viewerdata-sizes.json").write_text(json.dumps(report, indent=1))


class _Lazy:
    def __init__(self, n: int, make: object) -> None:
        self.n, self.make = n, make

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> np.ndarray:
        return self.make(index)  # type: ignore[operator]


# --- level assembly with sides that are not powers of two ----------------------------------------


def test_semantic_levels_of_non_power_of_two_sides_match_the_dzi(tmp_path: Path) -> None:
    """Grids 5/10/20 of 24 px cells (120/240/480 px, like 1600/3200/6400): every DZI level's
    tiles have the names and sizes dzi_levels/tile_box give, and the pixels of the grid
    that owns the level (viewer.json's dzi_min_level..dzi_max_level)."""
    from generator.tiles import dzi_levels, tile_box

    colours = {5: (200, 40, 40), 10: (40, 180, 60), 20: (50, 70, 210)}
    root = tmp_path / "bundle"
    root.mkdir()
    levels = []
    for grid, colour in colours.items():
        Image.new("RGB", (grid * 24,) * 2, colour).save(root / f"level-{grid}.png")
        (root / f"cells-{grid}.json").write_text(json.dumps(cells_document(grid, 24, [])))
        levels.append(Level(grid, 24, f"level-{grid}.png", f"cells-{grid}.json"))
    bundle = AtlasBundle(id="odd", kind="layer", title="Odd", levels=tuple(levels), root=root)
    bundle.save()
    settings = TileSettings(tile_size=64, overlap=1, format="png")
    published = publish_atlas(
        AtlasBundle.load(root), tmp_path / "site/odd", settings, tmp_path / "c"
    )
    spans = [
        (lv["grid"], lv["dzi_min_level"], lv["dzi_max_level"])
        for lv in published.manifest["levels"]
    ]
    assert spans == [(5, 0, 7), (10, 8, 8), (20, 9, 9)]
    owner = {L: grid for grid, lo, hi in spans for L in range(lo, hi + 1)}
    files = published.folder / "atlas_files"
    for lv in dzi_levels(480, 480, 64):
        names = sorted(p.name for p in (files / str(lv.level)).iterdir())
        assert names == sorted(f"{c}_{r}.png" for c in range(lv.cols) for r in range(lv.rows))
        for c in range(lv.cols):
            for r in range(lv.rows):
                with Image.open(files / str(lv.level) / f"{c}_{r}.png") as tile:
                    assert tile.size == tile_box(lv, c, r, 64, 1)[2:]
                    pixels = np.asarray(tile.convert("RGB"), dtype=int)
                assert np.abs(pixels - colours[owner[lv.level]]).max() <= 2, (lv.level, c, r)
