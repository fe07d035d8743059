"""generator.specs: the one reader of atlases.toml, and the rules every atlas table obeys."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from generator.errors import ConfigError
from generator.specs import read_atlas_entries, read_experiment_entries, spec_files

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
    entries, warnings = read_atlas_entries(spec_files(tmp_path))
    assert list(entries) == ["img", "comp", "other"] and warnings == []
    assert [e.line for e in entries.values()] == [1, 9, 1]
    assert entries["img"].is_image and not entries["comp"].is_image
    assert entries["comp"].where == f"{a}:9" and entries["other"].source == b
    assert entries["comp"].table == {"model": "demo", "layer": "mixed4c"}


def test_an_id_declared_in_two_publications_names_both_places(tmp_path: Path) -> None:
    write(tmp_path / "a/atlases.toml", '[atlas.x]\nmodel = "demo"\n')
    second = write(tmp_path / "b/atlases.toml", '\n[atlas.x]\nmodel = "demo"\n')
    with pytest.raises(ConfigError, match="atlas id 'x' is declared twice") as info:
        read_atlas_entries(spec_files(tmp_path))
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
        read_atlas_entries([path])
    assert str(path) in info.value.message()


def test_unknown_top_level_keys_are_warnings(tmp_path: Path) -> None:
    path = write(tmp_path / "p/atlases.toml", 'title = "x"\n\n[atlas.a]\nmodel = "demo"\n')
    entries, warnings = read_atlas_entries([path])
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
    assert [(e.id, e.line) for e in read_experiment_entries(path)] == [("v1.2", 4), ("b", 7)]
    write(path, '[experiment."../up"]\nseed = 0\n')
    with pytest.raises(ConfigError, match="an experiment id names a folder") as info:
        read_experiment_entries(path)
    assert info.value.where == f"{path}:1"
