"""atlas.toml: defaults, types, every problem reported, unknown keys warn, passthrough tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitekit import write

from generator.config import (
    DEFAULT_MAX_BYTES,
    ComputeConfig,
    find_config,
    load_config,
)
from generator.errors import ConfigError
from generator.specs import read_spec_file

MINIMAL = '[site]\ntitle = "T"\nsite_url = "https://example.org/x"\n'


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "atlas.toml", MINIMAL))
    assert config.site.title == "T"
    assert config.site.site_url == "https://example.org/x/"  # a folder URL
    assert config.paths.output == tmp_path / "site"
    assert config.paths.content == tmp_path / "content"
    assert (config.tiles.tile_size, config.tiles.overlap, config.tiles.format) == (254, 1, "jpg")
    assert config.budget.max_bytes == DEFAULT_MAX_BYTES
    assert (config.budget.warn_fraction, config.budget.max_file_bytes) == (0.75, 100_000_000)
    assert config.warnings == ()
    settings = config.tile_settings()
    assert (settings.tile_size, settings.quality) == (254, 85)


def test_every_problem_is_reported_with_key_value_and_expectation(tmp_path: Path) -> None:
    path = write(
        tmp_path / "atlas.toml",
        '[site]\ntitle = ""\nsite_url = "example.org"\n\n[tiles]\nquality = 150\nformat = "gif"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message()
    assert "4 problems" in message
    assert f"{path}:2: [site] title = ''; expected a non-empty string" in message
    assert "[site] site_url = 'example.org'; expected an absolute http(s) URL" in message
    assert f"{path}:6: [tiles] quality = 150; expected an integer from 1 to 100" in message
    assert '[tiles] format = \'gif\'; expected "jpg" | "webp" | "png"' in message


def test_budget_limits_are_checked(tmp_path: Path) -> None:
    budget = "[budget]\nwarn_fraction = 1.5\nmax_file_bytes = 0\nmax_bytes = 2_000_000_000\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "atlas.toml", MINIMAL + budget))
    message = info.value.message()
    assert "2 problems" in message
    assert "[budget] warn_fraction = 1.5; expected a number from 0 to 1" in message
    assert "[budget] max_file_bytes = 0; expected an integer from 1 to" in message
    config = load_config(write(tmp_path / "atlas.toml", MINIMAL + "[budget]\nwarn_fraction = 1\n"))
    assert config.budget.warn_fraction == 1.0 and config.budget.max_bytes == DEFAULT_MAX_BYTES


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[site\] site_url is missing"):
        load_config(write(tmp_path / "atlas.toml", '[site]\ntitle = "T"\n'))


def test_booleans_are_not_integers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tile_size = True"):
        load_config(write(tmp_path / "atlas.toml", MINIMAL + "[tiles]\ntile_size = true\n"))


def test_unknown_keys_and_tables_warn_with_suggestions(tmp_path: Path) -> None:
    path = write(tmp_path / "atlas.toml", MINIMAL + 'titel = "x"\n\n[tile]\nformat = "png"\n')
    config = load_config(path)
    assert len(config.warnings) == 2
    assert "unknown key [site] titel (did you mean 'title'?)" in config.warnings[0]
    assert f"{path}:4" in config.warnings[0]
    assert "unknown table [tile] (did you mean [tiles]?)" in config.warnings[1]


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "atlas.toml", "[site\ntitle = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert info.value.where == str(path)


def test_id_tables_are_listed_in_file_order_with_their_lines(tmp_path: Path) -> None:
    text = '# atlases\n[atlas.b]\nlayer = "x"\n\n[experiment.e]\n[atlas.a]\nlayer = "y"\n'
    path = write(tmp_path / "atlases.toml", text)
    file = read_spec_file(path)
    tables = file.tables("atlas")
    assert set(file.raw) == {"atlas", "experiment"}
    assert [(t.id, t.table, t.line, t.where) for t in tables] == [
        ("b", {"layer": "x"}, 2, f"{path}:2"),
        ("a", {"layer": "y"}, 6, f"{path}:6"),
    ]
    assert [t.id for t in file.tables("experiment")] == ["e"]
    assert file.tables("other") == []
    with pytest.raises(ConfigError, match=r"'atlas' must be a table of \[atlas.<id>\] tables"):
        read_spec_file(write(tmp_path / "flat.toml", 'atlas = "x"\n')).tables("atlas")
    broken = write(tmp_path / "broken.toml", "[atlas.a\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        read_spec_file(broken)
    assert info.value.where == str(broken) and info.value.fix


def test_compute_is_typed_and_registries_pass_through_loosely_checked(tmp_path: Path) -> None:
    text = MINIMAL + (
        '[compute]\ndevice = "cuda:1"\nthreads = 2\nbatch = 64\n\n'
        '[models.inception]\nweights = "~/w.pth"\n\n[datasets.imagenet]\nfolder = "/data"\n'
    )
    file = write(tmp_path / "atlas.toml", text)
    config = load_config(file)
    assert config.compute == ComputeConfig(device="cuda:1", threads=2)
    assert config.models == {"inception": {"weights": "~/w.pth"}}
    assert config.datasets == {"imagenet": {"folder": "/data"}}
    line = text.splitlines().index("batch = 64") + 1
    assert config.warnings == (
        f"{file}:{line}: unknown key [compute] batch (did you mean 'batch_size'?)",
    )


def test_compute_defaults_and_loading_settings(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "a.toml", MINIMAL)).compute == ComputeConfig(
        device="auto", threads=None, batch_size=None, workers=None
    )
    text = MINIMAL + "[compute]\nbatch_size = 8\nworkers = 0\n"
    compute = load_config(write(tmp_path / "b.toml", text)).compute
    assert (compute.batch_size, compute.workers, compute.threads) == (8, 0, None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("batch_size = 0", "[compute] batch_size = 0; expected an integer from 1"),
        ("workers = -1", "[compute] workers = -1; expected an integer from 0"),
        ("threads = 1.5", "[compute] threads = 1.5; expected an integer from 1"),
        ('device = "gpu"', "[compute] device = 'gpu'; expected \"auto\""),
    ],
)
def test_bad_compute_settings_name_the_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "atlas.toml", MINIMAL + f"[compute]\n{line}\n"))
    assert message in info.value.message()


def test_compute_tables_with_wrong_shapes_fail(tmp_path: Path) -> None:
    text = MINIMAL + '[compute]\ndevice = "tpu"\n\n[models]\ninception = "weights.pth"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "atlas.toml", text))
    message = info.value.message()
    assert "[compute] device = 'tpu'" in message
    assert "[models.inception] must be a table" in message


def test_find_config_searches_parent_folders(tmp_path: Path) -> None:
    path = write(tmp_path / "atlas.toml", MINIMAL)
    deep = tmp_path / "content" / "pub"
    deep.mkdir(parents=True)
    assert find_config(start=deep) == path
    with pytest.raises(ConfigError, match=r"no atlas\.toml"):
        find_config(start=Path("/"))
    with pytest.raises(ConfigError, match="config file not found"):
        find_config(tmp_path / "missing.toml")


def test_repository_config_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "atlas.toml")
    assert config.warnings == ()
    assert config.site.site_url.startswith("https://")


def test_a_paths_key_naming_a_file_is_refused(tmp_path: Path) -> None:
    """Every [paths] key names a folder: a file there (freeze = "atlas.toml") is a clear
    error when the config loads, not an OSError when something is written."""
    from generator.config import load_config
    from generator.errors import ConfigError

    config = tmp_path / "atlas.toml"
    config.write_text(
        '[site]\ntitle = "T"\nsite_url = "https://example.org/"\n\n[paths]\nfreeze = "atlas.toml"\n'
    )
    with pytest.raises(ConfigError, match=r"\[paths\] freeze names a file") as info:
        load_config(config)
    assert info.value.where == f"{config} [paths] freeze"
