"""The demo publication (content/demo/) built at toy scale, shared by the site and browser tests.

:func:`build_demo` copies atlas.toml, content/index.md, content/demo/ and the publications its
pages link to into a folder, shrinks the copy's ``content/demo/atlases.toml`` (:func:`shrink`:
fewer samples, t-SNE, two render steps, a small experiment; every atlas keeps its grids and icon
size, so the pixel coordinates and grids the pages name stay valid) and runs the real build (the
function ``atlas build`` calls) with the folder's own cache: about 35 s of CPU. :func:`embeds`
reads what the pages embed from their Markdown, whatever pages the publication has when the
tests run.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "content/demo"

#: Samples of each kind of atlas (the committed specs: 4,000 for all). A class atlas keeps the
#: samples its class wins, ~1/12 of them: with 300 a class atlas had 4 cells and a tour query of
#: the pages found nothing.
SAMPLES = {"layer": 400, "class": 1000, "comparison": 1000}
#: Adam steps per icon (the committed "demo" preset: 64).
STEPS = 2
#: Source-class images of the patch experiment (the committed spec: 150).
IMAGES_PER_CLASS = 8


def shrink(tables: dict[str, Any]) -> dict[str, Any]:
    """The demo publication's atlases.toml tables at toy scale: the same atlases (kinds,
    classes, layers, grids, icon sizes: the pages' pixel coordinates and grids stay valid) and
    experiment pairs, on :data:`SAMPLES` samples laid out by t-SNE (UMAP's numba compilation
    alone takes ~17 s), with cells of any count, icons of :data:`STEPS` steps, and the
    experiment on a few images."""
    from generator.icons.settings import DEFAULT_PRESET, PRESETS

    out = json.loads(json.dumps(tables))  # a deep copy
    for table in out.get("atlas", {}).values():
        if "image" in table:
            continue  # a precomputed atlas: nothing to compute
        metric = table.get("layout", {}).get("metric", "cosine")
        render = table.get("render", {})
        icon_size = render.get(
            "icon_size", PRESETS[render.get("preset", DEFAULT_PRESET)]["icon_size"]
        )
        table.update(samples=SAMPLES[table.get("kind", "layer")], min_count=1)
        table["layout"] = {"method": "tsne", "metric": metric}
        table["render"] = {
            "preset": "tiny",
            "icon_size": icon_size,
            "steps": STEPS,
            "examples": 1,
            "example_px": 16,
        }
    for experiment in out.get("experiment", {}).values():
        experiment.update(
            images_per_class=IMAGES_PER_CLASS,
            sizes=[0.3, 0.5],
            positions=[[0, 0], [1, 1]],
            noise_patches=1,
            examples=1,
        )
        experiment.pop("fixed", None)  # it may name a placement no longer tried
    return out


@dataclass
class DemoBuild:
    """A built toy-scale copy of the demo publication."""

    root: Path  # the project (atlas.toml, content/, site/, .atlas-cache/)
    report: Any  # generator.site.build.BuildReport
    log: list[str]  # what the build said (``log``)
    logged: list[str]  # records of Python's logging at WARNING and above, while it ran
    seconds: float

    @property
    def site(self) -> Path:
        return self.root / "site"


def linked_publications(publication: Path = DEMO) -> set[str]:
    """The other publications the pages link to (``../<name>/...``)."""
    text = "".join(p.read_text(encoding="utf-8") for p in publication.glob("*.md"))
    return set(re.findall(r"\]\(\.\./([A-Za-z0-9_-]+)/", text)) - {publication.name}


def copy_demo(root: Path) -> Path:
    """The repository's atlas.toml (on the CPU), site index and demo publication, with the
    publication's atlases.toml shrunk (:func:`shrink`), and the publications its pages link to
    (InceptionV1's is then left out, as on any machine without its weights or images: its data
    set folder is pointed at a folder that does not exist)."""
    (root / "content").mkdir(parents=True)
    config = (ROOT / "atlas.toml").read_text()
    assert 'device = "auto"' in config
    config = config.replace('device = "auto"', 'device = "cpu"')
    config = re.sub(r'(?m)^folder = ".*"', f'folder = "{root}/no-such-folder"', config)
    (root / "atlas.toml").write_text(config)
    shutil.copy(ROOT / "content/index.md", root / "content/index.md")
    for name in {DEMO.name, *linked_publications()}:
        shutil.copytree(ROOT / "content" / name, root / "content" / name)
    specs = root / "content/demo/atlases.toml"
    specs.write_text(tomli_w.dumps(shrink(tomllib.loads(specs.read_text()))))
    return root


def build_demo(root: Path) -> DemoBuild:
    """Copy (:func:`copy_demo`) and build, as ``atlas build`` does."""
    import sklearn.manifold  # noqa: F401  (loaded, so that threadpool_limits reaches its OpenMP)
    import torch  # noqa: F401
    from threadpoolctl import threadpool_limits

    from generator.config import load_config
    from generator.site.build import build

    copy_demo(root)
    log: list[str] = []
    handler = _Records(logging.WARNING)
    logging.getLogger().addHandler(handler)
    started = time.perf_counter()
    try:
        # One OpenMP thread: on this busy 2-core machine scikit-learn's t-SNE took 18 s for 30
        # points on two threads (0.2 s on one), and icons rendered ~10x slower.
        with threadpool_limits(1):
            report = build(load_config(root / "atlas.toml"), log=log.append)
    finally:
        logging.getLogger().removeHandler(handler)
    seconds = time.perf_counter() - started
    return DemoBuild(root, report, log, handler.messages, seconds)


class _Records(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


# --- what the pages embed, read from their Markdown ----------------------------------------------

FENCE = re.compile(
    r"^(`{3,})(atlas|atlas-layers|patch-results)[ \t]*\n(.*?)^\1[ \t]*$", re.M | re.S
)


@dataclass
class Block:
    """A fenced block of a page: its kind, YAML data and the page's file name."""

    kind: str  # "atlas" | "atlas-layers" | "patch-results"
    data: dict[str, Any]
    page: str

    def figure(self) -> str:
        if self.kind == "atlas":
            return str(self.data.get("figure", self.data["id"]))
        if self.kind == "atlas-layers":
            return str(self.data.get("figure", f"layers-{self.data['ids'][0]}"))
        return str(self.data.get("figure", f"patch-{self.data['experiment']}"))

    def atlas_ids(self) -> list[str]:
        if self.kind == "atlas":
            return [str(self.data["id"])]
        if self.kind == "atlas-layers":
            return [str(i) for i in self.data["ids"]]
        return []


@dataclass
class Embeds:
    pages: list[Path] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def atlas_ids(self) -> set[str]:
        return {i for b in self.blocks for i in b.atlas_ids()}

    def of_kind(self, kind: str) -> Iterator[Block]:
        return (b for b in self.blocks if b.kind == kind)


def embeds(publication: Path = DEMO) -> Embeds:
    """Every page of the publication (drafts included) and its atlas, layers and
    patch-results blocks."""
    found = Embeds(pages=sorted(publication.glob("*.md")))
    for page in found.pages:
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            data = yaml.safe_load(match.group(3)) or {}
            found.blocks.append(Block(match.group(2), data, page.name))
    return found


def front_matter(page: Path) -> dict[str, Any]:
    """A page's YAML front matter."""
    front = re.match(r"---\n(.*?)\n---\n", page.read_text(encoding="utf-8"), re.S)
    meta = yaml.safe_load(front.group(1)) if front else None
    return meta if isinstance(meta, dict) else {}


def page_slug(page: Path) -> str:
    """The page's output name (front matter ``slug`` or the file name) without ``.html``."""
    return str(front_matter(page).get("slug") or page.stem)


def is_draft(page: Path) -> bool:
    return bool(front_matter(page).get("draft"))
