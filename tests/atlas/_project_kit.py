"""A tiny project for command-level tests: its atlas.toml (the demo model with random weights
on 40 synthetic 64 px images, CPU and one thread, cache in ``cache/``) and a writer of the
project folder; and the tiny demo-model atlas the bundle-level tests compute."""

from pathlib import Path
from typing import Any

#: A demo-model atlas of mixed4c: 60 samples, grids 2 and 4, t-SNE, 4 steps of the tiny preset.
DEMO_ATLAS: dict[str, Any] = {
    "title": "Demo mixed4c",
    "model": "demo",
    "layer": "mixed4c",
    "dataset": "shapes",
    "samples": 30,
    "positions": 2,
    "seed": 1,
    "grids": [2, 4],
    "min_count": 1,
    "layout": {"method": "tsne", "perplexity": 5},
    "render": {"preset": "tiny", "steps": 4, "examples": 2, "example_px": 16},
}

TINY_PROJECT_CONFIG = """
[site]
title = "Test"
site_url = "https://example.org/"

[paths]
cache = "cache"

[compute]
device = "cpu"
threads = 1

[models.demo]
weights = "random"

[datasets.shapes]
kind = "synthetic"
count = 40
size = 64
"""


def write_project(
    root: Path, atlases: str, *, config: str = TINY_PROJECT_CONFIG, publication: str = "pub"
) -> Path:
    """``root/atlas.toml`` (``config``) and ``root/content/<publication>/atlases.toml``
    (``atlases``); returns the publication folder."""
    (root / "atlas.toml").write_text(config)
    pub = root / "content" / publication
    pub.mkdir(parents=True)
    (pub / "atlases.toml").write_text(atlases)
    return pub
