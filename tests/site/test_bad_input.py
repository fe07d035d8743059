"""Bad input through the CLI: each case exits 1 (bad content) or 2 (an unknown name) with a
message naming the file (and line or key) and the fix, and leaves the previously built site/
exactly as it was."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sitekit import draw_grid, snapshot, write

from generator.cli import main


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _article(root: Path) -> Path:
    return root / "content/study/first-look.md"


def malformed_front_matter(root: Path) -> str:
    _edit(_article(root), "title: First look", "title: First: look")
    return rf"{_article(root)}:2: malformed front matter"


def invalid_atlas_yaml(root: Path) -> str:
    _edit(_article(root), "height: 400", "height: [400")
    return rf"{_article(root)}:\d+: invalid YAML in an atlas block"


def unknown_atlas_id(root: Path) -> str:
    _edit(_article(root), "id: grid", "id: gird")
    return rf"{_article(root)}:13 \(key 'id'\): unknown atlas id 'gird' \(did you mean 'grid'\?\)"


def missing_atlas_image(root: Path) -> str:
    _edit(root / "content/study/atlases.toml", "images/grid.png", "images/grdi.png")
    return r"atlases.toml:1 \(key 'image'\): the atlas image of \[atlas.grid\] does not exist"


def missing_asset(root: Path) -> str:
    write(_article(root), _article(root).read_text() + "\n![A chart](img/chart.png)\n")
    return rf"{_article(root)}:25: 'img/chart.png' points to a missing file 'study/img/chart.png'"


def link_to_missing_page(root: Path) -> str:
    write(_article(root), _article(root).read_text() + "\nSee [the next](next-look.md).\n")
    return rf"{_article(root)}:25: 'next-look.md' points to a missing file"


def link_to_missing_anchor(root: Path) -> str:
    write(_article(root), _article(root).read_text() + "\nSee [this](index.md#method).\n")
    return rf"{_article(root)}:25: './#method': no anchor #method in study/index.html"


def duplicate_output_path(root: Path) -> str:
    write(root / "content/study/copy.md", "---\ntitle: Copy\nslug: first-look\n---\n\nText.\n")
    return r"two sources write the same output path 'study/first-look.html'"


def atlas_size_mismatch(root: Path) -> str:
    draw_grid(root / "content/study/images/grid.png", grid=10, icon=30)
    return r"atlas image size does not match its grid.*expected: 320x320 px.*got: 300x300 px"


def budget_exceeded(root: Path) -> str:
    write(
        root / "atlas.toml", (root / "atlas.toml").read_text() + "\n[budget]\nmax_bytes = 100_000\n"
    )
    return r"over its budget.*largest parts: static"


def unknown_citation(root: Path) -> str:
    _edit(_article(root), "[@carter2019]", "[@carter2091]")
    return (
        rf"{_article(root)}:11: unknown citation key 'carter2091' \(did you mean 'carter2019'\?\)"
    )


CASES: list[Callable[[Path], str]] = [
    malformed_front_matter,
    invalid_atlas_yaml,
    unknown_atlas_id,
    missing_atlas_image,
    missing_asset,
    link_to_missing_page,
    link_to_missing_anchor,
    duplicate_output_path,
    atlas_size_mismatch,
    budget_exceeded,
    unknown_citation,
]

#: Exit status of each case (generator/errors.py: 1 = bad content, 2 = an unknown name or bad
#: setup); every case not named here is bad content.
EXIT_CODES: dict[Callable[[Path], str], int] = {unknown_atlas_id: 2}


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_fails_cleanly(
    case: Callable[[Path], str], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project / "atlas.toml")
    assert main(["--config", config, "build"]) == 0
    before = snapshot(project / "site")
    capsys.readouterr()

    expected = case(project)
    code = main(["--config", config, "build"])
    err = capsys.readouterr().err
    assert code == EXIT_CODES.get(case, 1)
    assert re.search(expected, err, re.DOTALL), err
    assert "fix:" in err
    assert snapshot(project / "site") == before
    leftovers = [p.name for p in project.iterdir() if p.name.startswith(".site")]
    assert leftovers == []


def test_check_reports_the_same_problems(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link_to_missing_page(project)
    assert main(["--config", str(project / "atlas.toml"), "check"]) == 1
    assert "next-look.md" in capsys.readouterr().err
    assert not (project / "site").exists()  # check never writes the site
