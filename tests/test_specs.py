"""generator.specs: the one reader of atlases.toml, and the rules every atlas table obeys."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from generator.errors import ConfigError
from generator.specs import (
    read_atlas_entries,
    read_experiment_entries,
    read_spec_file,
    read_spec_files,
)

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_entries_keep_file_order_lines_and_kind(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a/atlases.toml",
        '[atlas.img]\nimage = "x.jpg"\ngrid = 2\nicon_size = 8\n\n'
        '[experiment.e]\nseed = 0\n\n[atlas.comp]\nmodel = "demo"\nlayer = "mixed4c"\n',
    )
    b = write(tmp_path / "b/atlases.toml", '[atlas.other]\nmodel = "demo"\n')
    entries, warnings = read_atlas_entries(read_spec_files(tmp_path))
    assert list(entries) == ["img", "comp", "other"] and warnings == []
    assert [e.line for e in entries.values()] == [1, 9, 1]
    assert entries["img"].is_image and not entries["comp"].is_image
    assert entries["comp"].where == f"{a}:9" and entries["other"].source == b
    assert entries["comp"].table == {"model": "demo", "layer": "mixed4c"}


def test_an_id_declared_in_two_publications_names_both_places(tmp_path: Path) -> None:
    write(tmp_path / "a/atlases.toml", '[atlas.x]\nmodel = "demo"\n')
    second = write(tmp_path / "b/atlases.toml", '\n[atlas.x]\nmodel = "demo"\n')
    with pytest.raises(ConfigError, match="atlas id 'x' is declared twice") as info:
        read_atlas_entries(read_spec_files(tmp_path))
    assert info.value.where == f"{second}:2"
    assert str(tmp_path / "a/atlases.toml") + ":1" in info.value.message()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[atlas."bad id"]\nmodel = "demo"\n', "an atlas id becomes a folder name"),
        ("[atlas]\nx = 1\n", r"\[atlas.x\] must be a table"),
        ('atlas = "x"\n', "'atlas' must be a table of"),
        ("[atlas.x\n", "not valid TOML"),
    ],
)
def test_bad_tables_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "p/atlases.toml", text)
    with pytest.raises(ConfigError, match=message) as info:
        read_atlas_entries([read_spec_file(path)])
    assert str(path) in info.value.message()


def test_unknown_top_level_keys_are_warnings(tmp_path: Path) -> None:
    path = write(tmp_path / "p/atlases.toml", 'title = "x"\n\n[atlas.a]\nmodel = "demo"\n')
    entries, warnings = read_atlas_entries([read_spec_file(path)])
    assert list(entries) == ["a"]
    assert warnings == [
        f"{path}: unknown table or key 'title' (atlases are [atlas.<id>] tables,"
        " patch experiments [experiment.<id>] tables)"
    ]


def test_only_config_and_specs_parse_toml() -> None:
    """atlases.toml is opened and parsed by one module (atlas.toml by the config's), both
    through the one reader with limits (generator/textfiles.py), the only user of tomllib."""
    parsers, readers = set(), set()
    for path in sorted((ROOT / "generator").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "tomllib"
                and node.attr in ("load", "loads")
            ):
                parsers.add(path.relative_to(ROOT).as_posix())
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_toml":
                readers.add(path.relative_to(ROOT).as_posix())
    assert parsers == {"generator/textfiles.py"}
    assert readers == {"generator/config.py", "generator/specs.py"}


def test_experiment_entries_keep_order_and_check_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p/atlases.toml",
        '[atlas.a]\nmodel = "demo"\n\n[experiment."v1.2"]\nseed = 0\n\n[experiment.b]\nseed = 1\n',
    )
    assert [(e.id, e.line) for e in read_experiment_entries(read_spec_file(path))] == [
        ("v1.2", 4),
        ("b", 7),
    ]
    write(path, '[experiment."../up"]\nseed = 0\n')
    with pytest.raises(ConfigError, match="an experiment id names a folder") as info:
        read_experiment_entries(read_spec_file(path))
    assert info.value.where == f"{path}:1"


def test_atlas_compute_finds_the_atlases_toml_files_the_build_publishes(tmp_path: Path) -> None:
    """One discovery: the publication folders (not ``_drafts``, not hidden folders)."""
    from generator.atlas.commands import find_atlas_tables
    from generator.site.content import gather_content

    for name in ("b", "a", "_drafts", ".hidden"):
        write(tmp_path / name / "index.md", "---\ntitle: T\n---\n")
        write(tmp_path / name / "atlases.toml", f'[atlas.x-{name.strip("._")}]\nmodel = "demo"\n')
    write(tmp_path / "c/index.md", "---\ntitle: T\n---\n")  # a publication without atlases
    published = [p.atlases_toml for p in gather_content(tmp_path).publications]
    assert published == [tmp_path / "a/atlases.toml", tmp_path / "b/atlases.toml", None]
    assert [f.path for f in read_spec_files(tmp_path)] == published[:2]
    assert list(find_atlas_tables(tmp_path)) == ["x-a", "x-b"]


def test_a_build_reads_each_atlases_toml_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Atlases and experiments come from one parse of each file per build."""
    import generator.specs
    from generator.config import load_config
    from generator.site.build import build

    sys.path.insert(0, str(ROOT / "tests" / "site"))
    try:
        from sitekit import make_project
    finally:
        sys.path.remove(str(ROOT / "tests" / "site"))
    project = make_project(tmp_path / "project")
    spec = project / "content/study/atlases.toml"
    spec.write_text(spec.read_text() + '\n[experiment.later]\nmodel = "demo"\n')
    read: list[Path] = []
    real = generator.specs.read_spec_file

    def counted(path: Path) -> generator.specs.SpecFile:
        read.append(path)
        return real(path)

    monkeypatch.setattr(generator.specs, "read_spec_file", counted)
    with pytest.raises(ConfigError, match=r"dataset = \.\.\. \(required\)"):
        build(load_config(project / "atlas.toml"), log=None)  # the experiment parsed: once
    assert read == [spec]
    spec.write_text(spec.read_text().split("[experiment.later]")[0])
    read.clear()
    build(load_config(project / "atlas.toml"), log=None)
    assert read == [spec]
