"""axe-core (npm) on the built pages, light and dark, with the viewer loaded: no serious or
critical violation in our markup. Also a narrow (phone) viewport screenshot of each theme."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from peers import missing_peer
from sitekit import make_project

from generator.config import load_config
from generator.site.build import build

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  const bad = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
  return { rules: result.passes.length + result.violations.length, bad: bad,
           minor: result.violations.map((v) => v.id + ":" + v.impact) };
}"""


@pytest.fixture
def site_url(tmp_path: Path, serve: Any) -> str:
    """The sample project (an article with an atlas, citations, a tour) served at /repo/."""
    root = make_project(tmp_path / "project")
    config = root / "atlas.toml"
    config.write_text(config.read_text() + '\n[paths]\noutput = "www/repo"\n')
    build(load_config(config), log=None)
    return str(serve(root / "www")) + "repo/"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_serious_accessibility_violations(
    browser: Any, site_url: str, theme: str, artifacts_dir: Path
) -> None:
    if not AXE.is_file():
        missing_peer(f"{AXE} is missing: run `npm ci`")
    context = browser.new_context(color_scheme=theme, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    for path in ("", "study/", "study/first-look.html"):
        page.goto(site_url + path)
        if path.endswith(".html"):
            page.locator("#grid").scroll_into_view_if_needed()
            page.wait_for_selector("#grid[data-loaded=true]", timeout=20_000)
            page.click("#grid .atlas-tour-next")  # the tour's live caption is filled in
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(RUN_AXE)
        assert result["rules"] > 20  # axe really ran its rules
        assert result["bad"] == [], f"{theme} {path or 'index'}: {result['bad']}"
        print(theme, path or "index", "other findings:", result["minor"])
    page.screenshot(path=artifacts_dir / f"article-{theme}.png", full_page=True)
    context.close()


def test_theme_toggle_and_phone_layout(browser: Any, site_url: str, artifacts_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="light")
    page = context.new_page()
    page.goto(site_url + "study/first-look.html")
    toggle = page.locator(".theme-toggle")
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert toggle.get_attribute("aria-pressed") == "true"
    page.reload()  # the choice is remembered
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 26)"
    page.locator("#grid").scroll_into_view_if_needed()
    page.wait_for_selector("#grid[data-loaded=true]", timeout=20_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways on a phone
    page.screenshot(path=artifacts_dir / "article-phone-dark.png", full_page=True)
    context.close()
