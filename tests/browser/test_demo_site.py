"""The demo publication in a real browser: the toy-scale build of tests/site/demokit.py (shared
with tests/site/test_demo_publication.py), served under /repo/. Every page loads with no failed
request and no console error, every viewer opens; the mixed4c atlas switches grids as it is
zoomed and describes a hovered cell; a tour advances; the layers block shows its viewers. The
figures used are found in the Markdown. Screenshots: test-artifacts/demo-*.png (each whole page
as demo-page-<slug>.png)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from demokit import DemoBuild, embeds, is_draft, page_slug
from test_viewer_synth import track

pytestmark = pytest.mark.browser

#: The atlas whose viewer is explored (the issue: "the viewer of the mixed4c atlas").
MIXED4C = "demo-mixed4c"

BOUNDS_JS = """(id) => { const v = atlasViewers[id];
  const r = v.image.viewportToImageRectangle(v.viewer.viewport.getBounds(true));
  return [r.x, r.y, r.width, r.height]; }"""
SETTLED_JS = """(id) => { const v = window.atlasViewers && atlasViewers[id];
  if (!v || !v.image) return false;
  const vp = v.viewer.viewport, a = vp.getBounds(true), b = vp.getBounds(false);
  return v.image.getFullyLoaded() && !v.viewer.isAnimating()
    && Math.abs(a.x - b.x) + Math.abs(a.y - b.y) + Math.abs(a.width - b.width) < 1e-7; }"""
TO_PAGE_JS = """([id, x, y]) => { const v = atlasViewers[id]; const p = v.imageToStage(x, y);
  const r = v.viewer.canvas.getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }"""
ON_CANVAS_JS = """([id, x, y]) => { const e = document.elementFromPoint(x, y);
  return !!e && document.querySelector('#' + id + ' .openseadragon-canvas').contains(e); }"""
OPENED_JS = """(el) => el.dataset.state === 'ready' || el.dataset.state === 'error'"""


@pytest.fixture(scope="module")
def base(demo_build: DemoBuild, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from test_viewer_synth import start_server

    www = tmp_path_factory.mktemp("demo-www")
    (www / "repo").symlink_to(demo_build.site, target_is_directory=True)
    server, url = start_server(www)  # url ends in /repo/
    yield url
    server.shutdown()
    server.server_close()


def settle(page: Any, figure: str) -> list[float]:
    page.wait_for_function(SETTLED_JS, arg=figure, polling=100, timeout=20_000)
    bounds: list[float] = page.evaluate(BOUNDS_JS, figure)
    return bounds


def open_figure(page: Any, url: str, figure: str) -> list[float]:
    page.goto(url)
    page.locator(f"#{figure}").scroll_into_view_if_needed()
    page.wait_for_selector(f"#{figure}[data-state=ready]", timeout=20_000)
    return settle(page, figure)


def block_with(kind: str, atlas: str | None = None) -> Any:
    """The first block of that kind (embedding that atlas) in the demo pages."""
    for block in embeds().of_kind(kind):
        if atlas is None or atlas in block.atlas_ids():
            return block
    pytest.fail(f"no ```{kind} block{f' of {atlas}' if atlas else ''} in content/demo")


def url_of(base: str, page: str) -> str:
    return f"{base}demo/{page_slug(Path('content/demo') / page)}.html"


def manifest(build: DemoBuild, atlas: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((build.site / f"atlases/{atlas}/viewer.json").read_text())
    return data


def test_every_page_loads_and_every_viewer_opens(
    browser: Any, base: str, artifacts_dir: Path
) -> None:
    pages = ["index.html"] + [
        f"demo/{page_slug(p)}.html" for p in embeds().pages if not is_draft(p)
    ]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    for path in pages:
        page = context.new_page()
        problems = track(page, console=True)
        page.goto(base + path)
        figures = page.locator(".atlas-figure[data-atlas]")
        for i in range(figures.count()):
            figure = figures.nth(i)
            figure.scroll_into_view_if_needed()
            page.wait_for_function(OPENED_JS, arg=figure.element_handle(), timeout=20_000)
            assert figure.get_attribute("data-state") == "ready", figure.get_attribute("id")
        for i in range(figures.count()):
            page.wait_for_function(SETTLED_JS, arg=figures.nth(i).get_attribute("id"))
        images = page.locator("main img:not(.atlas-print)")
        for i in range(images.count()):
            images.nth(i).scroll_into_view_if_needed()
        page.wait_for_function(
            """() => [...document.querySelectorAll('main img:not(.atlas-print)')]
                 .every((i) => i.complete && i.naturalWidth > 0)""",
            timeout=20_000,
        )
        page.wait_for_load_state("networkidle")
        name = "site-index" if path == "index.html" else f"page-{Path(path).stem}"
        page.screenshot(path=artifacts_dir / f"demo-{name}.png", full_page=True)
        assert problems == [], (path, problems)
        page.close()
    context.close()


def test_mixed4c_zooms_through_its_grids_and_describes_a_cell(
    browser: Any, base: str, demo_build: DemoBuild, artifacts_dir: Path
) -> None:
    block = block_with("atlas", MIXED4C)
    figure = block.figure()
    data = manifest(demo_build, MIXED4C)
    grids = [level["grid"] for level in data["levels"]]
    assert len(grids) > 1
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = track(page, console=True)
    cells_requested: list[str] = []
    page.on(
        "request",
        lambda r: f"/{MIXED4C}/cells-" in r.url and cells_requested.append(r.url.split("/")[-1]),
    )
    open_figure(page, url_of(base, block.page), figure)
    shown = [int(page.get_attribute(f"#{figure}", "data-grid") or 0)]
    assert shown[0] in grids[:-1]  # the whole atlas shows a coarser grid than the finest
    page.screenshot(path=artifacts_dir / f"demo-mixed4c-grid-{shown[0]}.png")
    # the home view's grid is labelled with its cells' top classes (coarse zoom), even when it
    # is not the coarsest grid
    page.wait_for_function(f"() => atlasViewers['{figure}'].painted.labels.length > 0")
    home = json.loads(
        (demo_build.site / f"atlases/{MIXED4C}" / f"cells-{shown[0]}.json").read_text()
    )
    top_of = {(c[0], c[1]): data["labels"][c[3][0]] for c in home["cells"] if c[3]}
    for label in page.evaluate(f"atlasViewers['{figure}'].painted.labels"):
        assert label["text"] == top_of[tuple(label["cell"])]
    # zooming in (the toolbar's button) switches to finer grids, one at a time
    for _ in range(8):
        page.click(f"#{figure} [data-action=zoom-in]")
        settle(page, figure)
        grid = int(page.get_attribute(f"#{figure}", "data-grid") or 0)
        if grid != shown[-1]:
            assert grid == grids[grids.index(shown[-1]) + 1]
            shown.append(grid)
            page.screenshot(path=artifacts_dir / f"demo-mixed4c-grid-{grid}.png")
        if grid == grids[-1]:
            break
    assert shown == grids[grids.index(shown[0]) :]
    assert page.evaluate(f"atlasViewers['{figure}'].painted.labels") == []  # finer: none
    page.wait_for_timeout(200)
    assert {f"cells-{g}.json" for g in shown} <= set(cells_requested)

    # hovering an occupied cell in view shows its cell, count and classes
    level = data["levels"][-1]
    size = level["cell_px"] * level["scale"]
    rows = json.loads((demo_build.site / f"atlases/{MIXED4C}" / level["cells"]).read_text())
    x, y, w, h = settle(page, figure)
    for cell in rows["cells"]:
        col, row = cell[:2]
        cx, cy = (col + 0.5) * size, (row + 0.5) * size
        if not (x < cx < x + w and y < cy < y + h):
            continue
        point = page.evaluate(TO_PAGE_JS, [figure, cx, cy])
        if page.evaluate(ON_CANVAS_JS, [figure, *point]):
            break
    else:
        pytest.fail(f"no occupied cell of grid {level['grid']} in view at {[x, y, w, h]}")
    page.mouse.move(*point)
    info = page.locator(f"#{figure} .atlas-cellinfo")
    page.wait_for_function(
        "([id, c]) => document.querySelector('#' + id + ' .atlas-cellinfo').dataset.cell === c",
        arg=[figure, f"{col},{row}"],
        timeout=10_000,
    )
    assert info.is_visible()
    text = info.inner_text().replace("\xa0", " ")
    assert text.startswith(f"Cell {col}, {row} · {level['grid']} × {level['grid']} grid")
    count, top = cell[2], cell[3]
    assert f"{count:,} activation{'' if count == 1 else 's'} averaged" in text
    classes = info.locator(".atlas-cellinfo-classes li span:first-child").all_inner_texts()
    assert classes and classes[0] == data["labels"][top[0]]
    page.screenshot(path=artifacts_dir / "demo-mixed4c-hover.png")
    assert problems == []
    context.close()


def test_a_tour_advances(browser: Any, base: str, artifacts_dir: Path) -> None:
    tours = [b for b in embeds().of_kind("atlas") if b.data.get("tour")]
    assert tours, "no tour in content/demo"
    block = next((b for b in tours if MIXED4C in b.atlas_ids()), tours[0])
    figure, count = block.figure(), len(block.data["tour"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = track(page, console=True)
    open_figure(page, url_of(base, block.page), figure)
    stops = page.evaluate(f"atlasViewers['{figure}'].config.tour")
    status = page.locator(f"#{figure} .atlas-tour-status")
    assert status.inner_text() == f"Overview · {count} stop{'' if count == 1 else 's'}"
    for step in range(1, min(count, 2) + 1):
        page.click(f"#{figure} .atlas-tour-next")
        bounds = settle(page, figure)
        assert status.inner_text() == f"{step} of {count}"
        assert page.get_attribute(f"#{figure}", "data-stop") == str(step)
        # the stop's rectangle is shown (as fitBounds shows it: centred, one side fitted)
        rx, ry, rw, rh = stops[step - 1]["rect"]
        x, y, w, h = bounds
        tol = 0.02 * max(rw, rh)
        assert abs(x + w / 2 - (rx + rw / 2)) < tol and abs(y + h / 2 - (ry + rh / 2)) < tol
        assert abs(w - rw) < tol or abs(h - rh) < tol, (bounds, stops[step - 1]["rect"])
        caption = page.inner_text(f"#{figure} .atlas-tour-caption")
        assert caption.strip() and caption.split()[0] in stops[step - 1]["caption"]
        page.screenshot(path=artifacts_dir / f"demo-tour-stop-{step}.png")
    assert problems == []
    context.close()


def test_the_layers_block_shows_its_viewers(
    browser: Any, base: str, artifacts_dir: Path, demo_build: DemoBuild
) -> None:
    block = block_with("atlas-layers")
    ids = block.atlas_ids()
    assert len(ids) == 3  # the demo follows one class through three layers
    group = block.figure()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = track(page, console=True)
    page.goto(url_of(base, block.page))
    page.locator(f"#{group}").scroll_into_view_if_needed()
    panels = page.locator(f"#{group} .atlas-layer")
    assert panels.count() == len(ids)
    for atlas in ids:
        panel = f"{group}-{atlas}"
        page.wait_for_selector(f"#{panel}[data-state=ready]", timeout=20_000)
        x, y, w, h = settle(page, panel)
        # each opens on the block's class (its region, resolved at build time)
        view = page.evaluate(f"atlasViewers['{panel}'].config.view")
        assert abs(x + w / 2 - (view[0] + view[2] / 2)) < 0.05 * view[2]
        assert abs(y + h / 2 - (view[1] + view[3] / 2)) < 0.05 * view[3]
        assert page.get_attribute(f"#{panel}", "data-linked-class") == block.data["class"]
        box = page.locator(f"#{panel} .openseadragon-canvas[role=application]").bounding_box()
        assert box and box["width"] > 200 and box["height"] > 200
    tops = [b["y"] for b in (page.locator(f"#{group}-{a}").bounding_box() for a in ids) if b]
    assert max(tops) - min(tops) < 5  # side by side
    page.locator(f"#{group}").screenshot(path=artifacts_dir / "demo-layers.png")
    assert problems == []
    context.close()
