"""Patch-experiment results in a real browser: the table and the examples render (images
loaded, no failed request), a screenshot, and axe finds no serious or critical violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_patch_results import PAIRS, project
from test_viewer_synth import track

from generator.config import load_config
from generator.site.build import build

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_patch_table_renders(
    browser: Any, serve: Any, tmp_path: Path, artifacts_dir: Path, theme: str
) -> None:
    root = project(tmp_path / "p")
    build(load_config(root / "atlas.toml"), strict=True, log=None)
    base = serve(root / "www")
    context = browser.new_context(color_scheme=theme, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = track(page)
    page.goto(base + "repo/study/patches.html")
    table = page.locator("table.patch-table")
    assert table.locator("tbody tr").count() == len(PAIRS)
    first = [c.strip() for c in table.locator("tbody tr").first.locator("th, td").all_inner_texts()]
    assert first == ["snorkel → scuba diver", "", "827", "85.0%", "65.4%", "13.9% / 4.2%"]
    assert table.locator("tbody tr").nth(2).locator("th").inner_text() == "frying pan → wok & <pan>"
    images = page.locator(".patch-results img")
    assert images.count() == len(PAIRS) * 3  # an icon and two examples per pair
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.patch-results img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    page.locator(".patch-results").screenshot(path=artifacts_dir / f"patch-results-{theme}.png")
    if AXE.is_file():
        from test_accessibility import RUN_AXE

        page.add_script_tag(path=str(AXE))
        result = page.evaluate(RUN_AXE)
        assert result["rules"] > 20 and result["bad"] == [], result["bad"]
    assert problems == []
    context.close()
