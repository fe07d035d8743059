"""How the viewer loads, in a real browser (a site served under /repo/): every module by the
versioned URL of the page's import map, and OpenSeadragon checked against the version the
adapter (templates/static/atlas-viewer-osd.js) is written for, which package.json pins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sitekit import draw_grid
from test_viewer import Case, _build_site
from test_viewer_synth import track

from generator.site.pages import module_digest, module_graph

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PINNED = json.loads((ROOT / "package.json").read_text())["dependencies"]["openseadragon"]
FAKED = "5.0.1"


def _site(tmp_path: Path, serve: Any) -> tuple[Path, str]:
    case = Case("drawn", draw_grid(tmp_path / "drawn.png"), 10, 32)
    www = _build_site(tmp_path, case)
    return www, serve(www) + "repo/study/viewer.html"


def test_every_module_is_fetched_by_its_versioned_url(
    browser: Any, serve: Any, tmp_path: Path
) -> None:
    www, url = _site(tmp_path, serve)
    static = www / "repo" / "static"

    def source_of(module: str) -> Path | None:
        path = static / module.removeprefix("static/")
        return path if path.is_file() else None

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = track(page, console=True)
    fetched: list[str] = []
    page.on("request", lambda r: "/static/atlas-viewer" in r.url and fetched.append(r.url))
    page.goto(url)
    page.wait_for_selector("#fig[data-state=ready]", timeout=20_000)
    assert page.evaluate("document.querySelector('script[src*=atlas-viewer]').type") == "module"
    wanted = {}
    for path in sorted(static.glob("atlas-viewer*.js")):
        module = f"static/{path.name}"
        wanted[path.name] = f"{path.name}?v={module_digest(module_graph(module, source_of))}"
    got = sorted(u.split("/static/")[-1] for u in fetched if u.split("?")[0].endswith(".js"))
    assert got == sorted(wanted.values())  # each module once, at the digest of what it is
    assert problems == []
    page.close()


def test_another_openseadragon_version_fails_loudly_and_keeps_the_static_image(
    browser: Any, serve: Any, tmp_path: Path, artifacts_dir: Path
) -> None:
    _, url = _site(tmp_path, serve)
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    problems = track(page)
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))

    def fake(route: Any) -> None:  # the real OpenSeadragon, claiming to be another version
        response = route.fetch()
        version = f'{{versionStr: "{FAKED}", major: 5, minor: 0, revision: 1}}'
        body = f"{response.text()}\n;OpenSeadragon.version = {version};"  # after its last comment
        route.fulfill(response=response, body=body)

    page.route("**/openseadragon.min.js*", fake)
    page.goto(url)
    page.wait_for_selector("#fig[data-state=error]", timeout=20_000)
    assert page.evaluate("OpenSeadragon.version.versionStr") == FAKED  # the fake was loaded
    assert page.get_attribute("#fig", "data-error") == "openseadragon-version"
    status = page.locator("#fig .atlas-status")
    assert status.is_visible()
    assert PINNED in status.inner_text() and FAKED in status.inner_text()
    assert any(f"expected {PINNED}, found {FAKED}" in e for e in errors), errors
    printed = page.locator("#fig img.atlas-print")
    printed.wait_for(state="visible")
    page.wait_for_function("document.querySelector('#fig img.atlas-print').naturalWidth === 320")
    assert page.locator("#fig .openseadragon-canvas").count() == 0  # no viewer was made
    page.screenshot(path=artifacts_dir / "viewer-openseadragon-version.png")
    assert problems == []
    page.close()
