"""A two-class comparison in a real browser: the viewer labels its axes with both classes (left
and right ends of a strip along the bottom of the stage, the y axis between them), inside the
stage but outside the image area (no icon under a label), and swaps the class labels in a panel
flipped left-right."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from tourkit import build_project, full_grid, make_bundle, write_project

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"
LABELS = ("snorkel", "scuba diver", "steam locomotive")
Y_AXIS = "similar activations close together (1-D t-SNE)"

ARTICLE = """---
title: Snorkel or scuba diver
---

```atlas
id: cmp
height: 360
```

```atlas-layers
ids: [cmp, mirrored]
class: snorkel
flip: {mirrored: x}
height: 300
```
"""


def comparison(root: Path, atlas_id: str) -> Any:
    bundle = make_bundle(
        root / atlas_id,
        atlas_id,
        {10: full_grid(10, lambda c, r: 0 if c < 5 else 1 if c < 8 else 2)},
        LABELS,
    )
    axes = {"x": ["snorkel", "scuba diver"], "y": Y_AXIS}
    bundle = dataclasses.replace(bundle, kind="comparison", info={"axes": axes})
    bundle.save()
    return bundle


def test_comparison_axes_name_both_classes(
    browser: Any, serve: Any, tmp_path: Path, artifacts_dir: Path
) -> None:
    bundles = {name: comparison(tmp_path / "bundles", name) for name in ("cmp", "mirrored")}
    root = write_project(tmp_path / "project", ARTICLE, bundles)
    build_project(root, bundles, strict=True)
    base = serve(root / "www")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(base + "repo/study/tour.html")
    for figure in ("cmp", "layers-cmp-cmp", "layers-cmp-mirrored"):
        page.wait_for_selector(f"#{figure}[data-state=ready]", timeout=20_000)

    def labels(figure: str) -> tuple[str, str, str]:
        axes = page.locator(f"#{figure} .atlas-axes")
        return (
            axes.locator(".atlas-axis-left").inner_text(),
            axes.locator(".atlas-axis-right").inner_text(),
            axes.locator(".atlas-axis-y").inner_text(),
        )

    assert labels("cmp") == ("← snorkel", "scuba diver →", f"↕ {Y_AXIS}")
    aria = page.locator("#cmp .atlas-axes").get_attribute("aria-label") or ""
    assert "more snorkel to the left" in aria and "more scuba diver to the right" in aria
    for figure in ("cmp", "layers-cmp-cmp", "layers-cmp-mirrored"):
        stage = page.locator(f"#{figure} .atlas-stage").bounding_box()
        image = page.locator(f"#{figure} .openseadragon-canvas").first.bounding_box()
        assert stage is not None and image is not None
        assert image["height"] > stage["height"] * 0.85  # the strip takes little room
        boxes = {}
        for part in (".atlas-axis-left", ".atlas-axis-right", ".atlas-axis-y"):
            box = page.locator(f"#{figure} {part}").bounding_box()
            assert box is not None and box["width"] > 10 and box["height"] > 10
            assert stage["x"] <= box["x"]
            assert box["x"] + box["width"] <= stage["x"] + stage["width"] + 0.5
            assert stage["y"] <= box["y"]
            assert box["y"] + box["height"] <= stage["y"] + stage["height"] + 0.5
            # below the image: no icon is ever under an axis label
            assert box["y"] >= image["y"] + image["height"] - 0.5, (figure, part)
            boxes[part] = box
        left, right = boxes[".atlas-axis-left"], boxes[".atlas-axis-right"]
        assert (
            left["x"] < stage["x"] + 20
            and right["x"] + right["width"] > stage["x"] + stage["width"] - 20
        )
        y = boxes[".atlas-axis-y"]
        assert left["x"] + left["width"] <= y["x"] and y["x"] + y["width"] <= right["x"]
    assert page.get_attribute("#cmp .atlas-axis-y", "title") == f"Vertical axis: {Y_AXIS}"
    assert labels("layers-cmp-cmp")[:2] == ("← snorkel", "scuba diver →")
    assert labels("layers-cmp-mirrored")[:2] == ("← scuba diver", "snorkel →")  # flipped x
    page.locator("#cmp").screenshot(path=artifacts_dir / "comparison-axes.png")
    if AXE.is_file():  # the labels keep the page free of serious accessibility problems
        from test_accessibility import RUN_AXE

        page.add_script_tag(path=str(AXE))
        result = page.evaluate(RUN_AXE)
        assert result["rules"] > 20 and result["bad"] == [], result["bad"]
    page.close()
