"""Layers side by side in a real browser: three synthetic atlases (tests/site/test_layers.py)
in one figure, each opened on its cabbage region; hover linked across viewers, the class menu
tinting all, a flipped viewer whose display and coordinates agree, and axe."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import missing_peer
from test_layers import BLOCK, REGIONS, VIEWS, article, layer_bundles
from tourkit import build_project, class_colour, write_project

pytestmark = pytest.mark.browser

CELL = 32
IDS = ("l3b", "l4c", "l5b")
AXE = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"
#: The site's block: every kind of flip.
FLIPPED = BLOCK.replace("flip: {l5b: x}", "flip: {l3b: y, l4c: xy, l5b: x}")

BOUNDS_JS = """(id) => { const v = atlasViewers[id];
  const r = v.image.viewportToImageRectangle(v.viewer.viewport.getBounds(true));
  return [r.x, r.y, r.width, r.height]; }"""
SETTLED_JS = """(ids) => ids.every((id) => { const v = atlasViewers[id]; if (!v || !v.image) return false;
  const vp = v.viewer.viewport, a = vp.getBounds(true), b = vp.getBounds(false);
  return v.image.getFullyLoaded() && !v.viewer.isAnimating()
    && Math.abs(a.x - b.x) + Math.abs(a.width - b.width) < 1e-9; })"""
TO_PAGE_JS = """([id, x, y]) => { const v = atlasViewers[id]; const p = v.imageToStage(x, y);
  const r = v.viewer.canvas.getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }"""
#: The canvas pixel [r, g, b] under image px (x, y) of a viewer (device px = CSS px here).
PIXEL_JS = """([id, x, y]) => { const v = atlasViewers[id], c = v.viewer.drawer.canvas;
  const p = v.imageToStage(x, y);
  return Array.from(c.getContext('2d').getImageData(Math.round(p.x), Math.round(p.y), 1, 1).data.slice(0, 3)); }"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from test_viewer_synth import start_server

    folder = tmp_path_factory.mktemp("layers-browser")
    bundles = layer_bundles(folder / "bundles")
    root = write_project(folder / "project", article(FLIPPED), bundles)
    build_project(root, bundles, strict=True)
    server, url = start_server(root / "www")
    yield url
    server.shutdown()
    server.server_close()


def panel(atlas: str) -> str:
    return f"cabbages-{atlas}"


def visible_cells(bounds: list[float], cells: set[tuple[int, int]]) -> int:
    """Cells of a set inside the visible range (as the viewer computes it, grid 8)."""
    x, y, w, h = bounds
    c0, r0 = max(0, math.floor(x / CELL)), max(0, math.floor(y / CELL))
    c1, r1 = min(7, math.floor((x + w) / CELL)), min(7, math.floor((y + h) / CELL))
    return sum(1 for c, r in cells if c0 <= c <= c1 and r0 <= r <= r1)


def hover(page: Any, atlas: str, x: float, y: float) -> None:
    """Move the mouse over image px (x, y) of a panel (which must be the canvas there)."""
    point = page.evaluate(TO_PAGE_JS, [panel(atlas), x, y])
    hit = page.evaluate(
        "([id, x, y]) => document.querySelector('#' + id + ' .openseadragon-canvas')"
        ".contains(document.elementFromPoint(x, y))",
        [panel(atlas), *point],
    )
    assert hit, f"({x}, {y}) of {atlas} is covered"
    page.mouse.move(*point)


def painted(page: Any, atlas: str) -> dict[str, int]:
    page.evaluate("(id) => atlasViewers[id].viewer.forceRedraw()", panel(atlas))
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    result: dict[str, int] = page.evaluate("(id) => atlasViewers[id].painted.linked", panel(atlas))
    return result


def open_linked_panels(page: Any, base: str) -> list[str]:
    """Open the tour page at its linked layers and wait until every panel is ready and has
    settled; the panels' figure ids."""
    page.goto(base + "study/tour.html")
    ids = [panel(a) for a in IDS]
    page.locator("#cabbages").scroll_into_view_if_needed()
    for figure in ids:
        page.wait_for_selector(f"#{figure}[data-state=ready]", timeout=20_000)
    page.wait_for_function(SETTLED_JS, arg=ids, polling=100, timeout=20_000)
    return ids


def test_linked_layers(browser: Any, base: str, artifacts_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    ids = open_linked_panels(page, base)

    bounds = {}
    for atlas in IDS:
        # each viewer opens on its cabbage region (fitBounds of the resolved view)
        b = page.evaluate(BOUNDS_JS, panel(atlas))
        v = VIEWS[atlas]
        assert (
            abs(b[0] + b[2] / 2 - (v[0] + v[2] / 2)) < 3
            and abs(b[1] + b[3] / 2 - (v[1] + v[3] / 2)) < 3
        )
        assert (
            (abs(b[2] - v[2]) < 3 or abs(b[3] - v[3]) < 3) and b[2] >= v[2] - 3 and b[3] >= v[3] - 3
        )
        bounds[atlas] = b
        # the block's class is chosen in every viewer: its cells marked
        assert page.get_attribute(f"#{panel(atlas)}", "data-linked-class") == "cabbage"
        assert painted(page, atlas) == {"hover": 0, "chosen": visible_cells(b, REGIONS[atlas][0])}
    page.screenshot(path=artifacts_dir / "layers-cabbage.png")

    # the whole atlases, for the hover
    for atlas in IDS:
        page.evaluate("(id) => atlasViewers[id].fit([0, 0, 256, 256], true)", panel(atlas))
    page.wait_for_function(SETTLED_JS, arg=ids, polling=100, timeout=20_000)
    bounds = {atlas: page.evaluate(BOUNDS_JS, panel(atlas)) for atlas in IDS}

    # hovering a broccoli cell of l4c marks broccoli in the other two, not in l4c itself
    hover(page, "l4c", 6.5 * CELL, 1.5 * CELL)
    page.wait_for_function(
        "() => document.querySelector('#cabbages-l4c .atlas-cellinfo').dataset.cell === '6,1'"
    )
    assert page.inner_text(f"#{panel('l4c')} .atlas-cellinfo").startswith("Cell 6, 1")
    page.evaluate("(id) => atlasViewers[id].fit([0, 160, 96, 96], true)", panel("l4c"))
    page.wait_for_function(SETTLED_JS, arg=ids, polling=100, timeout=20_000)
    hover(page, "l4c", 1.5 * CELL, 6.5 * CELL)
    page.wait_for_function(
        "() => document.querySelector('#cabbages-l3b').dataset.linkedHover === 'broccoli'"
    )
    for atlas in ("l3b", "l5b"):
        assert page.get_attribute(f"#{panel(atlas)}", "data-linked-hover") == "broccoli"
        got = painted(page, atlas)
        assert got["hover"] == visible_cells(bounds[atlas], REGIONS[atlas][1])
    assert painted(page, "l4c")["hover"] == 0
    page.evaluate("(id) => atlasViewers[id].fit([0, 0, 256, 256], true)", panel("l4c"))
    page.wait_for_function(SETTLED_JS, arg=ids, polling=100, timeout=20_000)
    # a cabbage cell of l3b: cabbage marked in l4c and l5b
    hover(page, "l3b", 1.5 * CELL, 2.5 * CELL)
    page.wait_for_function(
        "() => document.querySelector('#cabbages-l5b').dataset.linkedHover === 'cabbage'"
    )
    for atlas in ("l4c", "l5b"):
        assert painted(page, atlas)["hover"] == visible_cells(bounds[atlas], REGIONS[atlas][0]) > 0
    page.screenshot(path=artifacts_dir / "layers-hover.png")
    page.mouse.move(5, 5)  # off every atlas: the marks go
    page.wait_for_function(
        "() => document.querySelector('#cabbages-l5b').dataset.linkedHover === ''"
    )
    assert painted(page, "l5b")["hover"] == 0

    # the class menu tints every viewer
    page.select_option("#cabbages-class", "broccoli")
    for atlas in IDS:
        assert page.get_attribute(f"#{panel(atlas)}", "data-linked-class") == "broccoli"
        assert painted(page, atlas)["chosen"] == visible_cells(bounds[atlas], REGIONS[atlas][1])
    page.select_option("#cabbages-class", "")
    assert all(painted(page, atlas)["chosen"] == 0 for atlas in IDS)

    # a class picked in one viewer's heat-map box: heat maps where the atlas has them (l3b,
    # l4c), its top-class cells elsewhere (l5b), the figure's menu follows; clearing clears all
    page.click(f"#{panel('l3b')} .atlas-tools-toggle")  # narrow panels fold their tools
    page.fill(f"#{panel('l3b')} .atlas-class-input", "brocc")
    page.keyboard.press("Enter")
    for atlas in ("l3b", "l4c"):
        page.wait_for_function(
            "(id) => document.getElementById(id).dataset.class === '2'", arg=panel(atlas)
        )
        page.wait_for_function("(id) => atlasViewers[id].painted.heat > 0", arg=panel(atlas))
    assert page.get_attribute(f"#{panel('l5b')}", "data-linked-class") == "broccoli"
    assert painted(page, "l5b")["chosen"] == visible_cells(bounds["l5b"], REGIONS["l5b"][1])
    assert page.input_value("#cabbages-class") == "broccoli"
    page.screenshot(path=artifacts_dir / "layers-heat.png")
    page.click(f"#{panel('l3b')} .atlas-class-clear")
    page.wait_for_function("() => document.getElementById('cabbages-l4c').dataset.class === ''")
    assert painted(page, "l5b")["chosen"] == 0 and page.input_value("#cabbages-class") == ""
    assert problems == []
    context.close()


def covered(boxes: list[dict[str, float]], stage: dict[str, float], step: float = 4) -> float:
    """The share of the stage's area under any of ``boxes`` (sampled every ``step`` px)."""
    hits = total = 0
    y = stage["y"] + step / 2
    while y < stage["y"] + stage["height"]:
        x = stage["x"] + step / 2
        while x < stage["x"] + stage["width"]:
            total += 1
            hits += any(
                b["x"] <= x < b["x"] + b["width"] and b["y"] <= y < b["y"] + b["height"]
                for b in boxes
            )
            x += step
        y += step
    return hits / total


@pytest.mark.parametrize("width", [1400, 1000])
def test_narrow_panels_fold_their_tools(
    browser: Any, base: str, artifacts_dir: Path, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    ids = open_linked_panels(page, base)
    for figure in ids:
        stage = page.locator(f"#{figure} .atlas-stage").bounding_box()
        assert stage is not None and stage["width"] < 560
        assert "atlas-compact" in (page.get_attribute(f"#{figure} .atlas-stage", "class") or "")
        # folded: one button and the view buttons, a few percent of the panel
        toggle = page.locator(f"#{figure} .atlas-tools-toggle")
        assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
        assert page.locator(f"#{figure} .atlas-class-input").is_hidden()
        boxes = [
            page.locator(f"#{figure} {part}").bounding_box()
            for part in (".atlas-tools", ".atlas-controls")
        ]
        assert covered([b for b in boxes if b], stage) < 0.06, figure
    page.locator("#cabbages").screenshot(path=artifacts_dir / f"layers-compact-{width}.png")
    # the button opens the tools (heat map, density, labels) and closes them again
    fig = ids[1]
    page.click(f"#{fig} .atlas-tools-toggle")
    assert page.get_attribute(f"#{fig} .atlas-tools-toggle", "aria-expanded") == "true"
    for part in (".atlas-class-input", ".atlas-density input", ".atlas-labels-toggle input"):
        assert page.locator(f"#{fig} {part}").is_visible(), part
    body = page.locator(f"#{fig} .atlas-tools-body").bounding_box()
    stage = page.locator(f"#{fig} .atlas-stage").bounding_box()
    assert body and stage and body["x"] + body["width"] <= stage["x"] + stage["width"]
    page.locator("#cabbages").screenshot(path=artifacts_dir / f"layers-compact-open-{width}.png")
    page.focus(f"#{fig} .atlas-density input")
    page.keyboard.press("Escape")  # closes the tools, focus back on their button
    assert page.get_attribute(f"#{fig} .atlas-tools-toggle", "aria-expanded") == "false"
    assert page.locator(f"#{fig} .atlas-class-input").is_hidden()
    assert page.evaluate("document.activeElement.classList.contains('atlas-tools-toggle')")
    context.close()


#: Which way image x and y run on screen in each panel of the browser site (FLIPPED).
ORIENTATION = {"l3b": (1, -1), "l4c": (-1, -1), "l5b": (-1, 1)}


@pytest.mark.parametrize("atlas", IDS)
def test_flipped_viewers_show_and_hover_the_same_cells(browser: Any, base: str, atlas: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    fig = panel(atlas)
    page.goto(base + f"study/tour.html#{fig}.xywh=0,0,256,256")
    page.wait_for_selector(f"#{fig}[data-state=ready]", timeout=20_000)
    page.wait_for_function(SETTLED_JS, arg=[fig], polling=100, timeout=20_000)
    page.select_option("#cabbages-class", "")  # no marks over the icons
    page.click(f"#{fig} .atlas-tools-toggle")
    page.uncheck(f"#{fig} .atlas-labels-toggle input")  # no labels either
    page.add_style_tag(content=".atlas-tools, .navigator { display: none !important; }")
    page.wait_for_timeout(200)
    # the flip: which way image x and y run on screen
    origin = page.evaluate(TO_PAGE_JS, [fig, 0, 0])
    corner = page.evaluate(TO_PAGE_JS, [fig, 256, 256])
    sx, sy = ORIENTATION[atlas]
    assert (corner[0] - origin[0]) * sx > 200 and (corner[1] - origin[1]) * sy > 200
    cabbage, broccoli = REGIONS[atlas]
    central = lambda cells: min(cells, key=lambda c: (c[0] - 3.5) ** 2 + (c[1] - 3.5) ** 2)  # noqa: E731
    for col, row in [central(cabbage), central(broccoli), (3, 3)]:
        x, y = (col + 0.5) * CELL, (row + 0.5) * CELL
        top = 1 if (col, row) in cabbage else 2 if (col, row) in broccoli else 0
        # the canvas shows this cell's icon where the viewer says the cell is ...
        rgb = page.evaluate(PIXEL_JS, [fig, x, y])
        colour = class_colour(top)
        assert all(abs(a - b) <= 30 for a, b in zip(rgb, colour, strict=True)), (col, row, rgb)
        # ... and hovering there describes this cell
        hover(page, atlas, x, y)
        page.wait_for_function(
            "([id, c]) => document.querySelector('#' + id + ' .atlas-cellinfo').dataset.cell === c",
            arg=[fig, f"{col},{row}"],
        )
    # the arrow keys move the picture the way they point on screen
    before = page.evaluate(TO_PAGE_JS, [fig, 128, 128])
    page.locator(f"#{fig} .openseadragon-canvas").first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(SETTLED_JS, arg=[fig], polling=100, timeout=10_000)
    after = page.evaluate(TO_PAGE_JS, [fig, 128, 128])
    assert after[0] < before[0] - 5 and after[1] < before[1] - 5  # content moved left and up
    context.close()


def test_layers_page_has_no_serious_accessibility_violations(browser: Any, base: str) -> None:
    if not AXE.is_file():
        missing_peer(f"{AXE} is missing: run `npm ci`")
    from test_accessibility import RUN_AXE

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(base + "study/tour.html")
    page.locator("#cabbages").scroll_into_view_if_needed()
    for atlas in IDS:
        page.wait_for_selector(f"#{panel(atlas)}[data-state=ready]", timeout=20_000)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(RUN_AXE)
    assert result["rules"] > 20
    assert result["bad"] == [], result["bad"]
    context.close()
