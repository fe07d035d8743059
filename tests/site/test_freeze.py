"""``atlas freeze`` and builds from the frozen folder (``_freeze/``): cache first, then frozen,
then computed; byte-identical sites; stale, damaged and missing entries.

The project computes one atlas and one patch experiment with the demo model, whose weights are
a file of the project (``weights.pt``): deleting that file makes the machine really unable to
compute them (a :class:`SetupError`, as on a machine without weights) while the recipe (what
atlas.toml and atlases.toml declare) stays the same. The torch-free install is tested in
``test_freeze_without_torch.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from sitekit import CONFIG, PUB_INDEX, write

from generator.cli import main
from generator.config import load_config
from generator.errors import ConfigError, ContentError, SetupError, UnknownNameError
from generator.freeze import store as store_module
from generator.freeze.compare import changes
from generator.freeze.run import freeze
from generator.freeze.store import MANIFEST, FrozenStore, read_entry
from generator.models.model_spec import DEMO_WEIGHTS
from generator.site.build import build

PROJECT = (
    CONFIG
    + """
[compute]
device = "cpu"
threads = 1

[models.shapes-net]
model = "demo"
weights = "weights.pt"

[datasets.shapes]
kind = "synthetic"
count = 120
size = 64
"""
)

ATLASES = """\
[atlas.four-c]
title = "Four C"
model = "shapes-net"
layer = "mixed4c"
dataset = "shapes"
samples = 40
grids = [2, 4]
min_count = 1
layout = { method = "tsne" }
render = { preset = "tiny", icon_size = 16, steps = 2, examples = 1, example_px = 16 }

[experiment.pasted]
model = "shapes-net"
dataset = "shapes"
seed = 1
images_per_class = 4
sizes = [0.5]
positions = [[0, 0]]
noise_patches = 1
examples = 1
source = "circle"
target = "star"
icon = { atlas = "four-c", cell = [0, 0], grid = 2 }
"""

ARTICLE = """\
---
title: Frozen
---

```atlas
id: four-c
height: 300
```

```patch-results
experiment: pasted
examples: 1
```
"""

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny tensors: one thread


def project(root: Path) -> Path:
    write(root / "atlas.toml", PROJECT)
    write(root / "content/study/index.md", PUB_INDEX)
    write(root / "content/study/frozen.md", ARTICLE)
    write(root / "content/study/atlases.toml", ATLASES)
    shutil.copyfile(DEMO_WEIGHTS, root / "weights.pt")
    return root


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def frozen_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A project built (computing), then frozen: (its folder, the digests of its site)."""
    root = project(tmp_path_factory.mktemp("frozen") / "p")
    build(load_config(root / "atlas.toml"), strict=True, log=None)
    assert main(["--config", str(root / "atlas.toml"), "freeze", "--all"]) == 0
    return root, digests(root / "site")


def fresh_copy(frozen: tuple[Path, dict[str, str]], dest: Path, *, weights: bool) -> Path:
    """The project's sources and frozen folder, without its cache or site."""
    root, _ = frozen
    dest.mkdir()
    for name in ("atlas.toml", "content", "_freeze"):
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dest / name)
    if weights:
        shutil.copyfile(root / "weights.pt", dest / "weights.pt")
    return dest


def test_freeze_writes_what_the_site_needs_with_a_manifest(frozen_project) -> None:
    root, _ = frozen_project
    store = FrozenStore(root / "_freeze")
    atlas = store.atlas("four-c")
    experiment = store.experiment("study", "pasted")
    assert atlas is not None and experiment is not None
    # Exactly the bundle's files (no activations, no key parts) and the experiment's.
    bundle = root / ".atlas-cache/bundle" / atlas.key
    expected = {
        p.relative_to(bundle).as_posix()
        for p in bundle.rglob("*")
        if p.is_file() and p.name != "inputs.json"
    }
    assert set(atlas.files) == expected and "bundle.json" in expected
    assert not any(name.endswith(".npz") for name in atlas.files)
    assert {"results.json", "icons/0.png"} <= set(experiment.files)
    for entry in (atlas, experiment):
        for rel, facts in entry.files.items():
            data = (entry.folder / rel).read_bytes()
            assert facts == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    # The key of everything that produced it: model declaration, settings, code versions.
    assert atlas.recipe["model"] == {
        "name": "shapes-net",
        "table": {"model": "demo", "weights": "weights.pt"},
    }
    assert atlas.recipe["spec"]["samples"] == 40 and atlas.recipe["code"]["bundle"] >= 2
    assert atlas.inputs is not None and atlas.inputs["spec"]["samples"] == 40
    assert (root / "_freeze/.gitattributes").read_text().startswith("# Written by `atlas freeze`")


def test_a_build_from_the_frozen_folder_is_byte_identical(frozen_project, tmp_path) -> None:
    _, site = frozen_project
    root = fresh_copy(frozen_project, tmp_path / "q", weights=False)
    said: list[str] = []
    build(load_config(root / "atlas.toml"), strict=True, log=said.append)
    assert digests(root / "site") == site
    assert any("atlas four-c: taken from the frozen folder" in line for line in said)
    assert any("experiment pasted: taken from the frozen folder" in line for line in said)
    # The next build finds them in the cache: nothing copied again, the same site.
    said.clear()
    build(load_config(root / "atlas.toml"), strict=True, log=said.append)
    assert not any("from the frozen folder" in line for line in said), said
    assert digests(root / "site") == site


def test_the_cache_comes_before_the_frozen_folder(frozen_project, tmp_path) -> None:
    """With weights at hand and a warm cache, a damaged frozen file is never read."""
    root = fresh_copy(frozen_project, tmp_path / "q", weights=True)
    shutil.copytree(frozen_project[0] / ".atlas-cache", root / ".atlas-cache")
    (root / "_freeze/atlas/four-c/level-2.png").write_bytes(b"damaged")
    build(load_config(root / "atlas.toml"), strict=True, log=None)
    assert digests(root / "site") == frozen_project[1]


def test_a_damaged_frozen_file_is_an_error_naming_it(frozen_project, tmp_path) -> None:
    root = fresh_copy(frozen_project, tmp_path / "q", weights=False)
    level = root / "_freeze/atlas/four-c/level-4.png"
    level.write_bytes(level.read_bytes()[:-10])
    with pytest.raises(ContentError, match="is damaged") as info:
        build(load_config(root / "atlas.toml"), strict=False, log=None)
    assert info.value.where == str(level)
    assert "git checkout" in str(info.value.fix) and "atlas freeze four-c" in str(info.value.fix)
    assert not (root / "site").exists()  # nothing published
    assert not list((root / ".atlas-cache/bundle").glob("*/level-4.png"))  # nor cached


def test_a_damaged_manifest_is_an_error_naming_it(frozen_project, tmp_path) -> None:
    root = fresh_copy(frozen_project, tmp_path / "q", weights=False)
    manifest = root / "_freeze/experiment/study/pasted" / MANIFEST
    manifest.write_text('{"format": 1, "files": ')
    with pytest.raises(ContentError, match="manifest cannot be read") as info:
        build(load_config(root / "atlas.toml"), strict=False, log=None)
    assert info.value.where == str(manifest)


def test_a_stale_entry_is_published_with_a_warning_where_nothing_can_compute(
    frozen_project, tmp_path
) -> None:
    root = fresh_copy(frozen_project, tmp_path / "q", weights=False)
    atlases = root / "content/study/atlases.toml"
    atlases.write_text(atlases.read_text().replace("samples = 40", "samples = 36"))
    said: list[str] = []
    build(load_config(root / "atlas.toml"), strict=False, log=said.append)
    warning = next(line for line in said if "stale" in line)
    assert "spec.samples: 40 -> 36" in warning and "atlases.toml:1" in warning
    assert "atlas freeze four-c" in warning
    site = frozen_project[1]
    assert digests(root / "site")["atlases/four-c/atlas.dzi"] == site["atlases/four-c/atlas.dzi"]
    # --strict: an error (exit 2), nothing written.
    shutil.rmtree(root / "site")
    with pytest.raises(SetupError, match="four-c' is stale") as info:
        build(load_config(root / "atlas.toml"), strict=True, log=None)
    assert info.value.exit_code == 2 and not (root / "site").exists()
    assert main(["--config", str(root / "atlas.toml"), "build", "--strict"]) == 2


def test_a_stale_entry_is_recomputed_where_it_can_be(frozen_project, tmp_path) -> None:
    root = fresh_copy(frozen_project, tmp_path / "q", weights=True)
    atlases = root / "content/study/atlases.toml"
    atlases.write_text(atlases.read_text().replace("samples = 40", "samples = 36"))
    said: list[str] = []
    build(load_config(root / "atlas.toml"), strict=True, log=said.append)
    bundle = next(p for p in (root / ".atlas-cache/bundle").iterdir() if p.is_dir())
    assert json.loads((bundle / "inputs.json").read_text())["spec"]["samples"] == 36
    # Recomputing does not touch the frozen folder; `atlas freeze` refreshes it.
    frozen = read_entry(root / "_freeze/atlas/four-c")
    assert frozen is not None and frozen.recipe["spec"]["samples"] == 40
    freeze(load_config(root / "atlas.toml"), ["four-c"], log=said.append)
    frozen = read_entry(root / "_freeze/atlas/four-c")
    assert frozen is not None and frozen.recipe["spec"]["samples"] == 36
    assert frozen.key == bundle.name


def test_nothing_frozen_and_nothing_to_compute_with_leaves_the_publication_out(
    frozen_project, tmp_path
) -> None:
    root = fresh_copy(frozen_project, tmp_path / "q", weights=False)
    shutil.rmtree(root / "_freeze")
    said: list[str] = []
    build(load_config(root / "atlas.toml"), strict=False, log=said.append)
    notice = (root / "site/study/frozen.html").read_text()
    assert "weights" in notice  # the notice page names what is missing
    with pytest.raises(SetupError) as info:
        build(load_config(root / "atlas.toml"), strict=True, log=None)
    message = info.value.message()
    assert "atlas 'four-c' cannot be computed on this machine" in message
    assert "atlases.toml:1 ([atlas.four-c])" in message
    assert "pip install -e '.[compute]'" in message and "atlas freeze four-c" in message


def test_freeze_names_what_it_cannot_freeze(frozen_project, tmp_path) -> None:
    root = fresh_copy(frozen_project, tmp_path / "q", weights=False)
    config = load_config(root / "atlas.toml")
    with pytest.raises(ConfigError, match="needs the ids"):
        freeze(config, [], log=lambda _: None)
    with pytest.raises(UnknownNameError, match="four-d"):
        freeze(config, ["four-d"], log=lambda _: None)
    # The frozen entries are taken, not re-frozen from nothing: a stale one cannot be frozen.
    atlases = root / "content/study/atlases.toml"
    atlases.write_text(atlases.read_text().replace("samples = 40", "samples = 36"))
    with pytest.raises(SetupError, match="cannot be frozen"):
        freeze(load_config(root / "atlas.toml"), ["four-c"], log=lambda _: None)
    report = freeze(load_config(root / "atlas.toml"), [], everything=True, log=lambda _: None)
    assert report.left_out == ["atlas four-c", "experiment pasted"]
    assert (root / "_freeze/atlas/four-c" / MANIFEST).is_file()  # declared: kept


def test_freeze_all_removes_entries_no_longer_declared(frozen_project, tmp_path) -> None:
    root = fresh_copy(frozen_project, tmp_path / "q", weights=True)
    shutil.copytree(frozen_project[0] / "_freeze/atlas/four-c", root / "_freeze/atlas/gone")
    report = freeze(load_config(root / "atlas.toml"), [], everything=True, log=lambda _: None)
    assert report.removed == [root / "_freeze/atlas/gone"]
    assert sorted(e.id for e in report.written) == ["four-c", "pasted"]


def test_store_refuses_files_over_the_push_limit_and_lists_big_ones_for_lfs(
    tmp_path, monkeypatch
) -> None:
    source = tmp_path / "bundle"
    write(source / "small.json", "{}")
    (source / "level-8.png").write_bytes(b"x" * 5000)
    store = FrozenStore(tmp_path / "_freeze")
    args = dict(kind="atlas", entry_id="a", publication="p", recipe={}, recipe_key="k", key="k")
    monkeypatch.setattr(store_module, "LFS_SUGGEST_BYTES", 1000)
    entry = store.write(store.atlas_folder("a"), source, inputs=None, **args)
    assert entry.bytes == 5002
    assert store.write_gitattributes() == ["atlas/a/level-8.png"]
    assert (
        "atlas/a/level-8.png filter=lfs diff=lfs merge=lfs -text"
        in (tmp_path / "_freeze/.gitattributes").read_text().splitlines()
    )
    monkeypatch.setattr(store_module, "MAX_FILE_BYTES", 4000)
    with pytest.raises(ConfigError, match="over GitHub's") as info:
        store.write(store.atlas_folder("a"), source, inputs=None, **args)
    assert info.value.where == str(source / "level-8.png")
    assert read_entry(store.atlas_folder("a")) == entry  # the old entry is intact


def test_copy_into_checks_every_file_and_leaves_the_destination_on_failure(tmp_path) -> None:
    source = tmp_path / "bundle"
    write(source / "a.json", "{}")
    write(source / "sub/b.txt", "bee")
    store = FrozenStore(tmp_path / "_freeze")
    entry = store.write(
        store.atlas_folder("a"),
        source,
        kind="atlas",
        entry_id="a",
        publication="p",
        recipe={},
        recipe_key="k",
        key="k",
        inputs={"x": 1},
    )
    dest = tmp_path / "cache/bundle/k"
    entry.copy_into(dest, fix="refreeze")
    assert digests(dest) == {**digests(source), "inputs.json": digests(dest)["inputs.json"]}
    assert json.loads((dest / "inputs.json").read_text()) == {"x": 1}
    (entry.folder / "sub/b.txt").write_text("bed")  # same size, other bytes
    (dest / "marker").write_text("old")
    with pytest.raises(ContentError, match="damaged") as info:
        entry.copy_into(dest, fix="refreeze")
    assert info.value.where == str(entry.folder / "sub/b.txt") and info.value.fix == "refreeze"
    assert (dest / "marker").read_text() == "old"
    (entry.folder / "sub/b.txt").unlink()
    with pytest.raises(ContentError, match="cannot be read"):
        entry.copy_into(dest, fix="refreeze")


def test_manifest_paths_cannot_leave_the_entry(tmp_path) -> None:
    folder = tmp_path / "_freeze/atlas/a"
    folder.mkdir(parents=True)
    doc = {
        "format": 1,
        "kind": "atlas",
        "id": "a",
        "publication": "p",
        "recipe": {},
        "recipe_key": "k",
        "key": "k",
        "inputs": None,
        "files": {"../../etc/passwd": {"sha256": "0" * 64, "bytes": 1}},
    }
    (folder / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(ContentError, match="damaged"):
        read_entry(folder)
    doc["files"] = {}
    doc["format"] = 99
    (folder / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(ContentError, match="unknown format"):
        read_entry(folder)


def test_changes_name_each_changed_key_with_short_values() -> None:
    old = {"spec": {"samples": 40, "grids": [2, 4]}, "code": {"bundle": 2}, "gone": 1}
    new = {"spec": {"samples": 36, "grids": [2, 4]}, "code": {"bundle": 3}, "new": "x" * 100}
    found = changes(old, new)
    assert found[0] == "code.bundle: 2 -> 3"
    assert found[1] == "gone: 1 -> (none)"
    assert found[2].startswith('new: (none) -> "xxx') and found[2].endswith("...")
    assert len(found[2]) < 90
    assert found[3] == "spec.samples: 40 -> 36"
    assert changes(old, old) == []
