"""The demo publication (content/demo/) end to end at toy scale: its atlases computed on the
CPU from the demo model and the synthetic world, tiled, and its pages rendered by the real
build (tests/site/demokit.py: the committed specs on fewer samples and steps, one build shared
with tests/browser/test_demo_site.py). The pages, atlases and experiments checked are those the
publication has when the tests run, read from its Markdown and atlases.toml."""

from __future__ import annotations

import json
import re
import tomllib
from html import unescape
from pathlib import Path
from typing import Any

import tomli_w
from demokit import (
    DEMO,
    IMAGES_PER_CLASS,
    SAMPLES,
    DemoBuild,
    embeds,
    front_matter,
    is_draft,
    linked_publications,
    page_slug,
    shrink,
)

from generator.atlas.spec import parse_computed_atlas
from generator.config import load_config
from generator.site.check import check_output
from generator.tiles import check_dzi

ROOT = Path(__file__).resolve().parents[2]
CONFIG_RE = re.compile(
    r'<(?:figure|div) class="atlas-figure[^"]*" id="([^"]+)"'
    r'.*?<script type="application/json" class="atlas-config">(.*?)</script>',
    re.S,
)
PERCENT = re.compile(r"^\d{1,3}\.\d%$")


def committed_tables() -> dict[str, Any]:
    return tomllib.loads((DEMO / "atlases.toml").read_text())


def icon_size(render: dict[str, Any]) -> int:
    from generator.icons.settings import DEFAULT_PRESET, PRESETS

    return int(render.get("icon_size", PRESETS[render.get("preset", DEFAULT_PRESET)]["icon_size"]))


def published_pages() -> list[Path]:
    assert (DEMO / "index.md").is_file(), "the demo publication has no index.md"
    return [page for page in embeds().pages if not is_draft(page)]


def configs(html: str) -> dict[str, dict[str, Any]]:
    """Each atlas viewer's configuration in a page, by its element id."""
    return {m.group(1): json.loads(m.group(2)) for m in CONFIG_RE.finditer(html)}


def html_of(build: DemoBuild, page: str) -> str:
    return (build.site / "demo" / f"{page_slug(DEMO / page)}.html").read_text()


def manifest(build: DemoBuild, atlas_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (build.site / "atlases" / atlas_id / "viewer.json").read_text()
    )
    return data


# --- the scaled-down specs (no build) ------------------------------------------------------------


def test_the_scaled_down_specs_keep_every_atlas_and_experiment() -> None:
    tables = committed_tables()
    small = tomllib.loads(tomli_w.dumps(shrink(tables)))
    assert small.keys() == tables.keys()
    assert small["atlas"].keys() == tables["atlas"].keys()
    config = load_config(ROOT / "atlas.toml")
    for atlas_id, table in tables["atlas"].items():
        before = parse_computed_atlas(atlas_id, table, "atlases.toml", config=config)
        after = parse_computed_atlas(atlas_id, small["atlas"][atlas_id], "x", config=config)
        assert (after.kind, after.model, after.layer, after.dataset, after.classes) == (
            before.kind,
            before.model,
            before.layer,
            before.dataset,
            before.classes,
        )
        # the pages' pixel coordinates and grids stay valid
        assert after.grids == before.grids and icon_size(after.render) == icon_size(before.render)
        assert after.samples == SAMPLES[after.kind] < before.samples
    for experiment_id, table in tables.get("experiment", {}).items():
        assert small["experiment"][experiment_id]["pairs"] == table["pairs"]
        assert small["experiment"][experiment_id]["images_per_class"] == IMAGES_PER_CLASS


# --- the build ---------------------------------------------------------------------------------


def test_the_build_warns_of_nothing_in_the_demo(demo_build: DemoBuild) -> None:
    """The only warnings are those of the publications the pages link to and this machine
    cannot compute (InceptionV1's: no weights, no ImageNet); nothing was logged."""
    others = linked_publications()
    for warning in demo_build.report.warnings:
        left_out = re.match(r"publication '([^']+)' left out", warning)
        assert left_out and left_out.group(1) in others, warning
    said = [line for line in demo_build.log if line.startswith("warning:")]
    assert all(re.match(r"warning: publication '(?!demo')", line) for line in said), said
    assert demo_build.logged == []
    print(f"demo build at toy scale: {demo_build.seconds:.1f} s")


def test_every_page_renders(demo_build: DemoBuild) -> None:
    pages = published_pages()
    site = demo_build.site
    for page in pages:
        out = site / "demo" / f"{page_slug(page)}.html"
        assert out.is_file(), f"{page.name} was not rendered"
        html = out.read_text()
        assert "Not built here." not in html
        title = re.search(r"<title>(.*?)</title>", html, re.S)
        straight = unescape(title.group(1) if title else "").replace("’", "'").replace("“", '"')
        assert str(front_matter(page)["title"]).replace("’", "'") in straight.replace("”", '"')
    for page in embeds().pages:
        if is_draft(page):
            assert not (site / "demo" / f"{page_slug(page)}.html").exists()
    rendered = {p.stem for p in (site / "demo").glob("*.html")}
    assert rendered == {page_slug(p) for p in pages}
    assert 'href="demo/"' in (site / "index.html").read_text()  # the site index lists it


def test_every_atlas_is_published_with_tiles_and_cells(demo_build: DemoBuild) -> None:
    tables = committed_tables()["atlas"]
    embedded = embeds().atlas_ids()
    assert embedded, "the demo pages embed no atlas"
    assert embedded <= tables.keys(), sorted(embedded - tables.keys())
    config = load_config(ROOT / "atlas.toml")
    for atlas_id in sorted(tables):
        spec = parse_computed_atlas(atlas_id, tables[atlas_id], "atlases.toml", config=config)
        folder = demo_build.site / "atlases" / atlas_id
        data = manifest(demo_build, atlas_id)
        assert data["kind"] == spec.kind and data["info"]["layer"] == spec.layer
        dzi = folder / data["dzi"]
        assert dzi.is_file() and check_dzi(dzi) == []
        tiles = list((folder / f"{dzi.stem}_files").rglob("*.jpg"))
        assert len(tiles) >= len(spec.grids)
        assert [level["grid"] for level in data["levels"]] == list(spec.grids)
        assert {level["cell_px"] for level in data["levels"]} == {icon_size(spec.render)}
        icons = 0
        for level in data["levels"]:
            cells = json.loads((folder / level["cells"]).read_text())
            assert cells["grid"] == level["grid"] and cells["cell_px"] == level["cell_px"]
            rows = cells["cells"]
            assert rows, f"{atlas_id}: no cells at grid {level['grid']}"
            assert all(0 <= c < level["grid"] and 0 <= r < level["grid"] for c, r, *_ in rows)
            counts = [row[2] for row in rows]
            assert min(counts) >= 1 and sum(counts) <= spec.samples
            labels = data["labels"]
            assert all(0 <= i < len(labels) for row in rows for i in row[3])
            icons += len(rows)
        assert data["info"]["fidelity"]["all"]["n"] == icons  # one rendered icon per cell
        if spec.kind == "comparison":
            assert data["info"]["axes"]["x"] == list(spec.classes)


def test_tours_resolve_their_queries_into_stops(demo_build: DemoBuild) -> None:
    found = embeds()
    tours = [b for b in found.of_kind("atlas") if b.data.get("tour")]
    assert tours, "the demo pages have no tour"
    for block in tours:
        config = configs(html_of(demo_build, block.page))[block.figure()]
        data = manifest(demo_build, block.data["id"])
        stops = config["tour"]
        assert len(stops) == len(block.data["tour"]), (block.page, block.figure())
        for given, stop in zip(block.data["tour"], stops, strict=True):
            x, y, w, h = stop["rect"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0, (block.page, given)
            assert x + w <= data["width"] and y + h <= data["height"], (block.page, given)
            if "rect" in given:
                assert stop["rect"] == given["rect"]
            if given.get("mark"):
                assert stop["highlights"], (block.page, given)
            assert stop["caption"].startswith("<p>")
    for block in found.of_kind("atlas-layers"):
        page = configs(html_of(demo_build, block.page))
        for atlas_id in block.atlas_ids():
            panel = page[f"{block.figure()}-{atlas_id}"]
            assert panel["group"] == block.figure()
            data = manifest(demo_build, atlas_id)
            x, y, w, h = panel["view"]  # the class's region, resolved at build time
            assert w > 0 and h > 0 and x + w <= data["width"] and y + h <= data["height"]


def test_patch_results_show_numbers(demo_build: DemoBuild) -> None:
    blocks = list(embeds().of_kind("patch-results"))
    experiments = committed_tables().get("experiment", {})
    assert {b.data["experiment"] for b in blocks} <= experiments.keys()
    for block in blocks:
        html = html_of(demo_build, block.page)
        start = html.index(f'id="{block.figure()}"')
        table = html[start : html.index("</table>", start)]
        rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>(.*?)</tr>", table, re.S)
        pairs = experiments[block.data["experiment"]]["pairs"]
        assert [unescape(name) for name, _ in rows] == [
            f"{p['source']} → {p['target']}" for p in pairs
        ]
        for _, cells in rows:
            icon = re.search(r'<img class="patch-icon" src="([^"]+)"', cells)
            assert icon and (demo_build.site / "demo" / icon.group(1)).is_file()
            values = [unescape(v).strip() for v in re.findall(r"<td>([^<]*)</td>", cells)]
            correct, best, fixed, noise = values
            assert 1 <= int(correct) <= IMAGES_PER_CLASS
            assert PERCENT.match(best) and PERCENT.match(fixed), values
            assert all(PERCENT.match(v.strip()) for v in noise.split("/")), values
        results = json.loads(
            (
                demo_build.site / f"demo/experiments/{block.data['experiment']}/results.json"
            ).read_text()
        )
        for pair in results["pairs"]:
            rates = ("best_per_image_rate", "fixed_rate", "noise_best_rate", "noise_fixed_rate")
            assert all(0 <= pair[key] <= 1 for key in rates)
            assert pair["fixed_rate"] <= pair["best_per_image_rate"]


def test_links_and_tiles_of_the_built_site_hold(demo_build: DemoBuild) -> None:
    """``atlas check``'s check of the output: every link between the built files (anchors
    included) and every tile each .dzi implies; the build wrote into its own folder and cache."""
    files, tiles = check_output(demo_build.site)
    assert files == demo_build.report.files and tiles > 0
    assert (demo_build.root / ".atlas-cache/bundle").is_dir()


def test_every_cache_folder_is_one_the_cache_layout_names(demo_build: DemoBuild) -> None:
    """The demo build's cache holds only folders generator.cache.CacheLayout names (one place
    decides where each artifact lives), each stage's entries named by their keys."""
    from generator.cache import CacheLayout

    cache = demo_build.root / ".atlas-cache"
    layout = CacheLayout(cache)
    named = {
        *(layout.stage(stage, "k").parent for stage in STAGES),
        layout.bundles(),
        layout.chunks("k").parent,
        layout.render_run("k").parent,
        layout.experiment("k").parent,
        layout.tiles(),
        layout.recipe("k").parent,
        layout.site_state(),
        layout.datasets(),
    }
    found = {p for p in cache.iterdir() if p.is_dir()}
    assert found <= named, sorted(p.name for p in found - named)
    # what a computed demo build must have written
    assert {"activations", "layout", "grid", "icons", "bundle", "tiles", "site"} <= {
        p.name for p in found
    }
    bundles = [p for p in layout.bundles().iterdir() if (p / "bundle.json").is_file()]
    assert len(bundles) == len(committed_tables()["atlas"])


#: The computed stages of generator.atlas.stages and bundle_stage.
STAGES = ("activations", "whitening", "layout", "grid-20", "icons", "receptive", "bundle")
