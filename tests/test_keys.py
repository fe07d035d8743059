"""generator.keys: every cache key, pinned to its digest for fixed inputs.

A cache key names a folder of everyone's cache (and a frozen entry's ``key``): a refactor that
changes one by accident recomputes every atlas (hours for InceptionV1) or strands a frozen
folder. The digests below were computed by the code before the keys moved to one module
(``bundle``: after its version was bumped to 3); change one only together with a version bump
in :mod:`generator.keys`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from atlas.conftest import TinyModel, TinySource

from generator import keys
from generator.atlas.bundle_stage import bundle_settings
from generator.atlas.spec import parse_computed_atlas
from generator.atlas.stages import Sources
from generator.experiments.spec import parse_experiment
from generator.site.atlases import AtlasSpec

ROOT = Path(__file__).resolve().parent.parent

BASE: dict[str, Any] = {
    "model": "tiny",
    "layer": "mixed4a",
    "dataset": "tiny",
    "samples": 20,
    "seed": 3,
    "grids": [2, 4],
    "min_count": 1,
}
TABLES = {
    "layer": BASE,
    "class": {**BASE, "kind": "class", "class": "class 1", "grids": [2]},
    "comparison": {**BASE, "kind": "comparison", "classes": ["class 0", "class 2"], "grids": [2]},
}
#: Shared by every kind: one collection, one whitening, one receptive field.
SHARED = {
    "activations": "2a6fad02ee1321c1",
    "whitening": "8a20c6b4fb96e09d",
    "receptive": "779fc5a9e5d8a868",
}
PINNED = {
    "layer": {
        **SHARED,
        "layout": "08dabdf6f570cab4",
        "grid-2": "2748afdd30a2b495",
        "grid-4": "a949e20a1e780dbd",
        "icons": "13061e84a0ec4ab3",
        "bundle": "a14d5a5f36974993",
    },
    "class": {
        **SHARED,
        "selection": "7171b34364bd1e6d",
        "layout": "cfd31eec8177a36c",
        "grid-2": "565b6967fd9ec4aa",
        "icons": "c8ddcc3fd6db57ad",
        "bundle": "f4a516ca55973c37",
    },
    "comparison": {
        **SHARED,
        "selection": "3e777029d5a92a7f",
        "layout": "19f59114c73440b8",
        "grid-2": "4e6a0128c6da51a7",
        "icons": "dba7b34269a8d5e0",
        "bundle": "2a7f96fc65a2f706",
    },
}


def sources() -> Sources:
    return Sources(TinyModel(), TinySource(), np.arange(0, 40, 2, dtype=np.int64), "stretch")


def atlas_keys(kind: str) -> dict[str, str]:
    spec = parse_computed_atlas(f"pin-{kind}", TABLES[kind], "pin/atlases.toml:1")
    render, looks = bundle_settings(spec)
    found = keys.bundle_keys(spec, sources(), render, looks)
    return {stage: found[stage] for stage in found.parts}


@pytest.mark.parametrize("kind", list(TABLES))
def test_every_key_of_an_atlas_is_pinned(kind: str) -> None:
    assert atlas_keys(kind) == PINNED[kind]


def test_a_collection_run_and_each_layer_have_pinned_keys() -> None:
    spec = parse_computed_atlas("pin-layer", BASE, "pin/atlases.toml:1")
    collection = keys.collection_parts(spec, sources())
    assert keys.collection_run_key(collection, ["mixed3a", "mixed4a"]) == "94d83e13086814e4"
    assert keys.activations_key(collection, "mixed4a") == SHARED["activations"]


def test_the_experiment_key_is_pinned() -> None:
    table = {
        "model": "tiny",
        "dataset": "tiny",
        "seed": 2,
        "pairs": [{"source": "class 0", "target": "class 1", "icon": "icon.png"}],
    }
    spec = parse_experiment("pin-exp", table, "pin/atlases.toml:9", base=Path("pin"))
    icon = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    key = keys.experiment_key(spec, TinyModel(), TinySource(), "stretch", [icon])
    assert key == "5a8069073138638b"


def test_the_keys_of_image_atlases_are_pinned(tmp_path: Path) -> None:
    image = tmp_path / "atlas.png"
    image.write_bytes(b"pin image bytes")
    key = keys.image_source_key(image, "pin-img", "Pin", 8, 32, "#FFFFFF")
    assert key == "f61721462a4b765c"  # the background's case does not matter
    spec = AtlasSpec("pin-img", tmp_path / "atlases.toml", 1, "Pin", image, 8, 32, "#ffffff")
    assert keys.image_bundle_key(spec, "0123456789abcdef") == "1d54a6bf457f7115"


@pytest.mark.parametrize(
    ("stage", "changed"),
    [
        ("layout", {"layout", "grid-2", "grid-4", "icons", "bundle"}),
        ("grid", {"grid-2", "grid-4", "icons", "bundle"}),
        ("whitening", {"whitening", "icons", "bundle"}),
        ("activations", set(PINNED["layer"]) - {"receptive"}),
    ],
)
def test_a_version_bump_changes_its_stage_and_what_is_downstream_only(
    stage: str, changed: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(keys.STAGE_VERSIONS, stage, keys.STAGE_VERSIONS[stage] + 1)
    bumped = atlas_keys("layer")
    assert {s for s, key in bumped.items() if key != PINNED["layer"][s]} == changed


def test_only_the_keys_module_digests_cache_key_parts() -> None:
    """Every cache key is assembled in generator/keys.py (generator/cache.py defines digest;
    a data set's identity, which keys include, is its source's own)."""
    callers = set()
    for path in sorted((ROOT / "generator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "digest"
            ):
                callers.add(path.relative_to(ROOT).as_posix())
    assert callers == {
        "generator/keys.py",
        "generator/data/folder.py",
        "generator/data/synthetic.py",
    }
