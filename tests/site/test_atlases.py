"""Atlas specs (atlases.toml), the bundle cache, and the hook to the compute engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sitekit import draw_grid, write

from generator.config import load_config
from generator.errors import ConfigError, ContentError, SetupError
from generator.site import atlases
from generator.site.build import build
from generator.specs import read_spec_files


def _specs(project: Path) -> tuple[dict[str, atlases.AtlasSpec], list[str]]:
    return atlases.load_specs(read_spec_files(project / "content"), project / "content")


def test_image_spec_is_read_with_its_line(project: Path) -> None:
    specs, warnings = _specs(project)
    grid = specs["grid"]
    assert (grid.grid, grid.icon_size, grid.title, grid.background) == (
        10,
        32,
        "A test grid",
        "#ffffff",
    )
    assert grid.image == project / "content/study/images/grid.png"
    assert grid.where == f"{project / 'content/study/atlases.toml'}:1"
    assert warnings == []


@pytest.mark.parametrize(
    ("table", "error", "message"),
    [
        ('image = "images/grid.png"\ngrid = 0\nicon_size = 32', ConfigError, "grid is invalid"),
        ('image = "images/grid.png"\ngrid = 10\nicon_size = "32"', ConfigError, "icon_size is invalid"),
        ('image = "images/grid.png"\ngrid = 10\nicon_size = 32\nbackground = "white"', ConfigError, "background is invalid"),
        ('image = "nope.png"\ngrid = 10\nicon_size = 32', ContentError, "does not exist"),
    ],
)  # fmt: skip
def test_bad_image_specs(project: Path, table: str, error: type[Exception], message: str) -> None:
    write(project / "content/study/atlases.toml", f"[atlas.grid]\n{table}\n")
    with pytest.raises(error, match=message):
        _specs(project)


def test_every_bad_key_of_an_image_atlas_is_reported_at_once(project: Path) -> None:
    write(
        project / "content/study/atlases.toml",
        '[atlas.grid]\nimage = ""\ngrid = 0\nicon_size = 32\ntitle = " "\n',
    )
    with pytest.raises(ConfigError) as info:
        _specs(project)
    message = info.value.message()
    assert "3 problems in [atlas.grid]" in message
    for line in ("image = '': expected", "grid = 0: expected", "title = ' ': expected"):
        assert line in message
    assert f"{project / 'content/study/atlases.toml'}:1" in message


def test_unknown_keys_warn_and_ids_are_checked(project: Path) -> None:
    toml = project / "content/study/atlases.toml"
    toml.write_text(toml.read_text() + 'titel = "x"\n\n[other]\nx = 1\n')
    _, warnings = _specs(project)
    assert any("unknown key 'titel' in [atlas.grid] (did you mean 'title'?)" in w for w in warnings)
    assert any("unknown table or key 'other'" in w for w in warnings)
    write(toml, '[atlas."bad id"]\nimage = "x.png"\n')
    with pytest.raises(ConfigError, match="becomes a folder name"):
        _specs(project)
    write(toml, "[atlas.grid\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        _specs(project)


def test_atlas_ids_are_unique_across_the_site(project: Path) -> None:
    write(project / "content/other/index.md", "---\ntitle: Other\n---\n")
    write(
        project / "content/other/atlases.toml",
        '[atlas.grid]\nimage = "g.png"\ngrid = 10\nicon_size = 32\n',
    )
    draw_grid(project / "content/other/g.png")
    with pytest.raises(ConfigError, match="atlas id 'grid' is declared twice") as info:
        _specs(project)
    message = info.value.message()
    assert "study/atlases.toml:1" in message and "other/atlases.toml:1" in message


def test_file_digests_are_remembered_by_size_and_mtime(tmp_path: Path) -> None:
    image = draw_grid(tmp_path / "a.png")
    digests = atlases.FileDigests(tmp_path / "digests.json")
    first = digests.get(image)
    digests.save()
    again = atlases.FileDigests(tmp_path / "digests.json")
    assert again.files[str(image)][2] == first
    draw_grid(image, icon=30)  # new content, new size
    assert again.get(image) != first


def test_without_the_compute_engine_a_computed_atlas_is_a_clear_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(A real build of a computed atlas: tests/site/test_freeze.py; a real install without
    torch: tests/site/test_freeze_without_torch.py.)"""
    write(
        project / "content/study/atlases.toml",
        '[atlas.grid]\nmodel = "demo"\nlayer = "mixed4c"\ndataset = "synthetic"\n',
    )
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(SetupError, match="cannot be computed on this machine") as info:
        build(load_config(project / "atlas.toml"), strict=True, log=None)
    message = info.value.message()
    assert "atlases.toml:1 ([atlas.grid])" in message
    assert "the compute engine is not installed (torch" in message
    assert "pip install -e '.[compute]'" in message and "atlas freeze grid" in message
