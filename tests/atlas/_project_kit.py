"""A tiny project for command-level tests: its atlas.toml (the demo model with random weights
on 40 synthetic 64 px images, CPU and one thread, cache in ``cache/``) and a writer of the
project folder."""

from pathlib import Path

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
