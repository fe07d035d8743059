"""The author mode of ``atlas serve``: "copy the current view as a tour stop" copies YAML whose
rectangle is the viewer's current bounds; built sites never contain it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sitekit import make_project

from generator.site.serve import DevServer

pytestmark = pytest.mark.browser

BOUNDS_JS = """() => { const v = atlasViewers.grid;
  const r = v.image.viewportToImageRectangle(v.viewer.viewport.getBounds(true));
  return [r.x, r.y, r.width, r.height]; }"""
SETTLED_JS = """() => { const v = atlasViewers.grid; if (!v || !v.image) return false;
  const vp = v.viewer.viewport, a = vp.getBounds(true), b = vp.getBounds(false);
  return !v.viewer.isAnimating() && Math.abs(a.x - b.x) + Math.abs(a.width - b.width) < 1e-9; }"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    root = make_project(tmp_path / "project")
    dev = DevServer(root / "atlas.toml", port=0, log=lambda _message: None)
    dev.start()
    yield dev
    dev.stop()


def stop_of(text: str) -> list[float]:
    """The rectangle of a copied stop (which must be valid tour YAML)."""
    assert re.fullmatch(r'- rect: \[\d+, \d+, \d+, \d+\]\n  caption: ""', text), text
    stops = yaml.safe_load(text)
    assert stops == [{"rect": stops[0]["rect"], "caption": ""}]
    rect: list[float] = stops[0]["rect"]
    return rect


def test_copy_the_current_view_as_a_tour_stop(
    browser: Any, server: DevServer, artifacts_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url.rstrip("/"))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "study/first-look.html")
    page.locator("#grid").scroll_into_view_if_needed()
    page.wait_for_selector("#grid[data-state=ready] .atlas-author-copy", timeout=20_000)
    page.evaluate(
        "() => { atlasViewers.grid.fit([80, 140, 160, 40], true); atlasViewers.grid.viewer.viewport.applyConstraints(true); }"
    )
    page.wait_for_function(SETTLED_JS, polling=100, timeout=10_000)
    page.click("#grid .atlas-author-copy")
    page.wait_for_selector("#grid .atlas-author-note pre")
    copied = page.evaluate("navigator.clipboard.readText()")
    bounds = page.evaluate(BOUNDS_JS)
    rect = stop_of(copied)
    assert all(abs(a - b) <= 1 for a, b in zip(rect, bounds, strict=True)), (rect, bounds)
    assert page.inner_text("#grid .atlas-author-note pre") == copied
    assert page.inner_text("#grid .atlas-author-note").startswith("Copied as a tour stop")
    page.screenshot(path=artifacts_dir / "tour-author-copy.png")

    # the shortcut, after zooming in with the keyboard
    page.locator("#grid .openseadragon-canvas").first.focus()
    page.keyboard.press("+")
    page.wait_for_function(SETTLED_JS, polling=100, timeout=10_000)
    page.keyboard.press("Shift+C")
    page.wait_for_function(
        "(before) => document.querySelector('#grid').dataset.authorStop !== before", arg=copied
    )
    rect = stop_of(page.get_attribute("#grid", "data-author-stop") or "")
    bounds = page.evaluate(BOUNDS_JS)
    assert all(abs(a - b) <= 1 for a, b in zip(rect, bounds, strict=True)), (rect, bounds)
    assert rect[2] < 150  # zoomed in
    assert page.evaluate("navigator.clipboard.readText()") == page.get_attribute(
        "#grid", "data-author-stop"
    )
    assert errors == []
    context.close()


def test_built_sites_have_no_author_mode(server: DevServer) -> None:
    built = [p for p in server.output.rglob("*") if p.suffix in (".html", ".js")]
    assert built and not any("atlas-author" in p.read_text(encoding="utf-8") for p in built)
    import urllib.request

    with urllib.request.urlopen(server.url + "study/first-look.html") as response:
        served = response.read().decode()
    assert "atlas-author-copy" in served  # injected by the dev server only
