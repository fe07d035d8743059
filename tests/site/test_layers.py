"""The ```` ```atlas-layers ```` block: linked viewers of several layers, each opened on the
densest region of one class (resolved at build time), per-atlas flips, titles and views."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from tourkit import build_project, full_grid, make_bundle, write_project

from generator.bundle import AtlasBundle
from generator.errors import ContentError, UnknownNameError

LABELS = ["background", "cabbage", "broccoli"]
#: Per atlas: the cells (grid 8, 32 px) of cabbage and of broccoli; l3b and l4c have heat maps
#: (attribution 1 to each cell's top class).
REGIONS = {
    "l3b": ({(c, r) for c in (1, 2) for r in (1, 2)}, {(c, r) for c in (5, 6) for r in (5, 6)}),
    "l4c": ({(c, r) for c in (4, 5, 6) for r in (0, 1)}, {(c, r) for c in (0, 1) for r in (6, 7)}),
    "l5b": ({(c, r) for c in (0, 1) for r in (4, 5, 6)}, {(c, r) for c in (6, 7) for r in (1, 2)}),
}
#: The cabbage regions plus one 32 px cell, clipped to the 256 px image.
VIEWS = {"l3b": [0, 0, 128, 128], "l4c": [96, 0, 160, 96], "l5b": [0, 96, 96, 160]}


def layer_bundles(folder: Path) -> dict[str, AtlasBundle]:
    bundles = {}
    for atlas_id, (cabbage, broccoli) in REGIONS.items():

        def top(
            c: int,
            r: int,
            cabbage: set[tuple[int, int]] = cabbage,
            broccoli: set[tuple[int, int]] = broccoli,
        ) -> int:
            return 1 if (c, r) in cabbage else 2 if (c, r) in broccoli else 0

        cells = full_grid(8, top)
        attributions = np.zeros((len(cells), len(LABELS)), np.float32)
        attributions[np.arange(len(cells)), [row[3][0] for row in cells]] = 1.0
        heat = atlas_id != "l5b"  # l5b has no heat maps: a class is shown by its top cells
        bundles[atlas_id] = make_bundle(
            folder / atlas_id,
            atlas_id,
            {8: cells},
            LABELS,
            cell_px=32,
            attributions={8: attributions} if heat else None,
            info={"layer": atlas_id},
            heatmaps=heat,
        )
    return bundles


BLOCK = """```atlas-layers
ids: [l3b, l4c, l5b]
class: cabbage
flip: {l5b: x}
titles: {l3b: "Layer <3b>"}
figure: cabbages
height: 300
caption: "Cabbage in **three** layers."
```
"""


def article(block: str) -> str:
    return f"---\ntitle: Layers\n---\n\nIntro.\n\n{block}\nSee [4c](#atlas:cabbages-l4c?xywh=0,0,64,64).\n"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AtlasBundle]:
    return layer_bundles(tmp_path_factory.mktemp("layers"))


def test_layers_figure_links_viewers_focused_on_the_class(
    tmp_path: Path, bundles: dict[str, AtlasBundle]
) -> None:
    root = write_project(tmp_path / "project", article(BLOCK), bundles)
    build_project(root, bundles, strict=True)
    page = (root / "www/repo/study/tour.html").read_text()
    assert (
        '<figure class="atlas-layers l-screen" id="cabbages" data-atlas-group="cabbages">' in page
    )
    panels = re.findall(
        r'<div class="atlas-figure atlas-layer" id="([^"]+)" data-atlas="([^"]+)"', page
    )
    assert panels == [("cabbages-l3b", "l3b"), ("cabbages-l4c", "l4c"), ("cabbages-l5b", "l5b")]
    configs = [
        json.loads(text)
        for text in re.findall(
            r'<script type="application/json" class="atlas-config">(.*?)</script>', page
        )
    ]
    assert [c["view"] for c in configs] == [VIEWS["l3b"], VIEWS["l4c"], VIEWS["l5b"]]
    assert [c["flip"] for c in configs] == [None, None, "x"]
    assert {c["group"] for c in configs} == {"cabbages"} and configs[0]["help"] == "cabbages-help"
    assert 'data-flip="x"' in page and "(mirrored left to right)" in page
    titles = re.findall(r'<p class="atlas-layer-title">(.*?)(?: <span|</p>)', page)
    assert [html.unescape(t) for t in titles] == ["Layer <3b>", "Atlas l4c", "Atlas l5b"]
    # the class menu: the top classes of the three atlases, the block's class chosen
    options = re.findall(r'<option value="([^"]*)"( selected)?>', page)
    assert options == [("", ""), ("background", ""), ("broccoli", ""), ("cabbage", " selected")]
    assert '<p class="atlas-help" id="cabbages-help">' in page
    assert "Cabbage in <strong>three</strong> layers." in page
    # each panel is a link target
    assert (
        '<a class="atlas-link" data-atlas-figure="cabbages-l4c" data-atlas-rect="0,0,64,64"' in page
    )


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (
            ("ids: [l3b, l4c, l5b]", "ids: [l3b, l4x]"),
            "unknown atlas id 'l4x' (did you mean 'l4c'?)",
            8,
        ),
        (("ids: [l3b, l4c, l5b]", "ids: [l3b]"), "two to four different atlas ids", 8),
        (("flip: {l5b: x}", "flip: {l5b: z}"), "'flip' is invalid for 'l5b' (x, y or xy)", 10),
        (
            ("flip: {l5b: x}", "flip: {l9: x}"),
            "names 'l9', which is not one of the figure's ids",
            10,
        ),
        (("class: cabbage", "class: kale"), "unknown class 'kale' in atlas 'l3b'", 9),
        (("class: cabbage", "class: cabage"), "did you mean 'cabbage'?", 9),
        (("flip: {l5b: x}", "views: {l4c: [0, 0, 300, 10]}"), "'views' is invalid for 'l4c'", 10),
        (("height: 300", "heigth: 300"), "unknown atlas-layers block key 'heigth'", 7),
    ],
)
def test_bad_layers_blocks_name_the_line(
    tmp_path: Path,
    bundles: dict[str, AtlasBundle],
    change: tuple[str, str],
    message: str,
    line: int,
) -> None:
    root = write_project(tmp_path / "project", article(BLOCK.replace(*change)), bundles)
    with pytest.raises((ContentError, UnknownNameError)) as info:
        build_project(root, bundles)
    assert message in info.value.message()
    assert re.search(rf"tour\.md:{line}\b", str(info.value.where)), info.value.where


def test_a_class_missing_from_one_layer_says_how_to_place_it(
    tmp_path: Path, bundles: dict[str, AtlasBundle]
) -> None:
    lonely = make_bundle(tmp_path / "l9", "l9", {8: full_grid(8, lambda c, r: 0)}, LABELS)
    both = {**bundles, "l9": lonely}
    block = BLOCK.replace("ids: [l3b, l4c, l5b]", "ids: [l3b, l9]").replace("flip: {l5b: x}\n", "")
    root = write_project(tmp_path / "project", article(block), both)
    with pytest.raises(ContentError) as info:
        build_project(root, both)
    assert "no cell of atlas 'l9' has cabbage as its top class" in info.value.message()
    assert "views: {l9: [x, y, w, h]}" in str(info.value.fix)
    # with a view for it, the figure builds
    block = block.replace("figure: cabbages", "figure: cabbages\nviews: {l9: [0, 0, 64, 64]}")
    (root / "content/study/tour.md").write_text(
        article(block).replace("cabbages-l4c", "cabbages-l9")
    )
    build_project(root, both)
    page = (root / "www/repo/study/tour.html").read_text()
    assert '"view":[0,0,64,64]' in page
