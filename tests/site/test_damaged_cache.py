"""A damaged cache entry of any kind is found when read (its seal: size, time, digest recorded
when written), discarded and recomputed with a message; the site built afterwards is the one
built before the damage, byte for byte. ``atlas check`` hashes everything and finds damage
that kept a file's size and time."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_freeze import digests, project

from generator.config import load_config
from generator.errors import ContentError
from generator.site.build import build
from generator.site.check import check_site

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project (one computed atlas, one experiment) built once: (folder, site digests)."""
    root = project(tmp_path_factory.mktemp("damaged") / "p")
    build(load_config(root / "atlas.toml"), strict=True, log=None)
    return root, digests(root / "site")


@pytest.fixture
def copy(built, tmp_path: Path) -> Path:
    """A copy of the built project (cache and site included) to damage."""
    root = tmp_path / "q"
    shutil.copytree(built[0], root, symlinks=True)
    # Cached paths are recorded relative to nothing: the copy's own cache must be used.
    return root


def entry(root: Path, stage: str, holding: str | None = None) -> Path:
    """The cache folder of ``stage`` (the one holding the file ``holding``)."""
    (folder,) = [
        p
        for p in (root / ".atlas-cache" / stage).iterdir()
        if p.is_dir() and (holding is None or (p / holding).exists())
    ]
    return folder


def flip(path: Path, *, keep_time: bool = False) -> None:
    """Change bytes of ``path`` in place, keeping its size (and its time with ``keep_time``)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    with open(path, "r+b") as f:  # in place: hard links see it too
        f.write(bytes(data))
    if keep_time:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def rebuild(root: Path) -> list[str]:
    said: list[str] = []
    build(load_config(root / "atlas.toml"), strict=True, log=said.append)
    return said


@pytest.mark.parametrize(
    ("stage", "name"),
    [
        ("activations", "vectors.npy"),
        ("activations", "attributions.npy"),
        ("layout", "layout.npz"),
        ("grid", "grid-4.npz"),
        ("icons", "icons-4.npz"),
    ],
)
def test_a_truncated_artifact_is_recomputed(
    built, copy: Path, stage: str, name: str, capsys
) -> None:
    damaged = entry(copy, stage, name) / name
    damaged.write_bytes(damaged.read_bytes()[:100])
    shutil.rmtree(entry(copy, "bundle"))  # so the build reads the artifacts again
    rebuild(copy)
    err = capsys.readouterr().err
    assert "the cached copy is damaged" in err and f"{name}: " in err
    assert digests(copy / "site") == built[1]


@pytest.mark.parametrize(
    "name",
    ["bundle.json", "level-4.png", "cells-2.json", "examples-4/index.json", "directions-4.npy"],
)
def test_a_damaged_bundle_file_is_recomputed(built, copy: Path, name: str, capsys) -> None:
    path = entry(copy, "bundle") / name
    if name == "bundle.json":
        path.write_text("{ not json")
    else:
        flip(path)
    rebuild(copy)
    err = capsys.readouterr().err
    assert "the cached bundle is damaged" in err
    assert digests(copy / "site") == built[1]
    assert rebuild(copy)  # and the next build finds it whole: nothing recomputed
    assert "is damaged" not in capsys.readouterr().err


def test_a_damaged_tile_is_cut_again_and_republished(built, copy: Path, capsys) -> None:
    shutil.rmtree(copy / "site")  # copying broke the hard links: publish them again
    shutil.rmtree(copy / ".atlas-cache/site")
    rebuild(copy)
    tiles = entry(copy, "tiles")
    tile = next(p for p in sorted(tiles.rglob("*.png")) if "atlas_files" in p.parts)
    published = copy / "site/atlases/four-c" / tile.relative_to(tiles)
    assert published.samefile(tile)  # the site's file is the cache's (a hard link)
    flip(tile)
    assert digests(copy / "site") != built[1]  # the live site is damaged with it
    rebuild(copy)
    assert "the cached pyramid is damaged" in capsys.readouterr().err
    assert digests(copy / "site") == built[1]


def test_damaged_experiment_results_are_recomputed(built, copy: Path, capsys) -> None:
    results = entry(copy, "experiment") / "results.json"
    flip(results)
    rebuild(copy)
    assert "the cached results are damaged" in capsys.readouterr().err
    assert digests(copy / "site") == built[1]


def test_check_finds_damage_that_kept_size_and_time_and_the_build_repairs_it(
    built, copy: Path
) -> None:
    shutil.rmtree(copy / "site")  # copying broke the hard links: publish them again
    shutil.rmtree(copy / ".atlas-cache/site")
    rebuild(copy)
    example = next(
        p for p in sorted((entry(copy, "bundle") / "examples-4").iterdir()) if p.suffix == ".jpg"
    )
    flip(example, keep_time=True)
    config = load_config(copy / "atlas.toml")
    with pytest.raises(ContentError, match="damaged cache entr") as info:
        check_site(config, log=lambda _: None)
    assert f"examples-4/{example.name}: its bytes changed" in info.value.what
    assert "publishes it again" in info.value.what  # the site's hard link is damaged too
    rebuild(copy)
    assert digests(copy / "site") == built[1]
    check_site(load_config(copy / "atlas.toml"), log=lambda _: None)  # whole again
