"""The atlas viewer in a real browser, on a site served under a subpath (/repo/).

Two fixture publications: one on an atlas image drawn here (10x10 cells of 32 px, some empty),
one on the article's published mixed4c atlas (20x20 cells of 80 px, from ../shared; skipped
when absent). For each: no request fails; OpenSeadragon loads fully; hovering a known cell
shows its info; the tour's next button, a text link and the keyboard move the viewport to the
expected image rectangles. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sitekit import draw_grid, write
from test_viewer_synth import track

from generator.config import load_config
from generator.site.build import build

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]

#: JavaScript helpers evaluated in the page (atlasViewers is the viewer script's registry).
BOUNDS_JS = """(id) => { const v = atlasViewers[id];
  const r = v.image.viewportToImageRectangle(v.viewer.viewport.getBounds(true));
  return [r.x, r.y, r.width, r.height]; }"""
SETTLED_JS = """(id) => { const v = atlasViewers[id]; if (!v || !v.image) return false;
  const vp = v.viewer.viewport, a = vp.getBounds(true), b = vp.getBounds(false);
  const key = [a.x, a.y, a.width, a.height].map((n) => n.toFixed(6)).join();
  const still = window.__atlasBounds === key; window.__atlasBounds = key;
  return still && Math.abs(a.x - b.x) + Math.abs(a.y - b.y) + Math.abs(a.width - b.width)
    + Math.abs(a.height - b.height) < 1e-7; }"""
IMAGE_TO_PAGE_JS = """([id, x, y]) => { const v = atlasViewers[id];
  const p = v.viewer.viewport.pixelFromPoint(v.image.imageToViewportCoordinates(x, y), true);
  const r = v.viewer.canvas.getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }"""


@dataclass(frozen=True)
class Case:
    """A fixture publication: its atlas image and geometry."""

    name: str
    image: Path
    grid: int
    icon: int

    @property
    def side(self) -> int:
        return self.grid * self.icon


def _article(case: Case) -> str:
    s = case.side
    return f"""---
title: The {case.name} atlas in a browser
description: A viewer, a tour and a link.
date: 2024-03-04
---

An atlas of {case.grid} x {case.grid} cells.

```atlas
id: {case.name}
figure: fig
height: 480
view: [0, 0, {s}, {s}]
caption: "The **{case.name}** atlas."
tour:
  - rect: [0, 0, {s // 4}, {s // 4}]
    caption: "The *top-left* corner."
  - rect: [{s // 2}, {s // 2}, {s // 2}, {s // 4}]
    caption: "Lower right."
```

Move to [the middle](#atlas:fig?xywh={s // 4},{s // 4},{s // 2},{s // 2}).
"""


def _build_site(tmp_path: Path, case: Case) -> Path:
    """Build the fixture project into <tmp>/www/repo/ (served as /repo/); returns www/."""
    root = tmp_path / "project"
    write(
        root / "atlas.toml",
        '[site]\ntitle = "Browser test"\nsite_url = "https://example.org/repo/"\n\n'
        '[paths]\noutput = "www/repo"\n',
    )
    write(root / "content/study/index.md", "---\ntitle: Study\n---\n\nThe study.\n")
    write(root / "content/study/viewer.md", _article(case))
    image = root / "content/study/images" / f"{case.name}{Path(case.image).suffix}"
    image.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case.image, image)  # an atlas image lies inside the content folder
    write(
        root / "content/study/atlases.toml",
        f'[atlas.{case.name}]\nimage = "images/{image.name}"\ngrid = {case.grid}\n'
        f'icon_size = {case.icon}\ntitle = "The {case.name} atlas"\n',
    )
    build(load_config(root / "atlas.toml"), strict=True, log=None)
    return root / "www"


@pytest.fixture(params=["drawn", "mixed4c"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    if request.param == "drawn":
        return Case("drawn", draw_grid(tmp_path / "drawn.png"), 10, 32)
    return Case("mixed4c", request.getfixturevalue("reference_atlas"), 20, 80)


def _settle(page: Any) -> list[float]:
    # current == target bounds, and unchanged over one polling interval (keyboard moves are
    # applied frame by frame, so equal bounds alone can be a moment within a move)
    page.wait_for_function(SETTLED_JS, arg="fig", polling=250, timeout=10_000)
    bounds: list[float] = page.evaluate(BOUNDS_JS, "fig")
    return bounds


def _assert_shows(bounds: list[float], rect: list[float], side: int) -> None:
    """The viewport shows ``rect`` as fitBounds does: centred, one side fitted, nothing cut."""
    x, y, w, h = bounds
    rx, ry, rw, rh = rect
    tol = side * 0.01
    assert abs((x + w / 2) - (rx + rw / 2)) < tol and abs((y + h / 2) - (ry + rh / 2)) < tol
    assert w >= rw - tol and h >= rh - tol
    assert abs(w - rw) < tol or abs(h - rh) < tol, (bounds, rect)


def _cells(www: Path, case: Case) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """An occupied cell and an empty one (or None) from the published cells document."""
    doc = json.loads((www / f"repo/atlases/{case.name}/cells-{case.grid}.json").read_text())
    occupied = {(c[0], c[1]) for c in doc["cells"]}
    everything = [(c, r) for r in range(case.grid) for c in range(case.grid)]
    middle = min(
        occupied, key=lambda cell: abs(cell[0] - case.grid / 2) + abs(cell[1] - case.grid / 2)
    )
    empty = next((cell for cell in everything if cell not in occupied), None)
    return middle, empty


def test_viewer_loads_hovers_tours_links_and_keys(
    browser: Any, serve: Any, case: Case, tmp_path: Path, artifacts_dir: Path
) -> None:
    www = _build_site(tmp_path, case)
    base = serve(www)
    s = case.side
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = track(page)
    weights: dict[str, tuple[int, int]] = {}

    def weigh(response: Any) -> None:
        if "/atlas_files/" not in response.url and response.status == 200:
            body = response.body()
            weights[response.url] = (len(body), len(gzip.compress(body, 6)))

    page.on("response", weigh)
    page.goto(base + "repo/study/viewer.html")
    page.locator("#fig").scroll_into_view_if_needed()
    page.wait_for_selector("#fig[data-loaded=true]", timeout=20_000)
    assert page.evaluate("atlasViewers.fig.image.getFullyLoaded()")
    _assert_shows(_settle(page), [0, 0, s, s], s)
    page.screenshot(path=artifacts_dir / f"viewer-{case.name}-loaded.png")

    occupied, empty = _cells(www, case)
    size = case.icon
    for cell, word in ((occupied, None), (empty, "empty")):
        if cell is None:
            continue
        point = page.evaluate(
            IMAGE_TO_PAGE_JS, ["fig", (cell[0] + 0.5) * size, (cell[1] + 0.5) * size]
        )
        page.mouse.move(*point)
        info = page.locator("#fig .atlas-cellinfo")
        info.wait_for(state="visible")
        page.wait_for_function(
            "([c]) => document.querySelector('#fig .atlas-cellinfo').dataset.cell === c",
            arg=[f"{cell[0]},{cell[1]}"],
        )
        text = info.inner_text()
        assert text.startswith(f"Cell {cell[0]}, {cell[1]}")
        assert ("empty" in text) == (word == "empty"), text
        if word is None:
            page.screenshot(path=artifacts_dir / f"viewer-{case.name}-hover.png")

    page.click("#fig .atlas-tour-next")
    _assert_shows(_settle(page), [0, 0, s // 4, s // 4], s)
    assert page.inner_text("#fig .atlas-tour-status") == "1 of 2"
    assert page.inner_text("#fig .atlas-tour-caption") == "The top-left corner."
    page.click("#fig .atlas-tour-next")
    _assert_shows(_settle(page), [s // 2, s // 2, s // 2, s // 4], s)
    assert page.inner_text("#fig .atlas-tour-status") == "2 of 2"
    assert page.is_disabled("#fig .atlas-tour-next")
    page.screenshot(path=artifacts_dir / f"viewer-{case.name}-tour.png")

    page.click("a.atlas-link")
    _assert_shows(_settle(page), [s // 4, s // 4, s // 2, s // 2], s)

    canvas = page.locator("#fig .openseadragon-canvas").first
    assert canvas.get_attribute("role") == "application"
    assert canvas.get_attribute("tabindex") == "0"
    canvas.focus()
    page.keyboard.press("0")
    home = _settle(page)
    _assert_shows(home, [0, 0, s, s], s)
    page.keyboard.press("+")
    zoomed = _settle(page)
    assert zoomed[2] < home[2] * 0.95
    page.keyboard.press("ArrowRight")
    panned = _settle(page)
    assert panned[0] > zoomed[0] + 1
    page.keyboard.press("n")
    _assert_shows(_settle(page), [0, 0, s // 4, s // 4], s)
    assert page.inner_text("#fig .atlas-tour-status") == "1 of 2"
    page.screenshot(path=artifacts_dir / f"viewer-{case.name}-keyboard.png")

    assert problems == []
    raw = sum(r for r, _ in weights.values())
    packed = sum(g for _, g in weights.values())
    (artifacts_dir / f"page-weight-{case.name}.json").write_text(
        json.dumps({"raw_bytes": raw, "gzip_bytes": packed, "responses": weights}, indent=1)
    )
    assert packed < 300_000  # as GitHub Pages serves it (gzip), tiles excluded
    page.close()


def test_without_javascript_the_static_image_shows(
    browser: Any, serve: Any, tmp_path: Path, artifacts_dir: Path
) -> None:
    case = Case("drawn", draw_grid(tmp_path / "drawn.png"), 10, 32)
    base = serve(_build_site(tmp_path, case))
    context = browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 900})
    page = context.new_page()
    problems = track(page)
    page.goto(base + "repo/study/viewer.html")
    fallback = page.locator("#fig noscript img, #fig img.atlas-fallback").first
    fallback.wait_for(state="visible")
    assert page.evaluate("document.querySelector('#fig img.atlas-fallback').naturalWidth") == 320
    assert not page.locator("#fig .atlas-stage").is_visible()
    page.screenshot(path=artifacts_dir / "viewer-nojs.png", full_page=True)
    assert problems == []
    context.close()


def test_reduced_motion_controls_and_print(
    browser: Any, serve: Any, tmp_path: Path, artifacts_dir: Path
) -> None:
    case = Case("drawn", draw_grid(tmp_path / "drawn.png"), 10, 32)
    base = serve(_build_site(tmp_path, case))
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 1000, "height": 900})
    page = context.new_page()
    problems = track(page)
    page.goto(base + "repo/study/viewer.html")
    page.locator("#fig").scroll_into_view_if_needed()
    page.wait_for_selector("#fig[data-loaded=true]", timeout=20_000)
    page.click("#fig .atlas-tour-next")
    # no animation: the viewport is at the stop as soon as the click is handled
    _assert_shows(page.evaluate(BOUNDS_JS, "fig"), [0, 0, 80, 80], case.side)

    before = page.evaluate(BOUNDS_JS, "fig")
    page.click("#fig [data-action=zoom-in]")
    assert page.evaluate(BOUNDS_JS, "fig")[2] < before[2] * 0.9
    page.click("#fig [data-action=reset]")
    _assert_shows(page.evaluate(BOUNDS_JS, "fig"), [0, 0, case.side, case.side], case.side)
    page.click("#fig [data-action=fullscreen]")
    page.wait_for_function(
        "document.fullscreenElement === document.querySelector('#fig .atlas-stage')"
    )
    page.click("#fig [data-action=fullscreen]")
    page.wait_for_function("document.fullscreenElement === null")

    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    page.emulate_media(media="print")
    printed = page.locator("#fig img.atlas-print")
    printed.wait_for(state="visible")
    page.wait_for_function("document.querySelector('#fig img.atlas-print').naturalWidth === 320")
    assert not page.locator("#fig .atlas-stage").is_visible()
    assert not page.locator(".site-header").is_visible()
    page.screenshot(path=artifacts_dir / "viewer-print.png", full_page=True)
    assert problems == []
    context.close()
