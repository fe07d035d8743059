"""Tour overlays at the edges of the stage and long step titles, in a real browser: a mark
whose rectangle touches the top of the image keeps its label in the stage (below the
rectangle), a highlight filling the view has its label inside it, clear of the tools, buttons
and navigator, an ordinary one keeps it above; step titles longer than ~30 characters wrap
instead of being cut. The atlas is synthetic (tests/site/tourkit.py): grids 10 and 20 of 32 px
cells (640 px), a "sun" along the top edge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tour import SETTLED_JS, box_of
from tourkit import build_project, full_grid, make_bundle, write_project

pytestmark = pytest.mark.browser

LABELS = ["background", "sun", "grass"]
LONG_TITLE = "The sun along the very top edge of the atlas, found by a query"


def region(grid: int, col: int, row: int) -> int:
    """The sun at x 256..448, y 0..128 (image px), grass at x 64..192, y 448..576."""
    size = 640 / grid
    x, y = (col + 0.5) * size, (row + 0.5) * size
    if 256 <= x < 448 and y < 128:
        return 1
    if 64 <= x < 192 and 448 <= y < 576:
        return 2
    return 0


ARTICLE = f"""---
title: Marks
---

```atlas
id: sky
figure: fig
height: 300
tour:
  - query: {{top_class: sun}}
    title: "{LONG_TITLE}"
    mark: sun
    caption: "The sun, at the top of the image."
  - rect: [0, 0, 640, 640]
    title: Everything
    caption: "A highlight as large as the view."
    highlights:
      - {{rect: [0, 0, 640, 640], label: everything}}
  - rect: [0, 320, 320, 320]
    title: Grass
    caption: "Grass, away from the edges."
    highlights:
      - {{rect: [64, 448, 128, 128], label: grass}}
```
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from test_viewer_synth import start_server

    folder = tmp_path_factory.mktemp("tour-marks")
    grids = {g: full_grid(g, lambda c, r, g=g: region(g, c, r)) for g in (10, 20)}
    bundles = {"sky": make_bundle(folder / "bundle", "sky", grids, LABELS, cell_px=32)}
    root = write_project(folder / "project", ARTICLE, bundles)
    build_project(root, bundles, strict=True)
    server, url = start_server(root / "www")
    yield url
    server.shutdown()
    server.server_close()


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def show_stop(page: Any, step: int) -> tuple[list[float], list[float]]:
    """Go to a stop; (its label's box, its highlight's box) in page px."""
    page.click(f"#fig .atlas-tour-steps button[data-step='{step}']")
    page.wait_for_function(SETTLED_JS, arg="fig", polling=100, timeout=10_000)
    page.wait_for_timeout(100)  # the overlays follow the last frame
    box = page.evaluate(
        """() => { const e = document.querySelector('#fig rect.atlas-annot-box');
          const r = e.ownerSVGElement.getBoundingClientRect();
          return ['x', 'y', 'width', 'height'].map((k, i) =>
            Number(e.getAttribute(k)) + (i === 0 ? r.left : i === 1 ? r.top : 0)); }"""
    )
    return box_of(page, "#fig .atlas-annot-highlight-label"), box


def open_tour(browser: Any, base: str, width: int, fragment: str = "") -> tuple[Any, Any]:
    """A new browser context ``width`` x 900 px on the tour page (``fragment`` appended), its
    figure ready; the context (to close) and the page."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(base + "study/tour.html" + fragment)
    page.wait_for_selector("#fig[data-state=ready]", timeout=20_000)
    return context, page


@pytest.mark.parametrize("width", [1280, 700])
def test_mark_labels_stay_in_the_stage_clear_of_the_tools(
    browser: Any, base: str, artifacts_dir: Path, width: int
) -> None:
    context, page = open_tour(browser, base, width)
    stage = box_of(page, "#fig .atlas-stage")
    floating = [
        box_of(page, f"#fig {part}")
        for part in (".atlas-tools", ".atlas-controls", ".navigator")
        if page.locator(f"#fig {part}").is_visible()
    ]
    assert len(floating) >= 2
    places = {}
    for step, text in ((1, "sun"), (2, "everything"), (3, "grass")):
        label, box = show_stop(page, step)
        assert page.inner_text("#fig .atlas-annot-highlight-label") == text
        # wholly in the stage, and not under its tools, buttons or navigator
        assert stage[0] <= label[0] and label[0] + label[2] <= stage[0] + stage[2] + 0.5
        assert stage[1] <= label[1] and label[1] + label[3] <= stage[1] + stage[3] + 0.5
        assert not any(overlaps(label, part) for part in floating), (step, label, floating)
        places[step] = page.get_attribute("#fig .atlas-annot-highlight-label", "data-place")
        if step == 1:
            assert abs(box[1] - stage[1]) < 3  # the mark touches the top of the stage ...
            assert abs(label[1] - (box[1] + box[3] + 4)) < 2  # ... so its label goes below
            page.locator("#fig").screenshot(path=artifacts_dir / f"tour-mark-top-{width}.png")
        if step == 2:  # no room outside: inside the box
            assert box[0] - 0.5 <= label[0] and label[0] + label[2] <= box[0] + box[2] + 0.5
            assert box[1] - 0.5 <= label[1] and label[1] + label[3] <= box[1] + box[3] + 0.5
        if step == 3:  # room above: above the box, at its left end
            assert abs(label[1] + label[3] + 4 - box[1]) < 2 and abs(label[0] - box[0]) < 2
    assert places == {1: "below", 2: "inside", 3: "above"}
    context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_long_step_titles_wrap_instead_of_being_cut(
    browser: Any, base: str, artifacts_dir: Path, width: int
) -> None:
    context, page = open_tour(browser, base, width)
    buttons = page.locator("#fig .atlas-tour-steps button")
    assert buttons.nth(0).inner_text() == LONG_TITLE
    steps = box_of(page, "#fig .atlas-tour-steps")
    for i in range(buttons.count()):
        # every title is shown whole: nothing clipped, nothing past the step list
        clipped = buttons.nth(i).evaluate(
            "(b) => b.scrollWidth > b.clientWidth + 1 || b.scrollHeight > b.clientHeight + 1"
            " || getComputedStyle(b).textOverflow === 'ellipsis'"
        )
        assert not clipped, i
        b = box_of(page, f"#fig .atlas-tour-steps li:nth-child({i + 1}) button")
        assert steps[0] - 0.5 <= b[0] and b[0] + b[2] <= steps[0] + steps[2] + 0.5
    long, short = (box_of(page, f"#fig .atlas-tour-steps li:nth-child({n}) button") for n in (1, 2))
    assert long[3] > short[3] + 10  # the long title takes more than one line (13 px each)
    page.locator("#fig .atlas-tour").screenshot(
        path=artifacts_dir / f"tour-long-titles-{width}.png"
    )
    context.close()


def test_a_mark_out_of_view_has_no_label_and_a_view_hash_leaves_the_tour(
    browser: Any, base: str
) -> None:
    context, page = open_tour(browser, base, 1280, "#fig.step=1")
    page.wait_for_function(SETTLED_JS, arg="fig", polling=100, timeout=10_000)
    label = page.locator("#fig .atlas-annot-highlight-label")
    assert label.is_visible()
    # the view moved away from the mark (the tour still on): its label goes with it
    page.evaluate("atlasViewers.fig.fit([0, 448, 192, 192], true)")
    page.wait_for_function(SETTLED_JS, arg="fig", polling=100, timeout=10_000)
    page.wait_for_function(
        "() => !document.querySelector('#fig .atlas-annot-highlight-label')"
        ".checkVisibility({visibilityProperty: true})"
    )
    assert page.get_attribute("#fig", "data-stop") == "1"
    # a link to a view (not a stop) leaves the tour there: no overlays, free gestures
    page.evaluate("location.hash = '#fig.xywh=0,320,320,320'")
    page.wait_for_function("document.querySelector('#fig').dataset.stop === '0'")
    assert page.locator("#fig .atlas-annot *").count() == 0
    assert page.evaluate("atlasViewers.fig.viewer.gestureSettingsMouse.scrollToZoom") is True
    assert page.inner_text("#fig .atlas-tour-status") == "Exploring freely · stop 1 of 3"
    context.close()
