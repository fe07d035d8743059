"""GitHub Pages' limits at build time: the bytes of each publication in the summary, a warning
past ``[budget] warn_fraction`` of ``max_bytes``, an error over ``max_bytes`` or for a file over
``max_file_bytes`` that names it and its publication and leaves site/ as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitekit import make_project, snapshot, write

from generator.cli import main
from generator.config import load_config
from generator.site.build import build
from generator.site.output import SHARED


def set_budget(root: Path, budget: str) -> None:
    write(root / "atlas.toml", (root / "atlas.toml").read_text() + f"\n[budget]\n{budget}\n")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_the_budget_warns_then_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "project")
    write(root / "content/study/data.bin", "x" * 1_000_000)  # an asset, larger than any other file
    report = build(load_config(root / "atlas.toml"), log=None)
    site = root / "site"
    study = folder_bytes(site / "study") + folder_bytes(site / "atlases/grid")
    assert report.by_publication == {"study": study, SHARED: report.bytes - study}
    assert report.budget_warnings == ()
    config = str(root / "atlas.toml")
    original = (root / "atlas.toml").read_text()

    set_budget(root, f"max_bytes = {int(report.bytes / 0.8)}")  # the site is 80% of it
    assert main(["--config", config, "build", "--strict"]) == 0  # a warning, not a failure
    out = capsys.readouterr().out
    assert "\n  study: " in out
    assert "warning: the site is" in out and "80% of its budget" in out
    before = snapshot(site)

    write(root / "atlas.toml", original)
    set_budget(root, f"max_bytes = {report.bytes - 1}")
    assert main(["--config", config, "build"]) == 1
    err = capsys.readouterr().err
    assert "over its budget" in err and "atlases/grid (study)" in err  # the atlas, named
    assert "leave 160 out of an atlas's grids" in err  # how to trim an atlas
    assert snapshot(site) == before

    write(root / "atlas.toml", original)
    set_budget(root, "max_file_bytes = 900_000")
    assert main(["--config", config, "build"]) == 1
    err = capsys.readouterr().err
    assert "study/data.bin (publication 'study') is 1.0 MB" in err
    assert "[budget] max_file_bytes" in err and "fix:" in err
    assert snapshot(site) == before
