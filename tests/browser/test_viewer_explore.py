"""Exploring the synthetic atlas (built by test_viewer_synth.py's helpers, once per module):
hover, cell details and dataset examples, class heat maps, labels, the view in the URL hash,
no failed request at any grid, missing files, accessibility. Screenshots in test-artifacts/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import missing_peer
from test_viewer_synth import (
    AVERAGE,
    CELL,
    IMAGE_TO_PAGE_JS,
    LABELS,
    LION,
    PIXEL_JS,
    SETTLED_JS,
    build_site,
    count,
    empty,
    example_colour,
    occupied,
    open_page,
    peak,
    region_class,
    settle,
    start_server,
    track,
    zoom,
)

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return { rules: result.passes.length + result.violations.length,
           bad: result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
             .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) })) };
}"""


#: Keeps every notice the figure's viewer shows (each hides itself after 8 s) in ``notices``.
RECORD_NOTICES_JS = """() => {
  const viewer = atlasViewers.fig, show = viewer.notice.bind(viewer);
  viewer.notices = [];
  viewer.notice = (text) => { viewer.notices.push(text); show(text); };
}"""


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(tmp_path_factory.mktemp("explore"))


@pytest.fixture(scope="module")
def base(www: Path) -> Iterator[str]:
    server, url = start_server(www)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def cell_centre(grid: int, col: int, row: int, dy: float = 0.5) -> tuple[float, float]:
    size = CELL * 40 // grid
    return (col + 0.5) * size, (row + dy) * size


def hover(page: Any, grid: int, col: int, row: int) -> str:
    page.mouse.move(*page.evaluate(IMAGE_TO_PAGE_JS, list(cell_centre(grid, col, row, 0.8))))
    page.wait_for_function(
        "(c) => { const i = document.querySelector('#fig .atlas-cellinfo');"
        " return !i.hidden && i.dataset.cell === c; }",
        arg=f"{col},{row}",
    )
    return str(page.inner_text("#fig .atlas-cellinfo")).replace("\xa0", " ")


def test_hover_shows_top_classes_count_and_grid(
    context: Any, base: str, artifacts_dir: Path
) -> None:
    page = open_page(context, base + "study/synth.html")
    problems = track(page)
    for grid, z in ((10, 0.2), (20, 0.35)):
        zoom(page, z)
        middle = [c for c in occupied(grid) if count(*c) < AVERAGE]
        sparse = min(middle, key=lambda c: abs(c[0] - grid / 2) + abs(c[1] - grid / 2))
        text = hover(page, grid, *sparse)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        assert lines[0] == f"Cell {sparse[0]}, {sparse[1]} · {grid} × {grid} grid"
        assert lines[1] == f"{AVERAGE // 4} activations averaged"
        top = region_class(grid, *sparse)
        # the top classes in order, each with its attribution value
        listed = page.locator("#fig .atlas-cellinfo-classes li").all_inner_texts()
        assert [" ".join(item.split()) for item in listed] == [
            f"{LABELS[top]} 0.91",
            f"{LABELS[top + 1]} 0.42",
            "lion 0.17",
        ]
        assert page.get_attribute("#fig .atlas-cellinfo", "data-grid") == str(grid)
        if grid == 10:
            page.screenshot(path=artifacts_dir / "synth-hover.png")
    hole = next((c, r) for r in range(3, 10) for c in range(3, 10) if empty(c, r))
    zoom(page, 0.2)
    assert "empty" in hover(page, 10, *hole)
    assert problems == []


def test_click_opens_the_cells_dataset_examples(
    context: Any, base: str, artifacts_dir: Path
) -> None:
    page = open_page(context, base + "study/synth.html")
    problems = track(page)
    sheets: list[str] = []
    page.on("request", lambda r: "/examples-" in r.url and sheets.append(r.url.split("/synth/")[1]))
    for grid, z in ((10, 0.2), (20, 0.35), (40, 0.8)):
        cell = next(c for c in occupied(grid) if c[0] >= grid // 2 and c[1] >= grid // 2)
        x, y = cell_centre(grid, *cell)
        zoom(page, z, x, y)
        page.mouse.click(*page.evaluate(IMAGE_TO_PAGE_JS, [x, y + CELL * 40 // grid * 0.3]))
        details = page.locator("#fig .atlas-details")
        details.wait_for(state="visible")
        assert page.get_attribute("#fig", "data-selected") == f"{grid}:{cell[0]},{cell[1]}"
        source = grid if grid in (10, 20) else 20  # grid 40 borrows from the 20 grid
        sc, sr = (cell[0] * source // grid, cell[1] * source // grid)
        n = 3 if (sc + sr) % 5 else 2
        page.wait_for_function(
            "(n) => document.querySelectorAll('#fig .atlas-example').length === n", arg=n
        )
        colours = page.evaluate(
            """() => Array.from(document.querySelectorAll('#fig .atlas-example')).map((c) =>
                 Array.from(c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data.slice(0, 3)))"""
        )
        for e, rgb in enumerate(colours):
            expected = example_colour(source, sc, sr, e)
            assert max(abs(a - b) for a, b in zip(rgb, expected, strict=True)) <= 8, (grid, e, rgb)
        text = page.inner_text("#fig .atlas-details").replace("\xa0", " ")
        assert text.startswith(f"Cell {cell[0]}, {cell[1]}")
        assert f"{count(*cell)} activations averaged" in text
        if grid == 40:
            assert f"From the 20 × 20 grid's cell {sc}, {sr}" in text
        page.screenshot(path=artifacts_dir / f"synth-examples-{grid}.png")
    # one sheet per 4 x 4 block, fetched once per click, index once per grid
    assert sheets.count("examples-10/index.json") == 1
    assert sheets.count("examples-20/index.json") == 1
    assert not any(s.startswith("examples-40") for s in sheets)
    page.keyboard.press("Escape")
    page.locator("#fig .atlas-panel").wait_for(state="hidden")
    assert problems == []


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_the_tooltip_keeps_off_the_details_panel(
    context: Any, base: str, artifacts_dir: Path
) -> None:
    page = open_page(context, base + "study/synth.html")
    zoom(page, 0.2)
    stage = page.locator("#fig .atlas-stage").bounding_box()
    info, panel = page.locator("#fig .atlas-cellinfo"), page.locator("#fig .atlas-panel")
    cell = (
        page.evaluate(IMAGE_TO_PAGE_JS, [CELL * 4, 0])[0]
        - page.evaluate(IMAGE_TO_PAGE_JS, [0, 0])[0]
    )
    # a cell just left of where the panel opens: its tooltip would spill over the panel
    x = stage["x"] + stage["width"] - 8 - 19 * 16 - 0.6 * cell
    y = stage["y"] + stage["height"] * 0.45
    page.mouse.move(x - 3, y)
    page.mouse.move(x, y)
    info.wait_for(state="visible")
    page.mouse.click(x, y)
    page.locator("#fig .atlas-details").wait_for(state="visible")
    page.wait_for_timeout(200)
    selected = page.get_attribute("#fig", "data-selected")
    assert selected and info.get_attribute("data-cell") == selected.split(":")[1]
    assert info.is_hidden()  # the panel tells this cell's story: no tooltip over it
    box = panel.bounding_box()
    page.screenshot(path=artifacts_dir / "synth-tooltip-panel.png")
    # other cells around: a tooltip beside the pointer, never over the panel
    shown = 0
    for dx, dy in ((-cell, 0), (-cell, 2 * cell), (-2 * cell, -2 * cell), (0.4 * cell, cell)):
        page.mouse.move(x + dx, y + dy)
        page.wait_for_timeout(150)
        if info.is_visible():
            shown += 1
            assert not overlap(info.bounding_box(), box), (dx, dy)
    assert shown >= 2
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # over the panel
    info.wait_for(state="hidden")


def test_class_heat_map_tints_cells_and_lists_the_most_attributed(
    context: Any, base: str, artifacts_dir: Path
) -> None:
    page = open_page(context, base + "study/synth.html")
    problems = track(page)
    heat_requests: list[str] = []
    page.on(
        "request",
        lambda r: "/heatmap-" in r.url and heat_requests.append(r.url.split("/synth/")[1]),
    )
    box = page.locator("#fig .atlas-class-input")
    box.click()
    box.type("lio")
    options = page.locator("#fig .atlas-class-list [role=option]")
    options.first.wait_for()
    names = options.all_inner_texts()
    assert names[0] == "lion" and "sea lion" in names  # prefix matches first, then the rest
    assert names.index("sea lion") > names.index("lionfish")
    assert box.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#fig .atlas-topcell').length === 8", timeout=10_000
    )
    assert page.get_attribute("#fig", "data-class") == str(LION)
    assert box.input_value() == "lion"
    settle(page)
    # the peak cell is red, a far corner blue, at the coarse grid
    pc, pr = peak(10)
    red = page.evaluate(PIXEL_JS, list(cell_centre(10, pc, pr, 0.8)))
    far = next(c for c in occupied(10) if c[0] >= 8 and c[1] >= 8)
    blue = page.evaluate(PIXEL_JS, list(cell_centre(10, *far, 0.8)))
    assert red[0] > red[2] + 60, red
    assert blue[2] > blue[0] + 40, blue
    assert page.evaluate("atlasViewers.fig.painted.heat") > 20
    cells = page.locator("#fig .atlas-topcell").evaluate_all(
        "(bs) => bs.map((b) => b.dataset.cell)"
    )
    assert cells[0] == f"{pc},{pr}"
    # the list is ordered by value: every listed cell is at least as close to the peak
    dist = [((int(c.split(",")[0]) - pc) ** 2 + (int(c.split(",")[1]) - pr) ** 2) for c in cells]
    assert dist == sorted(dist)
    chunk = page.evaluate("atlasViewers.fig.manifest.levels[0].heatmap.chunk")
    assert heat_requests == ["heatmap-10/index.json", f"heatmap-10/{LION // chunk}.bin"]
    page.screenshot(path=artifacts_dir / "synth-heatmap.png")
    # clicking a listed cell flies there (its grid shown) and selects it
    page.locator("#fig .atlas-topcell").nth(1).click()
    target = cells[1]
    page.wait_for_function(
        "(c) => document.querySelector('#fig').dataset.selected === '10:' + c", arg=target
    )
    settle(page)
    centre = page.evaluate(
        "() => { const v = atlasViewers.fig; const c = v.image.viewportToImageCoordinates("
        "v.viewer.viewport.getCenter()); return [c.x, c.y]; }"
    )
    tx, ty = (int(v) for v in target.split(","))
    assert abs(centre[0] - (tx + 0.5) * 192) < 30 and abs(centre[1] - (ty + 0.5) * 192) < 30
    assert page.get_attribute("#fig", "data-grid") == "10"
    page.screenshot(path=artifacts_dir / "synth-heatmap-fly.png")
    # zoomed into grid 20 the tint follows with grid 20's own map (one more chunk request)
    zoom(page, 0.35)
    page.wait_for_function("() => document.querySelector('#fig').dataset.heatGrid === '20'")
    assert any(r.startswith("heatmap-20/") and r.endswith(".bin") for r in heat_requests)
    # clearing the box removes the tint
    page.click("#fig .atlas-class-clear")
    page.wait_for_function("() => document.querySelector('#fig').dataset.class === ''")
    settle(page)
    assert page.evaluate("atlasViewers.fig.painted.heat") == 0
    assert problems == []


def test_labels_name_top_classes_at_the_coarse_grid_only(
    context: Any, base: str, artifacts_dir: Path
) -> None:
    page = open_page(context, base + "study/synth.html")
    labels = page.evaluate("atlasViewers.fig.painted.labels")
    assert 4 <= len(labels) <= 60
    for label in labels:
        col, row = label["cell"]
        assert label["text"] == LABELS[region_class(10, col, row)]
    texts = [label["text"] for label in labels]
    assert len(set(texts)) >= 8  # several regions named, not one name many times
    page.screenshot(path=artifacts_dir / "synth-labels.png")
    zoom(page, 0.35)
    assert page.evaluate("atlasViewers.fig.painted.labels") == []  # finer grids: no labels


def test_a_url_with_a_view_hash_restores_the_view(
    context: Any, base: str, artifacts_dir: Path
) -> None:
    page = open_page(context, base + "study/synth.html")
    problems = track(page)
    # the reader moves: the hash follows (after the move, replaceState: no history entries)
    entries = page.evaluate("history.length")
    page.locator("#fig .openseadragon-canvas").first.focus()
    page.keyboard.press("+")
    page.keyboard.press("+")
    settle(page)
    page.wait_for_function("() => location.hash.includes('fig.xywh=')")
    page.keyboard.press("Enter")  # select the centre cell
    page.wait_for_function("() => location.hash.includes('fig.cell=')")
    assert page.evaluate("history.length") == entries
    shared = page.evaluate("location.href")
    # a second figure on the page keeps its own entry
    page.evaluate("location.hash = location.hash + '&other.xywh=0,0,160,160'")
    page.wait_for_function("() => atlasViewers.other && atlasViewers.other.image")
    settle(page)
    hash_now = page.evaluate("location.hash")
    assert "other.xywh=" in hash_now and "fig.xywh=" in hash_now and "fig.cell=" in hash_now
    other_view = page.evaluate("atlasViewers.other.visibleRect()")
    assert abs(other_view[1] + other_view[3] / 2 - 80) < 5  # centred on the 160 px square
    # a link with a view, class, cell, density and grid opens that view in a new tab
    rect = [1100, 700, 500, 400]
    url = (
        base + "study/synth.html#fig.xywh=" + ",".join(map(str, rect))
        + f"&fig.level=20&fig.class={LION}&fig.cell=20:9,6&fig.density=2"
    )  # fmt: skip
    other = context.new_page()
    other_problems = track(other)
    other.goto(url)
    other.wait_for_selector("#fig[data-state=ready]", timeout=20_000)
    other.wait_for_function(SETTLED_JS, polling=100, timeout=20_000)
    other.wait_for_function("() => document.querySelectorAll('#fig .atlas-topcell').length > 0")
    bounds = other.evaluate(
        "() => { const v = atlasViewers.fig; const r = v.image.viewportToImageRectangle("
        "v.viewer.viewport.getBounds()); return [r.x, r.y, r.width, r.height]; }"
    )
    cx, cy = bounds[0] + bounds[2] / 2, bounds[1] + bounds[3] / 2
    assert abs(cx - 1350) < 20 and abs(cy - 900) < 20
    assert other.get_attribute("#fig", "data-grid") == "20"
    assert other.get_attribute("#fig", "data-class") == str(LION)
    assert other.get_attribute("#fig", "data-selected") == "20:9,6"
    assert other.evaluate("atlasViewers.fig.density") == 2
    assert other.inner_text("#fig .atlas-density output") == "×2"
    other.screenshot(path=artifacts_dir / "synth-hash-restored.png")
    # the shared link of the first page reopens its view
    again = context.new_page()
    again.goto(shared)
    again.wait_for_selector("#fig[data-state=ready]", timeout=20_000)
    again.wait_for_function(SETTLED_JS, polling=100, timeout=20_000)
    assert again.get_attribute("#fig", "data-selected") == page.get_attribute(
        "#fig", "data-selected"
    )
    assert problems == [] and other_problems == []


def test_no_failed_request_at_any_grid(context: Any, base: str) -> None:
    page = open_page(context, base + "study/synth.html")
    problems = track(page)
    for z in (0.2, 0.3, 0.6, 1.5, 4.0):
        for x, y in ((300, 300), (1600, 400), (960, 960), (400, 1600), (1700, 1700)):
            zoom(page, z, x, y)
            page.mouse.move(*page.evaluate(IMAGE_TO_PAGE_JS, [x, y]))
            page.evaluate("atlasViewers.fig.selectCentre()")
    page.fill("#fig .atlas-class-input", "tiger")
    page.keyboard.press("Enter")
    for z in (4.0, 0.6, 0.3, 0.2):
        zoom(page, z)
    assert page.evaluate("atlasViewers.fig.frames.drawn") > 10
    assert problems == []


def test_missing_metadata_or_tiles_degrade_gracefully(
    browser: Any, www: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    broken = tmp_path / "www"
    shutil.copytree(www, broken)
    folder = broken / "repo/atlases/synth"
    (folder / "cells-20.json").unlink()
    (folder / "heatmap-20/index.json").unlink()
    (folder / "examples-10/1_1.jpg").unlink()
    for tile in sorted((folder / "atlas_files/11").iterdir())[:20]:
        tile.unlink()
    server, base = start_server(broken)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = open_page(context, base + "study/synth.html")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: m.type == "error" and "atlas viewer" in m.text and errors.append(m.text),
        )
        notice = page.locator("#fig .atlas-notice")
        # missing metadata: the grid still shows, the tooltip has the cell, a notice says why
        zoom(page, 0.35)
        assert page.get_attribute("#fig", "data-grid") == "20"
        text = hover(page, 20, 12, 12)
        assert text.startswith("Cell 12, 12 · 20 × 20 grid") and "empty" not in text
        notice.wait_for(state="visible")
        assert "metadata" in notice.inner_text()
        page.screenshot(path=artifacts_dir / "synth-missing-metadata.png")
        # a heat map missing at this grid: a notice, the viewer keeps working
        page.fill("#fig .atlas-class-input", "lion")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => /heat map/.test(document.querySelector('#fig .atlas-notice').textContent)"
        )
        # ... and the 10 x 10 grid's map tints the 20 x 20 grid instead
        page.wait_for_function("() => document.querySelector('#fig').dataset.heatGrid === '10'")
        settle(page)
        assert page.evaluate("atlasViewers.fig.painted.heat") > 0
        # missing examples sheet: the panel says so
        zoom(page, 0.2, *cell_centre(10, 5, 5))
        page.evaluate("atlasViewers.fig.selectCell(10, 5, 5)")
        page.wait_for_function(
            "() => /could not be loaded/.test(document.querySelector('#fig .atlas-details').textContent)"
        )
        # missing finest tiles: the coarser grid stays on screen, panning and zooming still work
        page.evaluate(RECORD_NOTICES_JS)
        held = page.evaluate("atlasViewers.fig.frames.held")  # earlier grid changes held some
        zoom(page, 0.8, 300, 300)
        assert page.get_attribute("#fig", "data-grid") == "20"
        before = page.evaluate("atlasViewers.fig.visibleRect()")
        page.locator("#fig .openseadragon-canvas").first.focus()
        page.keyboard.press("ArrowRight")
        settle(page)
        assert page.evaluate("atlasViewers.fig.visibleRect()")[0] > before[0]
        # ... because the finer grid was held back, and the reader was told why
        assert page.evaluate("atlasViewers.fig.frames.held") > held
        notices = page.evaluate("atlasViewers.fig.notices")
        assert any("tiles of this atlas could not be loaded" in text for text in notices), notices
        page.screenshot(path=artifacts_dir / "synth-missing-tiles.png")
        assert errors == []
    finally:
        context.close()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_accessibility_of_the_explorer(
    browser: Any, base: str, artifacts_dir: Path, theme: str
) -> None:
    if not AXE.is_file():
        missing_peer(f"{AXE} is missing: run `npm ci`")
    context = browser.new_context(color_scheme=theme, viewport={"width": 1280, "height": 900})
    page = open_page(context, base + "study/synth.html")
    page.fill("#fig .atlas-class-input", "lion")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#fig .atlas-topcell').length > 0")
    page.evaluate("atlasViewers.fig.selectCell(10, 6, 5)")
    page.wait_for_function("() => document.querySelectorAll('#fig .atlas-example').length > 0")
    page.fill("#fig .atlas-class-input", "ti")  # the listbox open
    page.locator("#fig .atlas-class-list [role=option]").first.wait_for()
    hover(page, 10, 4, 4)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(RUN_AXE)
    assert result["rules"] > 20
    assert result["bad"] == [], result["bad"]
    page.keyboard.press("Escape")
    page.screenshot(path=artifacts_dir / f"synth-explorer-{theme}.png")
    context.close()


def test_reduced_motion_moves_at_once(browser: Any, base: str) -> None:
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 1280, "height": 900})
    page = open_page(context, base + "study/synth.html")
    page.fill("#fig .atlas-class-input", "lion")
    page.keyboard.press("Enter")
    page.locator("#fig .atlas-topcell").nth(2).click()
    # no animation: the view is centred on the cell as soon as the click is handled
    col, row = (
        int(v) for v in page.get_attribute("#fig .atlas-topcell >> nth=2", "data-cell").split(",")
    )
    x, y, w, h = page.evaluate("atlasViewers.fig.visibleRect()")
    current = page.evaluate(
        "() => { const v = atlasViewers.fig; const r = v.image.viewportToImageRectangle("
        "v.viewer.viewport.getBounds(true)); return [r.x, r.y, r.width, r.height]; }"
    )
    assert current == pytest.approx([x, y, w, h], abs=0.5)
    assert abs(x + w / 2 - (col + 0.5) * 192) < 2 and abs(y + h / 2 - (row + 0.5) * 192) < 2
    page.locator("#fig .openseadragon-canvas").first.focus()
    page.keyboard.press("ArrowLeft")
    assert f"fig.xywh={round(x - 0.15 * w)}" in page.evaluate("location.hash")
    context.close()


def test_phone_layout(browser: Any, base: str, artifacts_dir: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    page = open_page(context, base + "study/synth.html")
    # touch: one finger scrolls the page, two move the atlas
    assert page.evaluate("atlasViewers.fig.viewer.cooperativeGestures") is True
    page.evaluate("atlasViewers.fig.selectCell(10, 6, 5)")
    page.wait_for_function("() => document.querySelectorAll('#fig .atlas-example').length > 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#fig").screenshot(path=artifacts_dir / "synth-phone.png")
    context.close()
