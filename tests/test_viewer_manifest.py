"""What tile publishing writes for the viewer, checked field by field (issue 17, mutation testing
of generator/tiles/publish.py): ``viewer.json`` for a hand-made bundle, the blocks of a large
cells document at the split threshold, the pyramid cache key, hard-linked trees and their sizes.

Expected values are written out by hand from docs/ARCHITECTURE.md ("A published atlas")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from generator.bundle import AtlasBundle, Level
from generator.keys import pyramid_key
from generator.tiles.publish import (
    CELLS_BLOCK,
    CELLS_SPLIT_BYTES,
    cells_blocks,
    link_tree,
    tree_stats,
    viewer_manifest,
)
from generator.tiles.pyramid import LevelSpan, TileSettings


def two_level_bundle(root: Path, info: dict[str, object] | None = None) -> AtlasBundle:
    return AtlasBundle(
        id="mixed4c",
        kind="layer",
        title="InceptionV1 mixed4c",
        levels=(
            Level(2, 40, "level-2.png", "cells-2.json"),
            Level(4, 40, "level-4.png", "cells-4.json"),
        ),
        labels=("lion", "tiger"),
        background="#202020",
        info=info if info is not None else {"model": "demo", "layer": "mixed4c"},
        root=root,
    )


SPANS = [
    LevelSpan(grid=2, cell_px=40, width=80, height=80, scale=2, dzi_min_level=0, dzi_max_level=7),
    LevelSpan(grid=4, cell_px=40, width=160, height=160, scale=1, dzi_min_level=8, dzi_max_level=8),
]


def test_the_viewer_manifest_of_a_two_level_bundle(tmp_path: Path) -> None:
    bundle = two_level_bundle(tmp_path)
    settings = TileSettings(tile_size=126, overlap=2, format="png", quality=70)
    facts = [{"samples": 12}, {"samples": 30, "cells_block": CELLS_BLOCK}]
    manifest = viewer_manifest(bundle, SPANS, settings, (150, 151), facts)
    assert manifest == {
        "id": "mixed4c",
        "title": "InceptionV1 mixed4c",
        "kind": "layer",
        "dzi": "atlas.dzi",
        "width": 160,
        "height": 160,
        "tile_size": 126,
        "overlap": 2,
        "format": "png",
        "background": "#202020",
        "fallback": "fallback.jpg",
        "fallback_width": 150,
        "fallback_height": 151,
        "levels": [
            {
                "grid": 2,
                "cell_px": 40,
                "cells": "cells-2.json",
                "scale": 2,
                "dzi_min_level": 0,
                "dzi_max_level": 7,
                "samples": 12,
            },
            {
                "grid": 4,
                "cell_px": 40,
                "cells": "cells-4.json",
                "scale": 1,
                "dzi_min_level": 8,
                "dzi_max_level": 8,
                "samples": 30,
                "cells_block": 32,
            },
        ],
        "labels": ["lion", "tiger"],
        "info": {"model": "demo", "layer": "mixed4c"},
    }
    # without facts, the levels hold the spans alone
    plain = viewer_manifest(bundle, SPANS, settings, (150, 151))
    assert [sorted(level) for level in plain["levels"]] == [
        ["cell_px", "cells", "dzi_max_level", "dzi_min_level", "grid", "scale"]
    ] * 2


def test_cells_blocks_count_samples_from_the_document_or_its_rows() -> None:
    doc = {"grid": 4, "cell_px": 40, "cells": [[0, 0, 5, [1]], [3, 2, 7, [0]]]}
    assert cells_blocks(json.dumps(doc).encode()) == (12, {})
    assert cells_blocks(json.dumps({**doc, "samples": 100}).encode()) == (100, {})
    assert cells_blocks(json.dumps({"grid": 4, "cell_px": 40}).encode()) == (0, {})


def padded(doc: dict[str, object], size: int) -> bytes:
    """``doc`` as JSON followed by spaces up to exactly ``size`` bytes (still valid JSON)."""
    data = json.dumps(doc, separators=(",", ":")).encode()
    assert len(data) <= size
    return data + b" " * (size - len(data))


def test_a_cells_document_is_split_only_above_the_threshold() -> None:
    doc = {"grid": 40, "cell_px": 20, "samples": 9, "cells": [[0, 0, 9, [1]]]}
    assert cells_blocks(padded(doc, CELLS_SPLIT_BYTES)) == (9, {})
    samples, blocks = cells_blocks(padded(doc, CELLS_SPLIT_BYTES + 1))
    assert samples == 9 and len(blocks) == 4  # 40 cells per side: 2 x 2 blocks of 32


def test_blocks_hold_the_cells_of_their_32_x_32_square() -> None:
    # grid 65: ceil(65 / 32) = 3 blocks per side, 9 files, empty ones too
    rows = [[0, 0, 1, [0]], [31, 31, 2, [0]], [32, 0, 3, [1]], [5, 64, 4, [1]], [64, 64, 5, [0]]]
    doc = {"grid": 65, "cell_px": 10, "labels_note": "kept", "cells": rows}
    samples, blocks = cells_blocks(padded(doc, CELLS_SPLIT_BYTES + 10))
    assert samples == 15
    names = [f"{bx}_{by}.json" for bx in range(3) for by in range(3)]
    assert list(blocks) == names
    parsed = {name: json.loads(data) for name, data in blocks.items()}
    assert parsed["0_0.json"] == {
        "grid": 65,
        "cell_px": 10,
        "labels_note": "kept",
        "block": [0, 0],
        "cells": [[0, 0, 1, [0]], [31, 31, 2, [0]]],
    }
    assert parsed["1_0.json"]["cells"] == [[32, 0, 3, [1]]]
    assert parsed["0_2.json"]["cells"] == [[5, 64, 4, [1]]]
    assert parsed["2_2.json"]["block"] == [2, 2] and parsed["2_2.json"]["cells"] == [
        [64, 64, 5, [0]]
    ]
    assert parsed["1_1.json"]["cells"] == []
    assert b" " not in blocks["1_1.json"]  # compact JSON


def test_the_pyramid_key_changes_with_every_input(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"level a")
    b.write_bytes(b"level b")
    settings = TileSettings()
    key = pyramid_key([a, b], SPANS, settings, (255, 255, 255))
    assert key == pyramid_key([a, b], SPANS, settings, (255, 255, 255))  # deterministic
    others = [
        pyramid_key([b, a], SPANS, settings, (255, 255, 255)),
        pyramid_key([a, b], SPANS[:1], settings, (255, 255, 255)),
        pyramid_key([a, b], SPANS, TileSettings(quality=86), (255, 255, 255)),
        pyramid_key([a, b], SPANS, settings, (255, 255, 254)),
    ]
    b.write_bytes(b"level B")  # same name, other bytes
    others.append(pyramid_key([a, b], SPANS, settings, (255, 255, 255)))
    assert len({key, *others}) == 6


def test_link_tree_recreates_files_as_hard_links_and_skips_top_level_names(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "atlas_files" / "0").mkdir(parents=True)
    (src / "atlas_files" / "0" / "0_0.png").write_bytes(b"tile")
    (src / "atlas.dzi").write_text("dzi")
    (src / "pyramid.json").write_text("{}")
    (src / "atlas_files" / "pyramid.json").write_text("deeper: kept")
    dst = tmp_path / "dst"
    link_tree(src, dst, skip=("pyramid.json",))
    files = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert files == ["atlas.dzi", "atlas_files/0/0_0.png", "atlas_files/pyramid.json"]
    for name in files:
        assert os.stat(dst / name).st_ino == os.stat(src / name).st_ino
    # a second tree from the same source links every file again
    link_tree(src, tmp_path / "again")
    assert (tmp_path / "again" / "pyramid.json").read_text() == "{}"


def test_tree_stats_counts_every_file_and_byte_below_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "one").write_bytes(b"x" * 10)
    (tmp_path / "a" / "two").write_bytes(b"x" * 20)
    (tmp_path / "a" / "b" / "three").write_bytes(b"x" * 30)
    (tmp_path / "a" / "b" / "empty").write_bytes(b"")
    assert tree_stats(tmp_path) == (4, 60)
    assert tree_stats(tmp_path / "a" / "b") == (2, 30)


@pytest.mark.parametrize("viewer", [{"levels": {}}, None])
def test_the_manifest_info_drops_the_viewer_entry_only(tmp_path: Path, viewer: object) -> None:
    info = {"model": "demo", "samples": 7, **({"viewer": viewer} if viewer is not None else {})}
    manifest = viewer_manifest(two_level_bundle(tmp_path, info), SPANS, TileSettings(), (1, 1))
    assert manifest["info"] == {"model": "demo", "samples": 7}
