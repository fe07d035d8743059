"""`atlas serve` in a browser: an edit rebuilds the site and the open page reloads itself; a
broken edit shows the build error in a banner and keeps the last good page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sitekit import make_project

from generator.site.serve import DevServer

pytestmark = pytest.mark.browser


def test_edit_reloads_the_page_and_errors_show_a_banner(browser: Any, tmp_path: Path) -> None:
    root = make_project(tmp_path / "project")
    server = DevServer(root / "atlas.toml", "127.0.0.1", 0, log=lambda _m: None)
    server.start()
    page = browser.new_page()
    try:
        page.goto(server.url + "study/first-look.html")
        assert page.inner_text("h2#overview").startswith("Overview")
        article = root / "content/study/first-look.md"
        article.write_text(article.read_text().replace("## Overview", "## Overview, edited"))
        assert server.poll_once()
        page.wait_for_selector("h2#overview-edited", timeout=10_000)  # reloaded by itself

        article.write_text(article.read_text().replace("id: grid", "id: gird"))
        assert not server.poll_once()
        banner = page.locator("#atlas-build-error")
        banner.wait_for(state="visible", timeout=10_000)
        assert "unknown atlas id 'gird'" in banner.inner_text()
        assert page.locator("h2#overview-edited").is_visible()
    finally:
        page.close()
        server.stop()
