"""Guided tours in a real browser (site served under /repo/): stepping through a tour with the
buttons, keys and step list (viewport bounds at each stop), a URL per step, highlights and
arrows drawn where they belong, the way back to free exploration, reduced motion, and a
scroll-driven tour. The atlas is synthetic (tests/site/tourkit.py): grids 10 and 20 of 32 px
cells (640 px), lions in the upper right, tigers in the lower left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import missing_peer
from test_viewer_synth import track
from tourkit import build_project, full_grid, make_bundle, write_project

from generator.bundle import AtlasBundle

pytestmark = pytest.mark.browser

LABELS = ["background", "lion", "tiger"]
SIDE = 640


def region(grid: int, col: int, row: int) -> int:
    """Lions at x 384..512, y 128..256; tigers at x 64..192, y 448..576 (image px)."""
    size = SIDE / grid
    x, y = (col + 0.5) * size, (row + 0.5) * size
    if 384 <= x < 512 and 128 <= y < 256:
        return 1
    if 64 <= x < 192 and 448 <= y < 576:
        return 2
    return 0


def cats(root: Path) -> AtlasBundle:
    grids = {g: full_grid(g, lambda c, r, g=g: region(g, c, r)) for g in (10, 20)}
    return make_bundle(root, "cats", grids, LABELS, cell_px=32)


FILLER = "\n\n".join(f"Paragraph {i} of text between the figures." for i in range(12))

ARTICLE = f"""---
title: Tours
---

A guided tour.

```atlas
id: cats
figure: fig
height: 420
tour:
  - query: {{top_class: lion}}
    title: Lions
    caption: "The **lions**, found by a query."
    mark: lions
  - rect: [0, 320, 320, 320]
    caption: "Tigers, with a highlight and an arrow."
    highlights:
      - {{rect: [64, 448, 128, 128], label: tigers}}
    arrows:
      - {{from: [280, 360], to: [192, 448], label: here}}
  - rect: [192, 192, 256, 256]
    caption: "The middle."
```

{FILLER}

```atlas
id: cats
figure: scrolly
height: 360
scroll: true
tour:
  - rect: [384, 128, 128, 128]
    caption: "Scroll: the lions."
  - rect: [64, 448, 128, 128]
    caption: "Scroll: the tigers."
  - rect: [0, 0, 320, 320]
    caption: "Scroll: the top left."
```

{FILLER}
"""

STOPS = [[384 - 64, 128 - 64, 256, 256], [0, 320, 320, 320], [192, 192, 256, 256]]

BOUNDS_JS = """(id) => { const v = atlasViewers[id];
  const r = v.image.viewportToImageRectangle(v.viewer.viewport.getBounds(true));
  return [r.x, r.y, r.width, r.height]; }"""
SETTLED_JS = """(id) => { const v = atlasViewers[id]; if (!v || !v.image) return false;
  const vp = v.viewer.viewport, a = vp.getBounds(true), b = vp.getBounds(false);
  return !v.viewer.isAnimating() && Math.abs(a.x - b.x) + Math.abs(a.y - b.y)
    + Math.abs(a.width - b.width) + Math.abs(a.height - b.height) < 1e-7; }"""
#: Image px -> page px of a viewer.
TO_PAGE_JS = """([id, x, y]) => { const v = atlasViewers[id]; const p = v.imageToStage(x, y);
  const r = v.viewer.canvas.getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tour")
    bundle = cats(folder / "bundle")
    root = write_project(folder / "project", ARTICLE, {"cats": bundle})
    build_project(root, {"cats": bundle}, strict=True)
    return root / "www"


@pytest.fixture(scope="module")
def base(site: Path) -> Iterator[str]:
    from test_viewer_synth import start_server

    server, url = start_server(site)
    yield url
    server.shutdown()
    server.server_close()


def settle(page: Any, figure: str = "fig") -> list[float]:
    page.wait_for_function(SETTLED_JS, arg=figure, polling=100, timeout=10_000)
    bounds: list[float] = page.evaluate(BOUNDS_JS, figure)
    return bounds


def assert_shows(bounds: list[float], rect: list[float]) -> None:
    """The viewport shows ``rect`` as fitBounds does: centred, one side fitted, nothing cut."""
    x, y, w, h = bounds
    rx, ry, rw, rh = rect
    tol = SIDE * 0.01
    assert abs((x + w / 2) - (rx + rw / 2)) < tol and abs((y + h / 2) - (ry + rh / 2)) < tol
    assert w >= rw - tol and h >= rh - tol
    assert abs(w - rw) < tol or abs(h - rh) < tol, (bounds, rect)


def open_figure(context: Any, url: str, figure: str = "fig") -> Any:
    page = context.new_page()
    page.goto(url)
    page.locator(f"#{figure}").scroll_into_view_if_needed()
    page.wait_for_selector(f"#{figure}[data-state=ready]", timeout=20_000)
    settle(page, figure)
    return page


#: An SVG rect's geometry (its attributes, without the stroke) in page px.
SVG_RECT_JS = """(sel) => { const e = document.querySelector(sel);
  const r = e.ownerSVGElement.getBoundingClientRect();
  return ['x', 'y', 'width', 'height'].map((k, i) => Number(e.getAttribute(k)) + (i === 0 ? r.left : i === 1 ? r.top : 0)); }"""


def box_of(page: Any, selector: str) -> list[float]:
    b = page.locator(selector).bounding_box()
    return [b["x"], b["y"], b["width"], b["height"]]


def test_stepping_through_a_tour(browser: Any, base: str, artifacts_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = open_figure(context, base + "study/tour.html")
    problems = track(page)
    config = page.evaluate("atlasViewers.fig.config.tour.map((s) => s.rect)")
    assert config == STOPS  # the query stop resolved at build time: the lions + one 32 px cell
    status = page.locator("#fig .atlas-tour-status")
    assert status.inner_text() == "Overview · 3 stops"

    page.click("#fig .atlas-tour-next")
    assert_shows(settle(page), STOPS[0])
    assert status.inner_text() == "1 of 3"
    assert page.inner_text("#fig .atlas-tour-caption") == "The lions, found by a query."
    assert page.get_attribute("#fig", "data-stop") == "1"
    assert "fig.step=1" in page.evaluate("location.hash")
    # a tour locks pan/zoom gestures (hover and clicks still work)
    assert page.evaluate("atlasViewers.fig.viewer.gestureSettingsMouse.scrollToZoom") is False
    # the mark: the lions' cells outlined with their label
    mark = page.evaluate(SVG_RECT_JS, "#fig rect.atlas-annot-box")
    a = page.evaluate(TO_PAGE_JS, ["fig", 384, 128])
    b = page.evaluate(TO_PAGE_JS, ["fig", 512, 256])
    expected = [a[0], a[1], b[0] - a[0], b[1] - a[1]]
    assert all(abs(u - v) < 2 for u, v in zip(mark, expected, strict=True)), (mark, expected)
    assert page.inner_text("#fig .atlas-annot-highlight-label") == "lions"

    page.click("#fig .atlas-tour-next")
    assert_shows(settle(page), STOPS[1])
    assert status.inner_text() == "2 of 3"
    # the highlight and the arrow, where the image coordinates put them on screen
    a = page.evaluate(TO_PAGE_JS, ["fig", 64, 448])
    b = page.evaluate(TO_PAGE_JS, ["fig", 192, 576])
    box = page.evaluate(SVG_RECT_JS, "#fig rect.atlas-annot-box")
    assert all(
        abs(u - v) < 2 for u, v in zip(box, [a[0], a[1], b[0] - a[0], b[1] - a[1]], strict=True)
    )
    line = page.evaluate(
        """() => { const l = document.querySelector('#fig line.atlas-annot-arrow');
          const r = document.querySelector('#fig .atlas-stage').getBoundingClientRect();
          return ['x1', 'y1', 'x2', 'y2'].map((k, i) => Number(l.getAttribute(k)) + (i % 2 ? r.top : r.left)); }"""
    )
    tail = page.evaluate(TO_PAGE_JS, ["fig", 280, 360])
    head = page.evaluate(TO_PAGE_JS, ["fig", 192, 448])
    assert all(abs(u - v) < 2 for u, v in zip(line, [*tail, *head], strict=True))
    label = box_of(page, "#fig .atlas-annot-highlight-label")
    assert abs(label[0] - a[0]) < 2 and abs(label[1] + label[3] + 4 - a[1]) < 3  # above the box
    assert page.inner_text("#fig .atlas-annot-arrow-label") == "here"
    page.screenshot(path=artifacts_dir / "tour-stop-2.png")

    # arrow keys step while the figure (its canvas) has focus, and in the tour's controls
    page.locator("#fig .openseadragon-canvas").first.focus()
    page.keyboard.press("ArrowLeft")
    assert_shows(settle(page), STOPS[0])
    page.focus("#fig .atlas-tour-next")
    page.keyboard.press("ArrowRight")
    assert_shows(settle(page), STOPS[1])
    # the step list
    page.click("#fig .atlas-tour-steps button[data-step='3']")
    assert_shows(settle(page), STOPS[2])
    assert (
        page.get_attribute("#fig .atlas-tour-steps button[data-step='3']", "aria-current") == "step"
    )
    assert page.locator("#fig .atlas-annot *").count() == 0  # this stop has no overlays
    assert page.is_disabled("#fig .atlas-tour-next")
    assert "fig.step=3" in page.evaluate("location.hash")

    # back to free exploration: the view stays, gestures and the view hash come back
    page.click("#fig .atlas-tour-exit")
    assert page.get_attribute("#fig", "data-stop") == "0"
    assert status.inner_text() == "Exploring freely · stop 3 of 3"
    assert page.evaluate("atlasViewers.fig.viewer.gestureSettingsMouse.scrollToZoom") is True
    assert page.is_hidden("#fig .atlas-tour-exit")
    before = settle(page)
    page.click("#fig [data-action=zoom-in]")
    assert settle(page)[2] < before[2] * 0.9
    assert "fig.xywh=" in page.evaluate("location.hash")
    page.click("#fig .atlas-tour-prev")  # resumes the tour one stop back
    assert_shows(settle(page), STOPS[1])
    assert status.inner_text() == "2 of 3"
    assert problems == []
    context.close()


def test_a_url_per_step(browser: Any, base: str, artifacts_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    problems = track(page)
    page.goto(base + "study/tour.html#fig.step=2")
    page.wait_for_selector("#fig[data-state=ready]", timeout=20_000)
    assert_shows(settle(page), STOPS[1])
    assert page.inner_text("#fig .atlas-tour-status") == "2 of 3"
    assert page.locator("#fig rect.atlas-annot-box").count() == 1
    page.evaluate("location.hash = '#fig.step=1'")  # a link followed on the page
    page.wait_for_function("document.querySelector('#fig').dataset.stop === '1'")
    assert_shows(settle(page), STOPS[0])
    page.screenshot(path=artifacts_dir / "tour-url-step.png")
    assert problems == []
    context.close()


def test_reduced_motion_moves_at_once(browser: Any, base: str) -> None:
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 1000, "height": 800})
    page = open_figure(context, base + "study/tour.html")
    page.click("#fig .atlas-tour-next")
    # no animation: the viewport is at the stop as soon as the click is handled
    assert_shows(page.evaluate(BOUNDS_JS, "fig"), STOPS[0])
    assert page.evaluate("atlasViewers.fig.viewer.isAnimating()") is False
    context.close()


def test_a_scroll_driven_tour(browser: Any, base: str, artifacts_dir: Path) -> None:
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 1280, "height": 800})
    page = open_figure(context, base + "study/tour.html", "scrolly")
    problems = track(page)
    rects = page.evaluate("atlasViewers.scrolly.config.tour.map((s) => s.rect)")
    for i in (1, 2, 0):
        page.evaluate(
            """(i) => { const s = document.querySelectorAll('#scrolly .atlas-step')[i];
              window.scrollBy(0, s.getBoundingClientRect().top + s.offsetHeight / 2 - innerHeight / 2); }""",
            i,
        )
        page.wait_for_function(
            "(n) => document.querySelector('#scrolly').dataset.stop === n", arg=str(i + 1)
        )
        assert_shows(settle(page, "scrolly"), rects[i])
        assert page.locator("#scrolly .atlas-step").nth(i).get_attribute("class") == (
            "atlas-step atlas-step-current"
        )
        # the viewer sticks: it is on screen next to the step being read
        stage = box_of(page, "#scrolly .atlas-stage")
        assert stage[1] >= -1 and stage[1] + stage[3] <= 801
        if i == 1:
            page.screenshot(path=artifacts_dir / "tour-scroll.png")
    # scrolled back above the first step: the overview
    page.evaluate(
        """() => { const s = document.querySelector('#scrolly .atlas-step');
          window.scrollBy(0, s.getBoundingClientRect().top - innerHeight * 0.9); }"""
    )
    page.wait_for_function("document.querySelector('#scrolly').dataset.stop === '0'")
    # Next scrolls the text to the next step, which drives the viewer
    page.click("#scrolly .atlas-tour-next")
    page.wait_for_function("document.querySelector('#scrolly').dataset.stop === '1'")
    assert_shows(settle(page, "scrolly"), rects[0])
    assert problems == []
    context.close()


def test_tour_page_has_no_serious_accessibility_violations(browser: Any, base: str) -> None:
    from test_accessibility import AXE, RUN_AXE

    if not AXE.is_file():
        missing_peer(f"{AXE} is missing: run `npm ci`")
    for theme in ("light", "dark"):
        context = browser.new_context(color_scheme=theme, viewport={"width": 1280, "height": 900})
        page = open_figure(context, base + "study/tour.html#fig.step=2")
        page.wait_for_selector("#fig rect.atlas-annot-box")  # a stop with its overlays
        page.locator("#scrolly").scroll_into_view_if_needed()
        page.wait_for_selector("#scrolly[data-state=ready]", timeout=20_000)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(RUN_AXE)
        assert result["rules"] > 20
        assert result["bad"] == [], f"{theme}: {result['bad']}"
        context.close()
