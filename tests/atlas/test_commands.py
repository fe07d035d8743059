"""``atlas compute``: finds specs in content/*/atlases.toml, computes, reuses the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.atlas.commands import find_atlas_tables
from generator.cli import main

from ._project_kit import write_project

CONFIG = """
[site]
title = "Test"
site_url = "https://example.org/"

[paths]
cache = "cache"

[compute]
device = "cpu"
batch_size = 8

[models.demo]
weights = "random"

[datasets.shapes]
kind = "synthetic"
count = 60
size = 64
"""

ATLASES = """
[atlas.four-c]
model = "demo"
layer = "mixed4c"
dataset = "shapes"
samples = 30
positions = 2
grids = [2, 4]
min_count = 1
layout = { n_neighbors = 8 }

[atlas.three-b]
model = "demo"
layer = "mixed3b"
dataset = "shapes"
samples = 30
positions = 2
grids = [3]
min_count = 1
layout = { n_neighbors = 8, metric = "cosine" }  # one metric to compile for both

[atlas.picture]
image = "picture.jpg"
grid = 20
icon_size = 80
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path, ATLASES, config=CONFIG)
    return tmp_path


def test_specs_are_found_with_their_lines(project: Path) -> None:
    tables = find_atlas_tables(project / "content")
    assert list(tables) == ["four-c", "three-b", "picture"]
    entry = tables["three-b"]
    assert entry.table["layer"] == "mixed3b" and not entry.is_image
    assert entry.where == f"{project / 'content' / 'pub' / 'atlases.toml'}:12"
    assert tables["picture"].is_image and not tables["four-c"].is_image


def test_compute_two_atlases_then_everything_is_cached(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project / "atlas.toml")
    assert main(["--config", config, "compute", "four-c", "three-b"]) == 0
    out, err = capsys.readouterr()
    assert "atlas four-c: demo mixed4c (128 channels), 60 samples from 30 images" in out
    assert "atlas three-b: demo mixed3b (120 channels)" in out
    assert "grid 3x3:" in out and "grid 4x4:" in out
    # Both layers came from one pass over the images.
    assert err.count("collect mixed3b, mixed4c:") >= 1 and "collect mixed4c:" not in err
    assert (project / "cache" / "activations").is_dir()

    assert main(["--config", config, "compute", "--all"]) == 0
    out, _ = capsys.readouterr()
    assert out.count("computed: nothing (all cached)") == 2


def test_list_and_refusals(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(project / "atlas.toml")
    assert main(["--config", config, "compute", "--list"]) == 0
    out, _ = capsys.readouterr()
    assert "four-c" in out and "demo mixed4c" in out and "picture" in out and "image" in out

    assert main(["--config", config, "compute", "four-d"]) == 2
    _, err = capsys.readouterr()
    assert "unknown atlas 'four-d'" in err and "did you mean 'four-c'?" in err

    assert main(["--config", config, "compute", "picture"]) == 2
    _, err = capsys.readouterr()
    assert "precomputed image: there is nothing to compute" in err

    assert main(["--config", config, "compute"]) == 2
    _, err = capsys.readouterr()
    assert "name the atlases to compute" in err


def test_a_bad_spec_fails_before_computing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    atlases = project / "content" / "pub" / "atlases.toml"
    atlases.write_text(ATLASES.replace('layer = "mixed3b"', 'layer = "mixed3b"\nsampels = 3'))
    assert main(["--config", str(project / "atlas.toml"), "compute", "--all"]) == 1
    _, err = capsys.readouterr()
    assert "atlas.three-b.sampels = 3" in err and "did you mean 'samples'?" in err
    assert "atlases.toml:12" in err
    assert not (project / "cache").exists()
